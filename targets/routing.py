"""Which socket a user's live messages go to, when the same user may connect again before a replay ends.

A design that replays a backlog and only then routes live messages to the new socket must not let an *older*
connection's replay, finishing late, route the user back to its socket: that socket is dead (the user came
back on a new one), every live message emitted to it is dropped by python-socketio, and if its disconnect was
handled before the late routing, nothing ever unroutes it. Under load (a replay of thousands of messages,
a saturated event loop) that is loss of acknowledged messages for a user who is connected. So a connection is
routed only if it is still the user's newest one and still connected.
"""

from __future__ import annotations

import socketio

__all__ = ["Routes"]


class Routes:
    """``sid_of_user`` (what live sends read) plus the newest connection per user."""

    def __init__(self) -> None:
        self.sid_of_user: dict[str, str] = {}
        self.newest: dict[str, str] = {}

    def connecting(self, user: str, sid: str) -> None:
        """Call in the connect handler, before any replay starts."""
        self.newest[user] = sid

    def route(self, sio: socketio.AsyncServer, user: str, sid: str) -> bool:
        """Route the user's live messages to ``sid`` (after its replay) unless a newer connection exists or it
        is gone; no await inside, so a caller that checked for more backlog right before loses nothing."""
        if self.newest.get(user) != sid or not sio.manager.is_connected(sid, "/"):
            return False
        self.sid_of_user[user] = sid
        return True
