"""The question's server: emit straight to the recipient's current socket. No acks, no buffer.

A message for a user whose socket is dead (but not yet timed out) or who is offline is gone. The sender
still gets ``{"ok": true}``: the server accepted it. Claims at-most-once delivery.
"""

from __future__ import annotations

import logging
from typing import Any

from targets.common import after_connect, authenticate, forget_on_disconnect, make_server, parse_args, read_send, serve

log = logging.getLogger("naive")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    sid_of_user: dict[str, str] = {}

    forget_on_disconnect(sio, sid_of_user)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)

        async def route() -> None:
            sid_of_user[user] = sid

        after_connect(sio, sid, route)

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log)
        if isinstance(checked, dict):
            return checked
        target_sid = sid_of_user.get(data["to"])
        if target_sid is not None:
            await sio.emit("msg", checked[1], to=target_sid)
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
