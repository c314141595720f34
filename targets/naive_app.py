"""The question's server: emit straight to the recipient's current socket. No acks, no buffer.

A message for a user whose socket is dead (but not yet timed out) or who is offline is gone. The sender
still gets ``{"ok": true}``: the server accepted it. Claims at-most-once delivery.
"""

from __future__ import annotations

import logging
from typing import Any

from targets.auth import verify
from targets.common import after_connect, make_server, message_for, parse_args, serve, validate_send

log = logging.getLogger("naive")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    sid_of_user: dict[str, str] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = verify(auth, args.secret)
        if user is None:
            raise ConnectionRefusedError("invalid token")
        await sio.save_session(sid, {"user": user})

        async def route() -> None:
            sid_of_user[user] = sid

        after_connect(sio, sid, route)

    @sio.event
    async def disconnect(sid: str, reason: Any = None) -> None:
        session = await sio.get_session(sid)
        user = session.get("user")
        if user is not None and sid_of_user.get(user) == sid:
            del sid_of_user[user]

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        problem = validate_send(data)
        if problem is not None:
            log.warning("rejected send from %s: %s", sid, problem)
            return {"ok": False, "error": problem}
        sender = (await sio.get_session(sid))["user"]
        target_sid = sid_of_user.get(data["to"])
        if target_sid is not None:
            message = message_for(sender, data)
            await sio.emit("msg", message, to=target_sid)
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
