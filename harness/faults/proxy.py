"""Asyncio TCP proxy with Toxiproxy's data-path model.

Each accepted connection dials the upstream and gets two links. A link is one direction's chain::

    source socket ──read──▶ [toxic 1] ──▶ [toxic 2] ──▶ … ──write──▶ destination socket
                    (chunk stamped        one Stub per toxic per link,
                     on arrival)          run as one asyncio task each

With no toxic in a direction, chunks go straight from ``data_received`` to the destination (the fast path).
A new connection copies its proxy's chain at accept time; adding, updating or removing a toxic changes
every live link before the API call returns. Removal interrupts the toxic (it hands over the chunk it
holds), forwards its queue, then splices it out: no byte is dropped, except by toxics that exist to drop.
There is no TCP half-close: an EOF in either direction closes both sockets once pending data is through.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import random
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from harness.faults.base import EOF, STREAMS, Chunk, Stub, Toxic, _Eof

__all__ = ["Proxy", "Connection", "Link", "parse_address"]

log = logging.getLogger(__name__)

_REMOVE_WAIT_S = 2.0


_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})")


def parse_address(text: str) -> tuple[str, int]:
    """Split "host:port" (IPv6 in brackets, empty host allowed); raise ValueError with Go-like text when
    malformed. Hosts are checked here, not at bind or dial, so a bad one is a 400 before anything changes."""
    host, sep, port = text.rpartition(":")
    if not sep or not port:
        raise ValueError(f"address {text}: missing port in address")
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise ValueError(f"address {text}: invalid port")
    if host.startswith("[") or host.endswith("]"):
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else None
        try:
            ipaddress.IPv6Address(inner or "")
        except ValueError:
            raise ValueError(f"address {text}: invalid IPv6 host") from None
        return inner or "", int(port)
    if ":" in host:
        raise ValueError(f"address {text}: too many colons in address")
    if host and not _HOSTNAME.fullmatch(host):
        raise ValueError(f"address {text}: invalid host")
    return host, int(port)


@dataclass(eq=False)
class _Stage:
    toxic: Toxic
    stub: Stub
    task: asyncio.Task[None] | None = None
    removing: bool = False


class Link:
    """One direction of one connection: source → toxic stages → destination."""

    def __init__(self, connection: Connection, stream: str, rng: random.Random) -> None:
        self.connection = connection
        self.stream = stream
        self.stages: list[_Stage] = []
        self.dest: asyncio.Transport | None = None
        self._pending: list[bytes] = []
        self.rng = rng
        self._closed = False
        self.bytes_in = 0
        self.bytes_out = 0

    # -- data path ---------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if not self.stages:
            self._deliver(data)
        else:
            self.stages[0].stub.put(Chunk(data, time.monotonic()))

    def feed_eof(self) -> None:
        if not self.stages:
            self._deliver_eof()
        else:
            self.stages[0].stub.put(EOF)

    def forward_from(self, stub: Stub, item: Chunk | _Eof) -> None:
        """Pass an item from the stage owning ``stub`` to the next one (a stage stays listed until its task ends)."""
        for index, stage in enumerate(self.stages):
            if stage.stub is stub:
                self._forward(index + 1, item)
                return

    def _forward(self, index: int, item: Chunk | _Eof) -> None:
        if index < len(self.stages):
            self.stages[index].stub.put(item)
        elif isinstance(item, _Eof):
            self._deliver_eof()
        else:
            self._deliver(item.data)

    def _deliver(self, data: bytes) -> None:
        if self._closed:
            return
        if self.dest is None:
            self._pending.append(data)
            return
        self.bytes_out += len(data)
        self.dest.write(data)

    def _deliver_eof(self) -> None:
        self.connection.on_link_eof(self)

    def attach(self, dest: asyncio.Transport) -> None:
        self.dest = dest
        for data in self._pending:
            self.bytes_out += len(data)
            dest.write(data)
        self._pending.clear()

    # -- chain changes -----------------------------------------------------------------------------------
    def add(self, toxic: Toxic) -> None:
        stage = _Stage(toxic, Stub(self))
        self.stages.append(stage)
        stage.task = asyncio.get_running_loop().create_task(self._run(stage))

    async def _run(self, stage: _Stage) -> None:
        stub = stage.stub
        try:
            while not self._closed:
                stub.interrupted = False
                if self.rng.random() < stage.toxic.toxicity:
                    await stage.toxic.pipe(stub)
                else:
                    while (chunk := await stub.read()) is not None:
                        stub.write(chunk)
                if stub.eof:
                    self.forward_from(stub, EOF)
                    return
                if stage.removing or self._closed:
                    return
                # Interrupted for an update: run again with the new attributes (toxicity is redrawn).
        except Exception:  # a toxic must never take the proxy down
            log.exception("toxic %s crashed on a %s link; passing data through", stage.toxic.name, self.stream)

    def restart(self, toxic: Toxic) -> None:
        """Re-run a toxic after an update (its held chunk is released, toxicity redrawn)."""
        for stage in self.stages:
            if stage.toxic is toxic:
                stage.stub.interrupt()

    async def remove(self, toxic: Toxic) -> None:
        """Interrupt, flush and splice out a toxic; returns once the chain no longer holds it."""
        for stage in self.stages:
            if stage.toxic is toxic:
                break
        else:
            return
        stage.removing = True
        stage.stub.interrupt()
        if stage.task is not None and not stage.task.done():
            # Every built-in toxic returns promptly on interrupt; a misbehaving plug-in must not hang the API.
            done, _ = await asyncio.wait({stage.task}, timeout=_REMOVE_WAIT_S)
            if not done:
                log.warning("toxic %s ignored its interrupt; cancelling it", toxic.name)
                stage.task.cancel()
        index = self.stages.index(stage)
        remnants = stage.stub.drain()
        del self.stages[index]
        for item in remnants:
            self._forward(index, item)
        if toxic.closes_on_remove:
            self.connection.close()

    def stop(self) -> None:
        self._closed = True
        for stage in self.stages:
            stage.removing = True
            stage.stub.interrupt()


class _Side(asyncio.Protocol):
    """Protocol for one socket of a connection; reads feed the link leaving this socket."""

    def __init__(self, connection: Connection, outgoing: str) -> None:
        self.connection = connection
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.connection.side_made(self)

    def data_received(self, data: bytes) -> None:
        self.connection.links[self.outgoing].feed(data)

    def eof_received(self) -> bool:
        self.connection.links[self.outgoing].feed_eof()
        return True  # keep the socket open until the chain has flushed; Connection closes it

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.side_lost(self, exc)

    def pause_writing(self) -> None:
        self.connection.pause_source_of(self)

    def resume_writing(self) -> None:
        self.connection.resume_source_of(self)


class Connection:
    """One proxied client connection and its upstream connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        rng = proxy.rng
        self.links = {"upstream": Link(self, "upstream", rng), "downstream": Link(self, "downstream", rng)}
        self.client: _Side | None = None
        self.server: _Side | None = None
        self.closed = False
        self.opened = time.monotonic()
        for toxic in proxy.toxics.values():
            self.links[toxic.stream].add(toxic)

    def side_made(self, side: _Side) -> None:
        if side.outgoing == "upstream":  # the client socket
            self.client = side
            side.transport.pause_reading()  # type: ignore[union-attr]
            asyncio.get_running_loop().create_task(self._dial())
        else:
            self.server = side
            if self.closed:
                assert side.transport is not None
                side.transport.close()
                return
            assert side.transport is not None and self.client is not None and self.client.transport is not None
            self.links["upstream"].attach(side.transport)
            self.links["downstream"].attach(self.client.transport)
            self.client.transport.resume_reading()

    async def _dial(self) -> None:
        try:
            host, port = parse_address(self.proxy.upstream)
            loop = asyncio.get_running_loop()
            await loop.create_connection(lambda: _Side(self, "downstream"), host, port)
        except (OSError, ValueError) as exc:  # UnicodeError (a bad IDNA name) is a ValueError
            log.info("proxy %s: upstream %s unreachable: %s", self.proxy.name, self.proxy.upstream, exc)
            self.close()

    def on_link_eof(self, link: Link) -> None:
        """One direction ended after flushing: end the other direction too, then close both sockets."""
        other = self.links["downstream" if link.stream == "upstream" else "upstream"]
        link.stop()
        if not other._closed:
            other.feed_eof()
        else:
            self.close()

    def pause_source_of(self, side: _Side) -> None:
        source = self.client if side is self.server else self.server
        if source is not None and source.transport is not None:
            source.transport.pause_reading()

    def resume_source_of(self, side: _Side) -> None:
        source = self.client if side is self.server else self.server
        if source is not None and source.transport is not None and not self.closed:
            source.transport.resume_reading()

    def side_lost(self, side: _Side, exc: Exception | None) -> None:
        if not self.closed:
            self.links[side.outgoing].feed_eof()

    def close(self, reset: bool = False) -> None:
        """Close both sockets: FIN after buffered data, or RST (SO_LINGER 0) when ``reset``."""
        if self.closed:
            return
        self.closed = True
        for link in self.links.values():
            link.stop()
        for side in (self.client, self.server):
            if side is None or side.transport is None:
                continue
            if reset:
                sock = side.transport.get_extra_info("socket")
                if sock is not None:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                side.transport.abort()
            else:
                side.transport.close()
        if self in self.proxy.connections:
            self.proxy.connections.discard(self)
            for stream, link in self.links.items():
                self.proxy.closed_bytes[stream][0] += link.bytes_in
                self.proxy.closed_bytes[stream][1] += link.bytes_out


