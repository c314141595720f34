"""Reports of a run: verdict.json, report.md, report.html, junit.xml, and comparisons (facade).

The only place the checker's results are written to files. May import: the checker, the ledger,
``harness.config``, ``harness.gate``, jinja2, matplotlib. Never Locust or the run machinery.
"""

from harness.report.finalize import finalize, read_manifest
from harness.report.summary import label, render_markdown, summary_lines

__all__ = ["finalize", "read_manifest", "label", "render_markdown", "summary_lines"]
