"""Bench only: the harness's locustfile with the ledger's send and receive rows neither serialised nor written.

Rows are still built and fed to the live tracker (the drain needs it), and controller rows (phases,
faults) are still written so the bench can find the sending window. The difference to the real
locustfile is exactly the ledger's cost: JSON encoding and one write per row. Never for real runs: the
verdict of such a run is meaningless.
"""

from harness.ledger import recorder
from harness.locustfile import SocketIOCSRUser, SocketIOUser, SSEUser  # noqa: F401  (Locust finds them here)

_write_row = recorder.LedgerWriter._emit


def _control_rows_only(self: recorder.LedgerWriter, row: recorder.Row) -> None:
    if row["f"] not in ("send", "recv"):
        _write_row(self, row)


recorder.LedgerWriter._emit = _control_rows_only  # type: ignore[method-assign]
