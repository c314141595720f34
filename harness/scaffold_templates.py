"""The files ``harness new-target NAME`` writes (``string.Template``: ``$name``, ``$cls``), kept apart from the
command so each reads as the file it becomes.

The server is real (a small line-based TCP server that keeps messages per recipient and replays them after
the client's offset), so the scaffold's smoke run judges a real exchange through the fault proxy; the user
then swaps server and driver for their own. Imports nothing.
"""

from __future__ import annotations

__all__ = ["INIT", "SERVER", "DRIVER", "SCENARIO", "README"]

INIT = '''"""$name: a target for the delivery harness (scaffolded by harness new-target)."""
'''

SERVER = '''"""A stand-in server for $name: replace it with yours (or point [target.$name] command at yours).

Line-based TCP, one JSON object per line: the client says {"op": "hello", "token": T, "after": N}, the server
answers {"op": "welcome"} and replays every kept message with offset > N; {"op": "pub", "id", "to", "body"}
is answered {"op": "ack", "id", "ok": true} once kept; messages arrive as {"op": "msg", "offset", "body"};
{"op": "ping"} gets {"op": "pong"}. Tokens are <user>.<hex HMAC-SHA256(secret, user)>, the secret in the
environment variable HARNESS_TARGET_SECRET. It never imports the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
from collections import defaultdict
from typing import Any

SECRET = os.environ.get("HARNESS_TARGET_SECRET", "")
kept: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
last: dict[str, int] = defaultdict(int)
online: dict[str, asyncio.StreamWriter] = {}


def write(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(message).encode() + b"\\n")


def user_of(token: object) -> str | None:
    user, _, digest = str(token).rpartition(".")
    good = hmac.new(SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
    return user if user and hmac.compare_digest(digest, good) else None


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    user = None
    try:
        hello = json.loads(await reader.readline() or b"{}")
        user = user_of(hello.get("token"))
        if user is None:
            return
        online[user] = writer
        write(writer, {"op": "welcome"})
        after = int(hello.get("after") or 0)
        kept[user] = [(o, b) for o, b in kept[user] if o > after]  # the client's offset acknowledges
        for offset, body in kept[user]:
            write(writer, {"op": "msg", "offset": offset, "body": body})
        while line := await reader.readline():
            request = json.loads(line)
            if request.get("op") == "ping":
                write(writer, {"op": "pong"})
            elif request.get("op") == "pub":
                to = str(request["to"])
                last[to] += 1
                kept[to].append((last[to], request["body"]))
                if to in online:
                    write(online[to], {"op": "msg", "offset": last[to], "body": request["body"]})
                write(writer, {"op": "ack", "id": request.get("id"), "ok": True})
            await writer.drain()
    except (OSError, ValueError):
        pass
    finally:
        if user is not None and online.get(user) is writer:
            del online[user]
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"$name listening on {port}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
'''

