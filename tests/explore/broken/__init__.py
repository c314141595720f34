"""Deliberately broken copies of the reference redis-store design, for proving `harness explore` finds
bugs that no shipped scenario reaches. Never shipped as targets: the suite defines them per scenario."""
