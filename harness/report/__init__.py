"""Reports of a run: verdict.json, report.md, report.html, junit.xml (facade)."""

from harness.report.finalize import finalize, read_manifest
from harness.report.summary import label, render_markdown, summary_lines

__all__ = ["finalize", "read_manifest", "label", "render_markdown", "summary_lines"]
