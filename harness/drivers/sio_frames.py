"""Socket.IO v5 packet text, for the lean driver (no Locust import here, so it is unit-tested)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["parse_packet", "event"]


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
