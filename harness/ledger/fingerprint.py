"""Which ledger a verdict judged: each file's size and a hash of its first and last 64 KiB, recorded in
verdict.json and compared by ``harness gate``. A verdict left beside a ledger that has changed since (a re-check
killed before it could replace the verdict, a ledger copied over the folder's) must not pass the gate.

Size and both ends, not the whole file: cheap at 100 M rows, and it catches an appended, truncated or replaced
ledger (a Parquet file's footer, at its end, describes every row group). Not the modification time: copying a run
folder (a CI artefact) changes it, and the gate must not fail on a faithful copy."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

__all__ = ["fingerprint", "record", "changed", "ledgers_in"]

_ENDS = 64 * 1024


def fingerprint(path: Path) -> dict[str, Any]:
    """``{"bytes": size, "ends_sha256": hex}`` of one file."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_ENDS))
        if size > _ENDS:
            handle.seek(max(_ENDS, size - _ENDS))
            digest.update(handle.read(_ENDS))
    return {"bytes": size, "ends_sha256": digest.hexdigest()}


def ledgers_in(folder: Path) -> list[Path]:
    """Every ledger file a check of ``folder`` may read: its ``ledger*.jsonl`` parts and its ``ledger.parquet``."""
    parquet = folder / "ledger.parquet"
    return sorted(folder.glob("ledger*.jsonl")) + ([parquet] if parquet.is_file() else [])


def record(files: list[Path], folder: Path) -> list[dict[str, Any]]:
    """The fingerprints of the ledger files a check read, each named relative to ``folder`` (where verdict.json
    is written) when it lies inside it, else by its absolute path."""
    out = []
    for path in files:
        try:
            name = str(path.resolve().relative_to(folder.resolve()))
        except ValueError:
            name = str(path.resolve())
        out.append({"path": name, **fingerprint(path)})
    return out


def changed(recorded: Any, folder: Path) -> list[str]:
    """The ledger files that differ from what was judged: a recorded file whose bytes changed, and a ledger file
    in ``folder`` that was not there (a check of the folder would read it). A recorded file that is gone is not
    named: a report folder may be kept without its ledger. A verdict without a record (written before records
    were kept) is not compared."""
    if not isinstance(recorded, list):
        return []
    names = {entry.get("path") for entry in recorded if isinstance(entry, dict)}
    out = [path.name for path in ledgers_in(folder) if path.name not in names]
    for entry in recorded:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            continue
        path = folder / entry["path"]
        if not path.is_file():
            continue
        now = fingerprint(path)
        if (now["bytes"], now["ends_sha256"]) != (entry.get("bytes"), entry.get("ends_sha256")):
            out.append(entry["path"])
    return out
