"""Judge a ledger and write every artefact of a run folder.

Writes verdict.json (with the gate's decision), report.md, report.html, junit.xml, anomalies.json
(full id lists), over_time.csv, ledger.parquet and the charts as PNG files. This module is the only writer
of those files.
"""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from harness.checker import (
    Analysis,
    CheckOptions,
    analyse,
    analyse_merged,
    crashed_verdict,
    judge,
    unjudged_verdict,
)
from harness.checker.experiment import index_damage
from harness.checker.parts import analyse_part, merge_parts
from harness.config import GatePolicy
from harness.errors import LedgerDamaged
from harness.gate import gate
from harness.ledger.fingerprint import ledgers_in, record
from harness.ledger.format import LedgerLoad, read_ledger, write_parquet
from harness.ledger.partition import (
    NotPartitionable,
    parquet_rows,
    read_global,
    read_partition,
    rows_with_ids,
    split_ledger,
)
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.summary import render_markdown

__all__ = ["finalize", "analyse_partitioned", "read_manifest", "CHART_FILES", "PARTITION_ROWS", "PART_ROWS",
           "Partitioning"]

Partitioning = Literal["auto", "always", "never"]

PARTITION_ROWS = 40_000_000
"""A Parquet ledger with at least this many rows is checked in partitions (``partition="auto"``): one pass over
10 M rows peaks near 2 GB, so one pass over 40 M would need ~8 GB (docs/checking-at-scale.md)."""
PART_ROWS = 5_000_000
"""Rows per partition (about): each partition's delivery peaks like a one-pass check of this many rows (~1 GB),
on top of what the partitions before it keep (~40 bytes per message) until the merge."""

CHART_FILES = frozenset({"messages", "over_time", "latency", "cohorts", "rooms"})
"""Every chart a run folder may hold as <name>.png (cohorts only when something was lost or duplicated, rooms
only when the run had rooms)."""

log = logging.getLogger(__name__)


def read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except ValueError:
        return None


def _policy(meta: dict[str, Any] | None, override: dict[str, Any] | None) -> GatePolicy:
    base = ((meta or {}).get("config") or {}).get("gate") or {}
    merged = {**base, **{k: v for k, v in (override or {}).items() if v is not None}}
    return GatePolicy.model_validate(merged)


def _options(meta: dict[str, Any] | None, target: str | None, scenario: str | None, ordered: bool,
             orphan_lines: int, damaged: dict[str, str]) -> CheckOptions:
    claims = (meta or {}).get("claims", {})
    return CheckOptions(
        delivery=claims.get("delivery", "at-least-once"),
        ordered=bool(claims.get("ordered", ordered)),
        survives_restart=bool(claims.get("survives_restart", False)),
        bad_lines=orphan_lines,
        damaged_nodes=damaged,
        target=target or (meta or {}).get("target"),
        scenario=scenario or (meta or {}).get("scenario"),
    )


def _parquet_source(source: Path) -> Path | None:
    """The Parquet ledger ``read_ledger`` would read (None for JSON Lines: never partitioned)."""
    if source.is_dir():
        if any(source.glob("ledger*.jsonl")):
            return None
        candidate = source / "ledger.parquet"
        return candidate if candidate.exists() else None
    return source if source.suffix == ".parquet" and source.exists() else None


REPORT_IDS = 256
"""How many example ids of each category a partitioned check fetches the rows of, for the report's timelines."""


