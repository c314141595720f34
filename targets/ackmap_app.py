"""The question's "Solution": a pending map per user keyed by emit id.

Every delivery is emitted with an ack callback; the entry stays pending until the recipient confirms
that emit id. When a user (identified by the token, never by socket id) connects, everything still
pending for them is emitted again, in emit-id order. At-least-once: a confirmation lost in a disconnect
makes a duplicate. In memory only: a server restart loses the map.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from targets.common import (
    PendingBound,
    after_connect,
    authenticate,
    forget_on_disconnect,
    make_server,
    parse_args,
    read_send,
    serve,
)

log = logging.getLogger("ackmap")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    sid_of_user: dict[str, str] = {}
    pending: dict[str, dict[int, dict[str, Any]]] = {}
    emit_ids = itertools.count(1)
    bound = PendingBound(args.max_pending, log)

    def confirmer(user: str, emit_id: int) -> Any:
        def confirm(*_ack: Any) -> None:
            pending.get(user, {}).pop(emit_id, None)

        return confirm

    forget_on_disconnect(sio, sid_of_user)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)

        async def replay_then_route() -> None:
            # Resend every unconfirmed emit (also those added during the replay), then route live ones
            # here; no await between the last check and setting the sid, so nothing slips through.
            done: set[int] = set()
            while backlog := [(i, m) for i, m in sorted(pending.get(user, {}).items()) if i not in done]:
                for emit_id, message in backlog:
                    done.add(emit_id)
                    await sio.emit("msg", {**message, "emit_id": emit_id, "resent": True}, to=sid,
                                   callback=confirmer(user, emit_id))
            sid_of_user[user] = sid

        after_connect(sio, sid, replay_then_route)

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log)
        if isinstance(checked, dict):
            return checked
        to, message = data["to"], checked[1]
        queue = pending.setdefault(to, {})
        if bound.full(len(queue)):
            return bound.refusal(message["from"], to)
        emit_id = next(emit_ids)
        queue[emit_id] = message
        target_sid = sid_of_user.get(to)
        if target_sid is not None:
            await sio.emit("msg", {**message, "emit_id": emit_id, "resent": False}, to=target_sid,
                           callback=confirmer(to, emit_id))
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
