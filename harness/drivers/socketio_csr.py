"""Socket.IO driver that speaks connection state recovery (CSR), for servers the harness did not write.

socket.io 4.6+ servers with ``connectionStateRecovery`` send a private session id (``pid``) in the
CONNECT reply and append an offset as the last argument of every stored event. On reconnect the JS
client sends ``{pid, offset}`` in its auth and the server replays what was missed, *before* its CONNECT
reply. python-socketio speaks none of this (see ../shared/reference/delivery-semantics.md §3), so this
driver adds it: it keeps the pid, remembers the last offset, sends both back on reconnect, and buffers
events that arrive before the CONNECT reply, as the JS client does. Private python-socketio methods are
overridden: the version is pinned in pyproject.toml.

Rooms: after a *recovered* reconnect the driver does not ask to join its rooms again: the server restored
them with the session, and the run measures what CSR itself restores. After a reconnect that was not
recovered (back after the window, a server restart) it joins them again, as an app's connect handler would.
"""

from __future__ import annotations

import time
from typing import Any

import socketio

from harness.drivers.socketio import InlineClient, SocketIOUser

__all__ = ["SocketIOCSRUser", "RecoveringClient"]


class RecoveringClient(InlineClient):
    """A python-socketio client that keeps the CSR pid and buffers events received before CONNECT."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.pid: str | None = None
        self.recovered = False
        self._early: list[tuple[str | None, int | None, Any]] = []

    def _handle_connect(self, namespace: str | None, data: Any) -> None:
        if isinstance(data, dict) and isinstance(data.get("pid"), str):
            self.recovered = data["pid"] == self.pid
            self.pid = data["pid"]
        super()._handle_connect(namespace, data)
        early, self._early = self._early, []
        for ns, packet_id, payload in early:
            super()._handle_event(ns, packet_id, payload)

    def _handle_event(self, namespace: str | None, id: int | None, data: Any) -> None:
        if (namespace or "/") not in self.namespaces:
            self._early.append((namespace, id, data))  # a replay sent before the CONNECT reply
            return
        super()._handle_event(namespace, id, data)


class SocketIOCSRUser(SocketIOUser):
    """One scenario user against a socket.io server with connection state recovery."""

    abstract = True

    def make_client(self, **options: Any) -> socketio.Client:
        return RecoveringClient(**options)

    def _auth(self) -> dict[str, Any]:
        assert self.slot is not None
        auth: dict[str, Any] = {"token": self.slot.token}
        client = getattr(self, "sio", None)
        if isinstance(client, RecoveringClient) and client.pid and isinstance(self.last_offset, str):
            auth.update(pid=client.pid, offset=self.last_offset)
        return auth

    def _on_msg(self, data: Any, offset: Any = None) -> bool:
        t_ns = time.time_ns()  # first: the receipt time is stamped before anything can yield
        if isinstance(data, dict) and isinstance(offset, str):
            data = {**data, "offset": offset}  # the CSR offset: recorded, and the resume point
        self.received(data, t_ns)
        return True

    def rejoin_after_connect(self) -> bool:
        client = getattr(self, "sio", None)
        return not bool(getattr(client, "recovered", False))

    def connected(self, **data: Any) -> None:
        client = getattr(self, "sio", None)
        super().connected(recovered=bool(getattr(client, "recovered", False)), **data)