def _release() -> None:
    """Hand freed memory back to the system: Arrow's pool keeps freed buffers, and glibc's malloc keeps freed
    blocks in its heap (trimmed here) once its dynamic mmap threshold has grown past the sizes a check frees."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: arrays over 1 MB are mapped, so freeing one returns it
        return libc
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return None


_LIBC: Any = None


def analyse_partitioned(path: Path, options: CheckOptions, parts: int,
                         out_dir: Path) -> tuple[Analysis, LedgerLoad]:
    """Split the ledger into a scratch folder under ``out_dir``, analyse one partition at a time, merge, judge once
    (``harness.checker.parts``). Returns the analysis and the frame the reports draw from: the global rows plus
    the send and receipt rows of a few example ids of each category (the report's per-message timelines)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = _load_libc()
    scratch = Path(tempfile.mkdtemp(prefix=".partitions-", dir=out_dir))
    try:
        split = split_ledger(path, scratch, parts)
        damage = index_damage(split.index_frame)
        object.__setattr__(split, "index_frame", pd.DataFrame())  # 100 M rows of (node, index): free them now
        outcomes = []
        for part in split.part_paths:
            frame = read_partition(part, path)
            outcomes.append(analyse_part(frame))
            del frame
            _release()
        merged = merge_parts(outcomes, _release)
        frame = read_global(split.global_path, path)
        analysis = analyse_merged(frame, merged, damage, options)
        del merged
        _release()
        wanted = {i for values in analysis.ids.values() for i in values[:REPORT_IDS]}
        shown = rows_with_ids(split.part_paths, wanted) if wanted else frame.iloc[:0]
        report = pd.concat([frame, shown], ignore_index=True) if len(shown) else frame
        return analysis, LedgerLoad(report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read(source: Path, meta: dict[str, Any] | None, target: str | None, scenario: str | None, ordered: bool,
          out_dir: Path, partition: Partitioning, parts: int | None
          ) -> tuple[Path | None, Analysis | None, LedgerLoad, Exception | None]:
    """Read the ledger, or split it and analyse its partitions (a big Parquet ledger): the Parquet file read (None:
    JSON Lines), the analysis if partitioned, the rows the reports draw from, and a partitioned checker's crash."""
    parquet = _parquet_source(source)
    rows = parquet_rows(parquet) if parquet is not None else None
    split_into = None
    if parquet is not None and rows is not None and (partition == "always" or
                                                     (partition == "auto" and rows >= PARTITION_ROWS)):
        split_into = parts or max(1, math.ceil(rows / PART_ROWS))
    analysis: Analysis | None = None
    split_error: Exception | None = None
    load = LedgerLoad(pd.DataFrame())
    if split_into is not None and parquet is not None:
        try:
            analysis, load = analyse_partitioned(parquet, _options(meta, target, scenario, ordered, 0, {}),
                                                  split_into, out_dir)
        except LedgerDamaged:
            raise
        except NotPartitionable as exc:  # a room ledger: one pass, whatever it costs
            log.warning("checking %s in one pass: %s", parquet, exc)
        except Exception as exc:  # a checker bug must never read as a pass
            log.exception("checker crashed")
            split_error = exc
    if analysis is None and split_error is None:
        load = read_ledger(source)
    return parquet, analysis, load, split_error


def _clear_verdict(out_dir: Path, run_dir: Path, source: Path) -> None:
    """Remove an earlier check's verdict and reports before a (re-)check: a check that fails part-way (a damaged
    ledger, a crash, a kill) must not leave the old verdict for `harness gate` to pass, nor its pages, nor (in
    another folder than the ledger's) the copy of the ledger it judged, which a check of that folder would read."""
    for name in ("verdict.json", "report.md", "junit.xml", "report.html", "anomalies.json", "over_time.csv",
                 *(f"{chart}.png" for chart in CHART_FILES)):
        (out_dir / name).unlink(missing_ok=True)
    copy = out_dir / "ledger.parquet"
    if copy.exists() and not _same_file(out_dir, run_dir) and not any(_same_file(copy, f)
                                                                       for f in _ledger_files(source)):
        copy.unlink()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _ledger_files(source: Path) -> list[Path]:
    """The files ``read_ledger`` reads for ``source`` (none if there are none)."""
    if not source.is_dir():
        return [source] if source.exists() else []
    parts = sorted(source.glob("ledger*.jsonl"))
    return parts or ([source / "ledger.parquet"] if (source / "ledger.parquet").exists() else [])


def _write_verdict(doc: dict[str, Any], out_dir: Path, meta: dict[str, Any] | None,
                   gate_overrides: dict[str, Any] | None) -> None:
    """Gate the verdict document and write it with its two text reports (verdict.json last: it says done)."""
    decision = gate(doc, _policy(meta, gate_overrides))
    doc["gate"] = decision.to_dict()
    doc["exit_code"] = decision.exit_code
    (out_dir / "report.md").write_text(render_markdown(doc))
    (out_dir / "junit.xml").write_text(render_junit(doc))
    _write_json(doc, out_dir / "verdict.json")


def _write_json(doc: dict[str, Any], path: Path) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # a kill mid-write never leaves half of it
    partial.write_text(json.dumps(doc, indent=2) + "\n")
    os.replace(partial, path)


def finalize(source: Path, *, target: str | None = None, scenario: str | None = None, ordered: bool = False,
             extra_reasons: list[str] | None = None, out_dir: Path | None = None,
             gate_overrides: dict[str, Any] | None = None, html: bool = True, partition: Partitioning = "auto",
             parts: int | None = None) -> dict[str, Any]:
    """Check a ledger (a run folder or a ledger file) and write the run's artefacts; returns verdict.json.

    Output goes to ``out_dir``, by default the run folder (or the ledger file's folder). ``partition``: a Parquet
    ledger of ``PARTITION_ROWS`` rows or more is checked in ``parts`` partitions (default: one per ``PART_ROWS``
    rows) with ``"auto"``, always with ``"always"``, never with ``"never"``; a room ledger or a JSON Lines one is
    always checked in one pass. The verdict is the same either way (docs/checking-at-scale.md).
    """
    run_dir = source if source.is_dir() else source.parent
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = read_manifest(run_dir)
    _clear_verdict(out_dir, run_dir, source)
    judged = record(_ledger_files(source), out_dir)  # before reading: what this verdict is about (and, once the
    # reports are written, every ledger file beside it too: the copy or conversion that travels with the folder)
    try:
        parquet, analysis, load, split_error = _read(source, meta, target, scenario, ordered, out_dir, partition,
                                                     parts)
    except LedgerDamaged as exc:  # nothing to judge: say so in the folder too (`harness gate` on it exits 3)
        unread = unjudged_verdict(f"ledger unreadable: {exc}", _options(meta, target, scenario, ordered, 0, {}))
        _write_verdict({**unread.to_dict(), "bad_lines": [], "ledger_files": judged}, out_dir, meta, gate_overrides)
        raise
    damaged, orphan_lines = load.damaged_nodes()
    options = _options(meta, target, scenario, ordered, orphan_lines, damaged)
    if split_error is not None:
        verdict = crashed_verdict(split_error, options)
    else:
        try:
            if analysis is None:
                analysis = analyse(load.frame, options)
            verdict = judge(analysis, options)
        except Exception as exc:  # a checker bug must never read as a pass
            log.exception("checker crashed")
            analysis = None
            verdict = crashed_verdict(exc, options)
    if extra_reasons:
        verdict.reasons.extend(extra_reasons)
    doc: dict[str, Any] = verdict.to_dict()
    doc["bad_lines"] = [{"path": b.path, "line": b.line, "reason": b.reason} for b in load.bad_lines]
    doc["ledger_files"] = judged
    _write_verdict(doc, out_dir, meta, gate_overrides)
    if analysis is not None:
        (out_dir / "anomalies.json").write_text(json.dumps(analysis.ids, indent=1) + "\n")
        analysis.over_time.to_csv(out_dir / "over_time.csv", index=False)
        if html:
            try:
                page, charts = render_html(doc, analysis, load.frame)
            except Exception:  # a broken chart must not cost the verdict, which is already written
                log.exception("report.html could not be rendered")
            else:
                (out_dir / "report.html").write_text(page)
                for name in CHART_FILES - set(charts):  # a chart left out (e.g. nothing lost) must not go stale
                    (out_dir / f"{name}.png").unlink(missing_ok=True)
                for name, uri in charts.items():  # also as files, for comparison pages and PR comments
                    (out_dir / f"{name}.png").write_bytes(base64.b64decode(uri.split(",", 1)[1]))
    if parquet is not None:  # already Parquet: never rewritten (9 s at 10 M rows, and the file's own columns kept)
        if not _same_file(out_dir, run_dir) and not _same_file(parquet, out_dir / "ledger.parquet"):
            shutil.copyfile(parquet, out_dir / "ledger.parquet")
    elif not load.frame.empty:
        write_parquet(load.frame, out_dir / "ledger.parquet")
    beside = ledgers_in(out_dir)  # what a check of this folder reads: the source or its copy, written above
    beside += [f for f in _ledger_files(source) if f.parent.resolve() == out_dir.resolve() and f not in beside]
    doc["ledger_files"] = record(beside or _ledger_files(source), out_dir)
    _write_json(doc, out_dir / "verdict.json")
    return doc
