"""The question's "Solution": a pending map per user keyed by emit id.

Every delivery is emitted with an ack callback; the entry stays pending until the recipient confirms
that emit id. When a user (identified by the token, never by socket id) connects, everything still
pending for them is emitted again, in emit-id order. At-least-once: a confirmation lost in a disconnect
makes a duplicate. In memory only: a server restart loses the map.

Rooms: ``join`` / ``leave`` events (``{room}``, answered ``{"ok": true}``) keep a member set per room, by
user (a member stays a member across reconnects). A send with ``room`` instead of ``to`` is put in the
pending map of every member but the sender at that moment, each with its own emit id, before the
sender's ack: every member gets it at least once, as for a direct message.
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
    room_of,
    serve,
)
from targets.routing import Routes

log = logging.getLogger("ackmap")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    routes = Routes()
    sid_of_user = routes.sid_of_user
    pending: dict[str, dict[int, dict[str, Any]]] = {}
    emit_ids = itertools.count(1)
    bound = PendingBound(args.max_pending, log)
    members: dict[str, set[str]] = {}

    def confirmer(user: str, emit_id: int) -> Any:
        def confirm(*_ack: Any) -> None:
            pending.get(user, {}).pop(emit_id, None)

        return confirm

    forget_on_disconnect(sio, sid_of_user)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)
        routes.connecting(user, sid)

        async def replay_then_route() -> None:
            # Resend every unconfirmed emit (also those added during the replay), then route live ones
            # here; no await between the last check and setting the sid, so nothing slips through.
            done: set[int] = set()
            while backlog := [(i, m) for i, m in sorted(pending.get(user, {}).items()) if i not in done]:
                for emit_id, message in backlog:
                    done.add(emit_id)
                    await sio.emit("msg", {**message, "emit_id": emit_id, "resent": True}, to=sid,
                                   callback=confirmer(user, emit_id))
            routes.route(sio, user, sid)  # not if the user came back elsewhere meanwhile

        after_connect(sio, sid, replay_then_route)

    async def membership(sid: str, data: Any, joining: bool) -> dict[str, Any]:
        room = room_of(data)
        if room is None:
            return {"ok": False, "error": "room must be a name of 1-64 letters, digits, _ . : -"}
        user = (await sio.get_session(sid))["user"]
        if joining:
            members.setdefault(room, set()).add(user)
        else:
            members.get(room, set()).discard(user)
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
        message = checked[1]
        recipients = sorted(members.get(message["room"], set()) - {message["from"]}) if "room" in message \
            else [data["to"]]
        for to in recipients:  # all or nothing: no member's backlog may be full
            if bound.full(len(pending.get(to, {}))):
                return bound.refusal(message["from"], to)
        deliveries = []
        for to in recipients:
            emit_id = next(emit_ids)
            pending.setdefault(to, {})[emit_id] = message
            deliveries.append((to, emit_id))
        for to, emit_id in deliveries:
            target_sid = sid_of_user.get(to)
            if target_sid is not None:
                await sio.emit("msg", {**message, "emit_id": emit_id, "resent": False}, to=target_sid,
                               callback=confirmer(to, emit_id))
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
