"""Copy the committed design comparison (reports/comparison/matrix.md) into README.md between markers.

Regenerate both with:
    bash scripts/matrix.sh
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"


def main() -> int:
    matrix = (ROOT / "reports" / "comparison" / "matrix.md").read_text()
    table = "\n".join(line for line in matrix.splitlines() if line.startswith("|"))
    readme = (ROOT / "README.md").read_text()
    if START not in readme or END not in readme:
        print("README.md has no matrix markers", file=sys.stderr)
        return 1
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