DRIVER = '''"""The harness driver for $name: the client side of your protocol, in four methods.

What the harness gives you: self.slot.url (this user's proxy listener: connect there and nowhere else, or
faults miss you), self.slot.urls (one per named port), self.slot.token, self.user_id, self.last_offset
(the offset of the last message received: your resume cursor), self.options (your Options below, from
[target.$name.options]). What you give back: connected() / disconnected(reason) as your link comes and goes,
received(message, t_ns) for each delivery (message needs id, from, seq; offset optional), and for each send
exactly one of replied(msg_id, {"ok": True/False/None}) or completed(msg_id, "fail"/"info", error).
See docs/custom-target.md in the harness.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.lock
from pydantic import BaseModel, Field

from harness.drivers.base import DeliveryUser


class Options(BaseModel):
    """[target.$name.options]; an unknown or badly typed one stops the run before it starts."""

    ping_interval_s: float = Field(0.5, gt=0)
    silence_s: float = Field(1.5, gt=0)
    """Nothing received for this long: the link is dead (a blackhole sends no FIN and no RST)."""


class NotConnected(Exception):
    """A send while no link is up: it never left (the harness records "fail")."""


class ${cls}User(DeliveryUser):
    abstract = True  # the harness makes the concrete class
    Options = Options

    def open(self) -> None:
        """Connect, and keep reconnecting on your own; return once connected (or after connect_timeout_s)."""
        assert self.slot is not None and self.ctx is not None
        where = urlsplit(self.slot.url)
        self.address = (where.hostname or "127.0.0.1", where.port or 0)
        self.sock: socket.socket | None = None
        self.online = False
        self.lock = gevent.lock.Semaphore()
        self.loops = [gevent.spawn(self._connect_forever), gevent.spawn(self._ping_forever)]
        deadline = time.monotonic() + self.ctx.scenario.load.connect_timeout_s
        while not self.online and time.monotonic() < deadline:
            gevent.sleep(0.05)

    def is_open(self) -> bool:
        """Sends are attempted only while this is True."""
        return self.online

    def transmit(self, msg_id: str, payload: dict[str, Any]) -> None:
        """Send payload ({id, to, seq, sent_ns}); the answer comes later through replied()/completed()."""
        body = {**payload, "from": self.user_id}  # this server relays bodies as given: "from" travels inside
        try:
            self._send({"op": "pub", "id": msg_id, "to": payload["to"], "body": body})
        except NotConnected:
            raise
        except OSError as exc:
            self.completed(msg_id, "info", f"write failed: {exc}")  # part of it may have left

    def close(self) -> None:
        gevent.killall(self.loops, block=False)
        if self.sock is not None:
            self.sock.close()

    # -- your protocol ---------------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        if self.sock is None:
            raise NotConnected("not connected")
        with self.lock:
            self.sock.sendall(json.dumps(message).encode() + b"\\n")

    def _connect_forever(self) -> None:
        while True:
            reason = "closed by the server"
            try:
                with socket.create_connection(self.address, timeout=self.options.silence_s) as sock:
                    self.sock = sock
                    token = self.slot.token if self.slot else ""
                    self._send({"op": "hello", "token": token, "after": self.last_offset or 0})
                    for line in sock.makefile("rb"):
                        t_ns = time.time_ns()  # first thing: the receive time
                        self._handle(json.loads(line), t_ns)
            except TimeoutError:
                reason = f"silent link: no byte for {self.options.silence_s} s"
            except (OSError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.sock = None
            if self.online:
                self.online = False
                self.disconnected(reason)
            gevent.sleep(0.3)

    def _handle(self, message: dict[str, Any], t_ns: int) -> None:
        if message.get("op") == "welcome":
            self.online = True
            self.connected()
        elif message.get("op") == "msg":
            self.received({**message["body"], "offset": message["offset"]}, t_ns)
        elif message.get("op") == "ack":
            self.replied(str(message.get("id")), {"ok": message.get("ok"), "error": message.get("error")})

    def _ping_forever(self) -> None:
        while True:
            gevent.sleep(self.options.ping_interval_s)
            if self.online:
                try:
                    self._send({"op": "ping"})
                except (OSError, NotConnected):
                    pass
'''

SCENARIO = '''# Smoke run for $name (scaffolded by harness new-target): two users through the fault proxy;
# user a's network goes silent for 2 s while b keeps sending to it. From the folder holding $name/:
#     harness run $name/scenario.toml --expect
# exits 0 when the verdict is the one expected below. Then point `command` at your server and change the driver.

name = "$name-smoke"
targets = ["$name"]

[target.$name]
command = ["{python}", "-m", "$name.server", "--port", "{port}"]
driver = "$name.driver:${cls}User"
delivery = "at-least-once"      # what your server claims: at-most-once | at-least-once | effectively-once
ordered = true                  # it claims per-sender order
ready = { kind = "tcp" }        # or { kind = "http", path = "/healthz" }, "log" with a pattern, "command"
# ports = ["sub", "pub"]        # several ports: {port.sub} in the command, self.slot.urls["sub"] in the driver

[target.$name.options]
silence_s = 1.5

[heartbeat]
ping_interval_s = 0.5
ping_timeout_s = 1.5

[load]
duration_s = 6.0
rate_per_user = 10.0
ack_timeout_s = 2.0

[drain]
timeout_s = 6.0

[[cohorts]]
name = "a"
users = 1

[[cohorts]]
name = "b"
users = 1

[[faults]]
name = "a-silent"
type = "timeout"                # a blackhole: no FIN, no RST
cohort = "a"
at_s = 1.5
duration_s = 2.0
attributes = { timeout = 0 }

[expect.$name]
valid = true
max_lost = 0
'''

README = '''# $name

Scaffolded by `harness new-target $name`:

| file | what to do with it |
|---|---|
| `server.py` | a stand-in server, so the smoke run works at once; replace it with yours |
| `driver.py` | the client side of the protocol (`${cls}User`): adapt it to your server's protocol |
| `scenario.toml` | the target (`[target.$name]`: how to start it, what it claims) and a first scenario |

Smoke run, from the folder that holds `$name/`:

    harness run $name/scenario.toml --expect

Exit 0: the verdict is what `[expect.$name]` says. The driver surface is in the harness's docs/custom-target.md.
'''
