"""`harness explore`: search fault schedules for one that breaks a target's claims and shrink it to a minimal
reproducer.

vocabulary (what a trial may contain, seeded generator) → trial (one ordinary `harness run` of it) →
search (trials, shrinking, confirmation) → record (explore.json / explore.md) → command (CLI). It may
import config, errors, paths, run.process and run.targets; never the
checker's internals (a trial's verdict is read from its verdict.json, as a user would) and never Locust.
"""
