"""The question's server: emit straight to the recipient's current socket. No acks, no buffer.

A message for a user whose socket is dead (but not yet timed out) or who is offline is gone. The sender
still gets ``{"ok": true}``: the server accepted it. Claims at-most-once delivery.

Rooms as python-socketio has them: ``join`` / ``leave`` (``{room}``) put the *socket* in or out of a
Socket.IO room, and a send with ``room`` is one ``emit(..., room=...)`` to the sockets in it at that moment.
A member whose socket is dead or reconnecting misses it, and a reconnected socket is in no room until the
client joins again (the harness's drivers do, as an app's connect handler would).
"""

from __future__ import annotations

import logging
from typing import Any

from targets.common import (
    after_connect,
    authenticate,
    forget_on_disconnect,
    make_server,
    parse_args,
    read_send,
    room_of,
    serve,
)
from targets.routing import Routes

log = logging.getLogger("naive")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    routes = Routes()
    sid_of_user = routes.sid_of_user

    forget_on_disconnect(sio, sid_of_user)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)
        routes.connecting(user, sid)

        async def route() -> None:
            routes.route(sio, user, sid)  # not if the user came back elsewhere meanwhile

        after_connect(sio, sid, route)

    async def membership(sid: str, data: Any, joining: bool) -> dict[str, Any]:
        room = room_of(data)
        if room is None:
            return {"ok": False, "error": "room must be a name of 1-64 letters, digits, _ . : -"}
        if joining:
            await sio.enter_room(sid, f"room:{room}")
        else:
            await sio.leave_room(sid, f"room:{room}")
        return {"ok": True}

    @sio.on("join")
    async def join(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        return await membership(sid, data, joining=True)

    @sio.on("leave")
    async def leave(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        return await membership(sid, data, joining=False)

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log, rooms=True)
        if isinstance(checked, dict):
            return checked
        if "room" in checked[1]:
            await sio.emit("msg", checked[1], room=f"room:{checked[1]['room']}", skip_sid=sid)
            return {"ok": True}
        target_sid = sid_of_user.get(data["to"])
        if target_sid is not None:
            await sio.emit("msg", checked[1], to=target_sid)
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
