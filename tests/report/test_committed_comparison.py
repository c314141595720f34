"""The committed comparison pages (reports/comparison/*/comparison.html): no broken link, no literal None, at most
three charts per row. A link must open a file the repository holds (report.html and ledgers are git-ignored)."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.report.compare import COMMITTED_COMPARISON, MAX_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if (tag, name) in {("a", "href"), ("img", "src")} and value:
                self.targets.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _tracked() -> set[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell which files are committed")
    listed = subprocess.run(["git", "ls-files", "reports/comparison"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    return set(listed.splitlines())


PAGES = sorted(COMMITTED_COMPARISON.glob("*/comparison.html"))


def test_there_are_committed_pages() -> None:
    assert len(PAGES) >= 10


@pytest.mark.parametrize("page", PAGES, ids=[p.parent.name for p in PAGES])
def test_a_committed_page_links_only_to_committed_files(page: Path) -> None:
    tracked = _tracked()
    if page.relative_to(ROOT).as_posix() not in tracked:
        pytest.skip(f"{page} is not committed (a run in progress?)")
    parser = _Links()
    parser.feed(page.read_text())
    assert parser.targets
    for target in parser.targets:
        path = (page.parent / target).resolve().relative_to(ROOT).as_posix()
        assert path in tracked, f"{page.parent.name}: {target} is not committed"
    text = " ".join(parser.text)
    assert not re.search(r"\bNone\b", text), page
    columns = re.search(r"grid-template-columns: repeat\((\d+),", page.read_text())
    assert columns and 1 <= int(columns.group(1)) <= MAX_COLUMNS
    md = (page.parent / "comparison.md").read_text()
    assert not re.search(r"\bNone\b", md)
