"""One truth per target: what the README tells users a reference target claims is what the checker holds
it to (a target whose ordering claim is wrong here reorders and still passes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.run.targets import builtin_targets

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _readme_claims() -> dict[str, str]:
    section = README.split("## Reference targets", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    return {re.sub(r"[`\s]", "", row[1]): row[3].strip() for row in rows}


@pytest.mark.parametrize("name", sorted(builtin_targets()))
def test_the_readme_states_the_claims_the_checker_holds(name: str) -> None:
    claims = builtin_targets()[name].claims
    text = _readme_claims()[name]
    assert text.startswith(claims.delivery), (name, text)
    assert ("ordered" in text) == claims.ordered, (name, text)
    assert ("survives restart" in text) == claims.survives_restart, (name, text)
