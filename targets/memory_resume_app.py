"""Resume from the last message the client saw, out of an in-memory pending list per user.

Every delivery carries a per-recipient ``offset`` ``"<epoch>-<n>"`` (n = 1, 2, 3, …; the epoch is new at
every start). The client acks each offset (``ack`` event) and the server trims it; on reconnect the
client says ``auth.last_seen = X`` and the server drops everything up to X and resends everything after
it, before any live message, so each user's stream stays in order. A cursor from another epoch (the
server restarted) is ignored rather than trusted: offsets restart at 1 and would otherwise skip new
messages. It survives reconnects; a server restart loses every pending message (memory only).

At-least-once and ordered: offsets are given in the order sends arrive, a replay goes out in offset order,
and live messages are routed to a new connection only once its replay has caught up (nothing is awaited
between the last check and the switch), so per sender→recipient first receipts keep the send order,
across replays too; a replay of something already seen is a duplicate, not a reorder. At most
``--max-pending`` messages wait per user; a send past that is refused (error ack), never stored.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict
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
from targets.routing import Routes

log = logging.getLogger("memory-resume")


def main() -> None:
    args = parse_args(__doc__ or "")
    sio = make_server(args)
    routes = Routes()
    sid_of_user = routes.sid_of_user
    pending: dict[str, OrderedDict[int, dict[str, Any]]] = {}
    next_offset: dict[str, int] = {}
    epoch = secrets.token_hex(4)
    bound = PendingBound(args.max_pending, log)

    def parse(offset: Any) -> int | None:
        """n of an offset from this epoch; None for anything else."""
        if not isinstance(offset, str):
            return None
        head, _, n = offset.partition("-")
        return int(n) if head == epoch and n.isdigit() else None

    forget_on_disconnect(sio, sid_of_user)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        user = await authenticate(sio, sid, auth, args.secret)
        routes.connecting(user, sid)
        cursor = auth.get("last_seen") if isinstance(auth, dict) else None
        last_seen = parse(cursor)
        if cursor is not None and last_seen is None:
            log.info("ignoring last_seen %r from %s (malformed, or from before a restart)", cursor, user)
        queue = pending.setdefault(user, OrderedDict())
        if last_seen is not None:
            for offset in [o for o in queue if o <= last_seen]:
                del queue[offset]

        async def replay_then_route() -> None:
            # Replay until caught up, and only then route live messages here: no await between the last
            # check and setting the sid, so nothing can slip in between (per-user order is kept).
            sent = last_seen or 0
            while backlog := [(o, m) for o, m in queue.items() if o > sent]:
                for offset, message in backlog:
                    await sio.emit("msg", {**message, "offset": f"{epoch}-{offset}", "resent": True}, to=sid)
                    sent = offset
            routes.route(sio, user, sid)  # not if the user came back elsewhere meanwhile

        after_connect(sio, sid, replay_then_route)

    @sio.on("ack")
    async def ack(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        user = (await sio.get_session(sid))["user"]
        offset = parse(data.get("offset") if isinstance(data, dict) else None)
        if offset is None:
            log.warning("malformed or stale ack from %s: %r", user, data)
            return {"ok": False, "error": "unknown offset"}
        pending.get(user, OrderedDict()).pop(offset, None)  # only ever this user's own list
        return {"ok": True}

    @sio.on("send")
    async def send(sid: str, data: Any = None, *extra: Any) -> dict[str, Any]:
        checked = await read_send(sio, sid, data, log)
        if isinstance(checked, dict):
            return checked
        to, message = data["to"], checked[1]
        queue = pending.setdefault(to, OrderedDict())
        if bound.full(len(queue)):
            return bound.refusal(message["from"], to)
        offset = next_offset.get(to, 0) + 1
        next_offset[to] = offset
        queue[offset] = message
        target_sid = sid_of_user.get(to)
        if target_sid is not None:
            await sio.emit("msg", {**message, "offset": f"{epoch}-{offset}"}, to=target_sid)
        return {"ok": True}

    serve(sio, args)


if __name__ == "__main__":
    main()
