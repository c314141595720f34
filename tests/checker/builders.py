"""Hand-built ledgers for checker tests: each call appends one row with the next time and index."""

from __future__ import annotations

from typing import Any

import pandas as pd

from harness.ledger.format import to_frame


class History:
    """A tiny ledger builder; times are milliseconds from 0 and become t_ns."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._t_ms = 0
        self._indexes: dict[str, int] = {}

    def _add(self, at_ms: int | None = None, node: str = "local", **row: Any) -> History:
        self._t_ms = at_ms if at_ms is not None else self._t_ms + 1
        row.setdefault("run_id", "r")
        self._indexes[node] = index = self._indexes.get(node, 0) + 1  # each node numbers its own rows
        self.rows.append({"node": node, "index": index, "t_ns": self._t_ms * 1_000_000, **row})
        return self

    @staticmethod
    def _mid(sender: str, recipient: str, seq: int) -> str:
        return f"{sender}>{recipient}#{seq}"

    def invoke(self, sender: str, recipient: str, seq: int, at_ms: int | None = None) -> History:
        return self._add(at_ms, process=sender, type="invoke", f="send", msg_id=self._mid(sender, recipient, seq),
                         sender=sender, recipient=recipient, seq=seq)

    def complete(self, kind: str, sender: str, recipient: str, seq: int, at_ms: int | None = None) -> History:
        return self._add(at_ms, process=sender, type=kind, f="send", msg_id=self._mid(sender, recipient, seq),
                         sender=sender, recipient=recipient, seq=seq)

    def ok(self, sender: str, recipient: str, seq: int, at_ms: int | None = None) -> History:
        return self.complete("ok", sender, recipient, seq, at_ms)

    def info(self, sender: str, recipient: str, seq: int, at_ms: int | None = None) -> History:
        return self.complete("info", sender, recipient, seq, at_ms)

    def fail(self, sender: str, recipient: str, seq: int, at_ms: int | None = None) -> History:
        return self.complete("fail", sender, recipient, seq, at_ms)

    def send(self, sender: str, recipient: str, seq: int, outcome: str = "ok") -> History:
        return self.invoke(sender, recipient, seq).complete(outcome, sender, recipient, seq)

    def recv(self, receiver: str, sender: str, recipient: str, seq: int, at_ms: int | None = None,
             msg_id: str | None = None, offset: str | None = None, conn: int | None = None,
             node: str = "local") -> History:
        return self._add(at_ms, node=node, process=receiver, type="ok", f="recv",
                         msg_id=msg_id or self._mid(sender, recipient, seq), sender=sender, recipient=receiver,
                         seq=seq, offset=offset, conn=conn)

    # -- rooms ---------------------------------------------------------------------------------------------------
    def join(self, user: str, room: str, outcome: str | None = "ok", at_ms: int | None = None) -> History:
        """A join asked for, then answered (``outcome`` None: no answer yet)."""
        self._add(at_ms, process=user, type="invoke", f="join", room=room)
        return self if outcome is None else self._add(None, process=user, type=outcome, f="join", room=room)

    def leave(self, user: str, room: str, outcome: str | None = "ok", at_ms: int | None = None) -> History:
        self._add(at_ms, process=user, type="invoke", f="leave", room=room)
        return self if outcome is None else self._add(None, process=user, type=outcome, f="leave", room=room)

    @staticmethod
    def room_mid(sender: str, room: str, seq: int) -> str:
        return f"{sender}>#{room}#{seq}"

    def room_send(self, sender: str, room: str, seq: int, outcome: str = "ok", at_ms: int | None = None) -> History:
        mid = self.room_mid(sender, room, seq)
        self._add(at_ms, process=sender, type="invoke", f="send", msg_id=mid, sender=sender, room=room, seq=seq)
        return self._add(None, process=sender, type=outcome, f="send", msg_id=mid, sender=sender, room=room, seq=seq)

    def room_recv(self, receiver: str, sender: str, room: str, seq: int, in_room: str | None = None,
                  at_ms: int | None = None) -> History:
        return self._add(at_ms, process=receiver, type="ok", f="recv", msg_id=self.room_mid(sender, room, seq),
                         sender=sender, recipient=receiver, room=in_room or room, seq=seq)

    def connect(self, user: str, at_ms: int | None = None, conn: int | None = None, cohort: str | None = None,
                node: str = "local") -> History:
        return self._add(at_ms, node=node, process=user, type="event", f="connect", conn=conn,
                         data={"cohort": cohort} if cohort else None)

    def disconnect(self, user: str, at_ms: int | None = None, node: str = "local") -> History:
        return self._add(at_ms, node=node, process=user, type="event", f="disconnect", error="transport error")

    def fault(self, action: str, name: str, cohort: str, at_ms: int | None = None) -> History:
        return self._add(at_ms, process="controller", type="event", f="fault",
                         data={"action": action, "fault": name, "cohort": cohort, "type": "timeout"})

    def node_closed(self, node: str) -> History:
        return self._add(None, node=node, process="node", type="event", f="phase", data={"phase": "node_closed"})

    def phase(self, name: str, at_ms: int | None = None, **data: Any) -> History:
        return self._add(at_ms, process="controller", type="event", f="phase", data={"phase": name, **data})

    def finished(self) -> History:
        """Close the run the way the controller does: drain ended quiescent, then end, and every node closes
        its record (``node_closed``: without it the checker reads a cut-off tail)."""
        self.phase("drain_end", quiescent=True).phase("end")
        return self.close_nodes()

    def close_nodes(self) -> History:
        for node in sorted(self._indexes):
            if not any(r["node"] == node and (r.get("data") or {}).get("phase") == "node_closed" for r in self.rows):
                self.node_closed(node)
        return self

    def frame(self) -> pd.DataFrame:
        return to_frame(self.rows)