@dataclass(eq=False)
class Proxy:
    """A named listener that forwards to ``upstream`` through per-direction toxic chains."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True
    toxics: dict[str, Toxic] = field(default_factory=dict)
    connections: set[Connection] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)
    closed_bytes: dict[str, list[int]] = field(default_factory=lambda: {s: [0, 0] for s in STREAMS})
    """Per direction [received, sent] bytes of connections that have ended (for /metrics)."""
    _server: asyncio.base_events.Server | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Bind the listener (the resolved address replaces ``listen``)."""
        if self._server is None:
            await self.adopt(await self.bind(self.listen))

    async def bind(self, listen: str) -> asyncio.Server:
        """A listener on ``listen``, bound but not yet accepting: binding can fail, so callers bind
        everything they need first and change the proxy (``adopt``) only once nothing can fail any more."""
        host, port = parse_address(listen)
        if host in ("", "localhost"):
            host = "127.0.0.1"
        loop = asyncio.get_running_loop()

        def accept() -> _Side:
            connection = Connection(self)
            self.connections.add(connection)
            return _Side(connection, "upstream")

        return await loop.create_server(accept, host, port, reuse_address=True, start_serving=False)

    async def adopt(self, server: asyncio.Server) -> None:
        """Serve on a listener from ``bind``; an old listener and its connections are closed (a move)."""
        self._close_listener()
        self._close_connections()
        self._server = server
        bound = server.sockets[0].getsockname()
        self.listen = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
        await server.start_serving()

    async def move(self, listen: str, upstream: str) -> None:
        """Listen on a new address (and dial a new upstream); if the bind fails, raise with the proxy as it
        was, still listening on its old address. Needs a running proxy."""
        try:
            server = await self.bind(listen)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or self._server is None:
                raise
            server = await self._bind_in_place(listen)  # e.g. 127.0.0.1:p -> 0.0.0.0:p conflicts with itself
        self.upstream = upstream
        await self.adopt(server)

    async def _bind_in_place(self, listen: str) -> asyncio.Server:
        """Release our own listener, then bind ``listen``; on failure re-bind the old address and raise."""
        self._close_listener()
        try:
            return await self.bind(listen)
        except OSError:
            try:
                self._server = await self.bind(self.listen)
                await self._server.start_serving()
            except OSError:
                log.exception("proxy %s lost its listener %s while moving to %s", self.name, self.listen, listen)
                self.enabled = False
            raise

    def retarget(self, upstream: str) -> None:
        """Dial a new upstream from now on; live connections (to the old one) are closed, as upstream does."""
        self.upstream = upstream
        self._close_connections()

    async def stop(self) -> None:
        """Close the listener and every connection (FIN)."""
        self._close_listener()
        self._close_connections()

    def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _close_connections(self) -> None:
        for connection in list(self.connections):
            connection.close()

    def add_toxic(self, toxic: Toxic) -> None:
        self.toxics[toxic.name] = toxic
        for connection in list(self.connections):
            connection.links[toxic.stream].add(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        for connection in list(self.connections):
            connection.links[toxic.stream].restart(toxic)

    async def remove_toxic(self, name: str) -> None:
        toxic = self.toxics.pop(name)
        await asyncio.gather(*(c.links[toxic.stream].remove(toxic) for c in list(self.connections)))

    def byte_counts(self) -> dict[str, tuple[int, int]]:
        """Per direction (received, sent) bytes, ended connections plus live ones."""
        counts = {}
        for stream in STREAMS:
            received, sent = self.closed_bytes[stream]
            for connection in self.connections:
                received += connection.links[stream].bytes_in
                sent += connection.links[stream].bytes_out
            counts[stream] = (received, sent)
        return counts

    def to_json(self) -> dict[str, Any]:
        ordered = [t for s in STREAMS for t in self.toxics.values() if t.stream == s]
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in ordered],
        }
