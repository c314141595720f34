"""Socket.IO v5 packet text, and one websocket-client tuning, for both Socket.IO drivers (no Locust import
here, so it is unit-tested)."""

from __future__ import annotations

from typing import Any

import orjson
import websocket

__all__ = ["READ_AHEAD", "parse_packet", "event", "read_ahead"]

READ_AHEAD = 4096
"""Bytes websocket-client may read per recv system call (it keeps what it does not need yet)."""


def parse_packet(text: str) -> tuple[str, int | None, Any]:
    """One Socket.IO packet (the part after Engine.IO's ``4``): (type, ack id or None, decoded JSON or None).

    Only the default namespace is used by the harness; a ``/nsp,`` prefix is skipped."""
    kind, rest = text[:1], text[1:]
    if rest.startswith("/"):
        _, _, rest = rest.partition(",")
    digits = 0
    while digits < len(rest) and rest[digits].isdigit():
        digits += 1
    ack = int(rest[:digits]) if digits else None
    body = rest[digits:]
    return kind, ack, orjson.loads(body) if body else None


def event(name: str, data: Any, ack: int | None = None) -> str:
    """The Engine.IO message carrying a Socket.IO EVENT (``42`` + optional ack id + JSON array)."""
    return f"42{'' if ack is None else ack}" + orjson.dumps([name, data]).decode()


def read_ahead(ws: websocket.WebSocket) -> None:
    """Let ``ws`` read up to ``READ_AHEAD`` bytes per recv system call. websocket-client asks its socket for
    exactly the part of a frame it needs next (2 header bytes, then the payload: two system calls per frame);
    its frame buffer already keeps any bytes beyond what it asked for, so frames that arrive together are
    read in one call. Framing, timeouts and close handling stay websocket-client's."""
    recv = ws.frame_buffer.recv
    ws.frame_buffer.recv = lambda bufsize: recv(max(bufsize, READ_AHEAD))
