"""The ledger: the append-only record of a run, and the contract between drivers and the checker.

- ``format``: its columns and row types, reading (``.jsonl``, ``.parquet``, a run folder) with every
  damaged line reported, and writing parquet.
- ``recorder``: how rows are appended during a run (one line per row, flushed, crash-safe).

May import: ``harness.errors``, pandas, numpy, pyarrow, orjson. Never Locust, the run machinery or the
checker.
"""
