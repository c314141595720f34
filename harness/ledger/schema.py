"""The ledger's columns and the values ``type`` and ``f`` may take: the one definition every reader and
checker of the format shares (the format itself is documented in docs/ledger.md)."""

from __future__ import annotations

__all__ = ["COLUMNS", "OP_TYPES", "FUNCTIONS", "DTYPES", "INTEGER_COLUMNS"]

#: Column order of a ledger; every row carries every column (missing values are null).
COLUMNS: tuple[str, ...] = (
    "run_id",  # one id per run, shared by every row
    "node",  # the load process that wrote the row ("local", "worker-1", ...)
    "index",  # per-node counter, strictly increasing in file order
    "t_ns",  # wall-clock time in ns since the epoch (time.time_ns()), comparable across processes on one host
    "process",  # the actor: a user id such as "u1-0", or "controller"
    "type",  # invoke | ok | fail | info | event
    "f",  # send | recv | connect | disconnect | join | leave | fault | phase | node | health
    "msg_id",  # globally unique message id (send and recv rows)
    "sender",  # user id of the sender (send and recv rows)
    "recipient",  # intended recipient (send rows; null for a send to a room); the user who received it (recv)
    "seq",  # per (sender, recipient) sequence number, from 1
    "conn",  # connection epoch of `process`: 1 for its first connect, +1 on each reconnect
    "offset",  # recv rows: the server's delivery offset / id for this copy, when the target supplies one
    "error",  # why a send ended fail/info, or why a connection closed
    "room",  # a room: a send addressed to it, the room a copy was received in, or joined / left
    "data",  # free-form JSON object: fault details, phase name, server-supplied delivery metadata
)

OP_TYPES = frozenset({"invoke", "ok", "fail", "info", "event"})
FUNCTIONS = frozenset({"send", "recv", "connect", "disconnect", "join", "leave", "fault", "phase", "node",
                       "health", "process_exit"})

#: The pandas dtype of every column but ``data`` (a JSON object per row, or null).
DTYPES: dict[str, str] = {
    "run_id": "string",
    "node": "string",
    "index": "Int64",
    "t_ns": "Int64",
    "process": "string",
    "type": "string",
    "f": "string",
    "msg_id": "string",
    "sender": "string",
    "recipient": "string",
    "seq": "Int64",
    "conn": "Int64",
    "offset": "string",
    "error": "string",
    "room": "string",
}

INTEGER_COLUMNS = frozenset(c for c, d in DTYPES.items() if d == "Int64")
