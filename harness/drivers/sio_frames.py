"""Socket.IO v5 packet text, and a cheaper way to read and write websocket-client's text frames, for both
Socket.IO drivers (no Locust import here, so it is unit-tested)."""

from __future__ import annotations

import os
from typing import Any

import orjson
import websocket
from websocket import ABNF

__all__ = ["READ_AHEAD", "FrameReader", "FrameWriter", "parse_packet", "event", "read_ahead"]

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


class FrameReader:
    """``ws.recv()`` for a server's frames, cheaper for the frames a run is made of: a final, unmasked text frame
    shorter than 64 KiB is cut out of a read-ahead buffer here and decoded strictly as UTF-8, as
    websocket-client does with ``skip_utf8_validation``. Any other frame (ping, pong, close, binary, fragments,
    masked or 64-bit lengths) goes to websocket-client's own ``recv`` together with the bytes read so far, and
    whatever it read beyond that frame comes back here, as do bytes it read ahead when its own ``recv`` was
    called by someone else (a reconnect of python-engineio's client did: without this, the frames after one
    were skipped). Reads go through websocket-client's socket wrapper, so
    timeouts and a closed connection raise its exceptions as before. One reader per connection; not for
    concurrent readers (each driver reads a connection from one greenlet)."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self._buffer = b""
        self._plain_recv = ws.recv
        self._drained = False
        """The last read returned less than it could: the socket is most likely empty now."""

    def recv(self) -> Any:
        if self.ws.frame_buffer.recv_buffer:
            self._read_more()
        while True:
            buffer = self._buffer
            size = len(buffer)
            if size >= 2 and buffer[0] == 0x81:
                length = buffer[1]
                if length < 126:
                    end = 2 + length
                    if size >= end:
                        self._buffer = buffer[end:]
                        return buffer[2:end].decode("utf-8")
                    self._read_more()
                    continue
                if length == 126:
                    if size >= 4:
                        end = 4 + int.from_bytes(buffer[2:4], "big")
                        if size >= end:
                            self._buffer = buffer[end:]
                            return buffer[4:end].decode("utf-8")
                    self._read_more()
                    continue
            elif size < 2:
                self._read_more()
                continue
            return self._websocket_client_recv(buffer)

    def _read_more(self) -> None:
        frames = self.ws.frame_buffer
        if frames.recv_buffer:  # websocket-client's own recv was used and read ahead: those bytes come next
            self._buffer += b"".join(frames.recv_buffer)
            frames.recv_buffer = []
            return
        if self._drained:
            _wait_readable(self.ws.sock)
        data: bytes = self.ws._recv(READ_AHEAD)  # type: ignore[no-untyped-call]  # raises as websocket-client does
        self._drained = len(data) < READ_AHEAD
        self._buffer += data

    def _websocket_client_recv(self, buffer: bytes) -> Any:
        """websocket-client reads the next frame, starting with ``buffer``; it keeps the bytes it does not need
        in its frame buffer, which hands them back."""
        frames = self.ws.frame_buffer
        self._buffer = b""
        frames.recv_buffer = [buffer, *frames.recv_buffer]
        try:
            return self._plain_recv()
        finally:
            self._buffer = b"".join(frames.recv_buffer)
            frames.recv_buffer = []


def _wait_readable(sock: Any) -> None:
    """Wait until a gevent socket is readable before reading it. gevent's ``recv`` first asks the socket and, when
    nothing is there (as after a read that emptied it: half of all reads in a run), takes the error, waits and asks
    again: one system call and one exception more per message received. The wait is gevent's own, on the socket's
    own watcher and timeout; a timeout raises websocket-client's ``WebSocketTimeoutException``, as its ``recv``
    does. Any other socket (not gevent's, or non-blocking) is read as before, and so is a TLS socket (``wss://``):
    what its TLS layer holds is not on the wire, and an empty wire with bytes left in the TLS layer (read ahead)
    would stall the connection until its timeout; kept to plain sockets, the wait needs no such reasoning."""
    wait = getattr(sock, "_wait", None)
    watcher = getattr(sock, "_read_event", None)
    if wait is None or watcher is None or sock.timeout == 0.0 or hasattr(sock, "pending"):
        return
    try:
        wait(watcher)
    except TimeoutError:
        raise websocket.WebSocketTimeoutException("Connection timed out") from None


class FrameWriter:
    """``ws.send(payload, opcode)`` for a client's frames, cheaper for text: the frame is put together here
    (final, masked with 4 random bytes from ``os.urandom``, drawn 4 KiB at a time; masked by websocket-client's
    ``ABNF.mask``) and written under websocket-client's send lock through its socket wrapper, so errors and
    timeouts raise as before. Other opcodes go to websocket-client's own ``send``."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self._plain_send = ws.send
        self._keys = b""

    def send(self, payload: str | bytes, opcode: int = ABNF.OPCODE_TEXT) -> int:
        if opcode != ABNF.OPCODE_TEXT or not isinstance(payload, str):
            return int(self._plain_send(payload, opcode))
        data = payload.encode("utf-8")
        n = len(data)
        if n < 126:
            header = bytes((0x81, 0x80 | n))
        elif n < 65536:
            header = b"\x81\xfe" + n.to_bytes(2, "big")
        else:
            header = b"\x81\xff" + n.to_bytes(8, "big")
        if len(self._keys) < 4:
            self._keys = os.urandom(4096)
        key, self._keys = self._keys[:4], self._keys[4:]
        frame = header + key + ABNF.mask(key, data)
        length = len(frame)
        ws = self.ws
        with ws.lock:
            while frame:
                frame = frame[ws._send(frame):]
        return length
