"""A chat server you might already have: HTTP long-polling, nothing to do with the harness.

POST /send {id, to, seq, body?, sent_ns?} → {"ok": true}; GET /poll?after=N waits up to 1 s and returns
{"messages": [{..., "offset": n}]} for the caller's messages after offset N, dropping those up to N (the
cursor is the ack). Identity: "Authorization: Bearer <user>.<hmac>" (the harness's token format), with the
secret from the environment variable HARNESS_TARGET_SECRET (the harness sets it; never on the command line).
SIGTERM: exits with status 0 within about half a second (open polls are cut short after 0.25 s).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import sys
from collections import defaultdict
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
SECRET = os.environ.get("HARNESS_TARGET_SECRET", "")
if not SECRET:
    sys.exit("error: the environment variable HARNESS_TARGET_SECRET (the token secret) is not set or empty")

inbox: dict[str, list[dict[str, Any]]] = defaultdict(list)
next_offset: dict[str, int] = defaultdict(int)
arrived = asyncio.Condition()


def user_of(request: Request) -> str | None:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    user, _, digest = token.rpartition(".")
    good = hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
    return user if user and hmac.compare_digest(digest, good) else None


async def send(request: Request) -> JSONResponse:
    user = user_of(request)
    if user is None:
        return JSONResponse({"ok": False, "error": "invalid token"}, status_code=401)
    data = json.loads(await request.body())
    to = data["to"]
    next_offset[to] += 1
    inbox[to].append({"id": data["id"], "from": user, "seq": data["seq"], "sent_ns": data.get("sent_ns"),
                      "offset": next_offset[to]})
    async with arrived:
        arrived.notify_all()
    return JSONResponse({"ok": True})


async def poll(request: Request) -> JSONResponse:
    user = user_of(request)
    if user is None:
        return JSONResponse({"ok": False, "error": "invalid token"}, status_code=401)
    after = int(request.query_params.get("after", "0"))
    inbox[user] = [m for m in inbox[user] if m["offset"] > after]  # the cursor acknowledges
    if not inbox[user]:
        async with arrived:
            try:
                await asyncio.wait_for(arrived.wait_for(lambda: bool(inbox[user])), 1.0)
            except TimeoutError:
                pass
    return JSONResponse({"messages": inbox[user][:500]})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/send", send, methods=["POST"]), Route("/poll", poll), Route("/healthz", healthz)])
# uvicorn re-raises SIGTERM after its graceful shutdown (it would die of the signal, status -15): exit 0
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", timeout_graceful_shutdown=0.25)  # type: ignore[arg-type]
