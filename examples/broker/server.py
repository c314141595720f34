"""A line-based TCP message broker, written for this example: not HTTP, no keepalives, never imports the harness.

One JSON object per line, both ways:

    client → broker  {"op": "hello", "token": "<user>.<hmac>", "after": N}   first line; N: last offset seen
    broker → client  {"op": "welcome"}, then each kept message with offset > N
    client → broker  {"op": "pub", "id": "...", "to": "<user>", "body": {...}}
    broker → client  {"op": "ack", "id": "...", "ok": true}                    taken (false + "error": refused)
    broker → client  {"op": "msg", "offset": n, "body": {...}}                 a message for this client
    client → broker  {"op": "ping"}  →  {"op": "pong"}                         the broker never pings by itself

The body is opaque: the broker relays it as given (so a sender that wants its name on a message puts it in).
Modes (``--mode``):

- ``log`` (default): every message is kept per recipient, numbered (offset), and replayed after the offset
  the client names in its hello; a hello also drops what it acknowledges (offsets ≤ N). At-least-once.
- ``direct``: written to the recipient's current connection only, nothing kept, acked all the same (a
  fire-and-forget broker): whatever a dead connection swallowed is gone.

Identity: the hello's token, ``<user>.<hex HMAC-SHA256(secret, user)>``, secret from the environment
variable HARNESS_TARGET_SECRET. SIGTERM: closes the listener and exits 0.
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

SECRET = os.environ.get("HARNESS_TARGET_SECRET", "")


class Broker:
    """Per-recipient logs (``log`` mode) and each user's current connection."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.kept: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        self.last: dict[str, int] = defaultdict(int)
        self.online: dict[str, asyncio.StreamWriter] = {}

    @staticmethod
    def user_of(token: object) -> str | None:
        if not isinstance(token, str):
            return None
        user, _, digest = token.rpartition(".")
        good = hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
        return user if user and hmac.compare_digest(digest, good) else None

    @staticmethod
    def write(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def publish(self, to: str, body: dict[str, Any]) -> None:
        self.last[to] += 1
        offset = self.last[to]
        if self.mode == "log":
            self.kept[to].append((offset, body))
        writer = self.online.get(to)
        if writer is not None:
            self.write(writer, {"op": "msg", "offset": offset, "body": body})

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        user = None
        try:
            hello = json.loads(await reader.readline() or b"null")
            user = self.user_of(hello.get("token")) if isinstance(hello, dict) else None
            if user is None:
                self.write(writer, {"op": "error", "error": "first line must be a hello with a valid token"})
                return
            after = hello.get("after") if isinstance(hello.get("after"), int) else 0
            old = self.online.get(user)
            if old is not None:
                old.close()  # one connection per user: the newest wins
            self.online[user] = writer
            self.write(writer, {"op": "welcome"})
            self.kept[user] = [(o, b) for o, b in self.kept[user] if o > after]  # the cursor acknowledges
            for offset, body in self.kept[user]:
                self.write(writer, {"op": "msg", "offset": offset, "body": body})
            while line := await reader.readline():
                self.handle(writer, line)
                await writer.drain()
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            if user is not None and self.online.get(user) is writer:
                del self.online[user]
            writer.close()

    def handle(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        try:
            request = json.loads(line)
        except ValueError:
            self.write(writer, {"op": "error", "error": "not JSON"})
            return
        op = request.get("op") if isinstance(request, dict) else None
        if op == "ping":
            self.write(writer, {"op": "pong"})
        elif op == "pub":
            to, body = request.get("to"), request.get("body")
            if not isinstance(to, str) or not isinstance(body, dict):
                self.write(writer, {"op": "ack", "id": request.get("id"), "ok": False, "error": "need to and body"})
                return
            self.publish(to, body)
            self.write(writer, {"op": "ack", "id": request.get("id"), "ok": True})
        else:
            self.write(writer, {"op": "error", "error": f"unknown op {op!r}"})


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["log", "direct"], default="log")
    args = parser.parse_args()
    if not SECRET:
        sys.exit("error: the environment variable HARNESS_TARGET_SECRET (the token secret) is not set or empty")
    broker = Broker(args.mode)
    server = await asyncio.start_server(broker.serve, "127.0.0.1", args.port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"broker ({args.mode}) listening on {args.port}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
