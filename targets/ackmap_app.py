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

from targets.auth import verify
from targets.common import after_connect, make_server, message_for, parse_args, serve, validate_send

log = logging.getLogger("ackmap")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    sid_of_user: dict[str, str] = {}
    pending: dict[str, dict[int, dict[str, Any]]] = {}
    emit_ids = itertools.count(1)

    def confirmer(user: str, emit_id: int) -> Any:
        def confirm(*_ack: Any) -> None:
            pending.get(user, {}).pop(emit_id, None)

        return confirm

    async def deliver(user: str, emit_id: int, message: dict[str, Any], resent: bool) -> None:
        sid = sid_of_user.get(user)
        if sid is not None:
            await sio.emit("msg", {**message, "emit_id": emit_id, "resent": resent}, to=sid,
                           callback=confirmer(user, emit_id))

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = verify(auth, args.secret)
        if user is None:
            raise ConnectionRefusedError("invalid token")
        await sio.save_session(sid, {"user": user})

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
        message = message_for(sender, data)
        emit_id = next(emit_ids)
        pending.setdefault(data["to"], {})[emit_id] = message
        await deliver(data["to"], emit_id, message, resent=False)
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
