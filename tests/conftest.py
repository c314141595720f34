"""Fixtures shared across the suite."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
from aiohttp import web

from harness.faults.api import PROXIES, ProxyCollection, create_app


@pytest.fixture
def proxy_api() -> Iterator[str]:
    """A real embedded proxy API on a loopback port, served from its own event-loop thread."""
    yield from _serve(ProxyCollection(seed=1))


@pytest.fixture
def proxy_api_with_metrics() -> Iterator[str]:
    yield from _serve(ProxyCollection(seed=1, metrics=True))


def _serve(collection: ProxyCollection) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        runner = web.AppRunner(create_app(collection), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"

    async def stop() -> None:
        app = holder["runner"].app  # type: ignore[attr-defined]
        for proxy in list(app[PROXIES].proxies.values()):
            await proxy.stop()
        await holder["runner"].cleanup()  # type: ignore[attr-defined]

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


class EchoServer:
    """A threaded TCP echo server on loopback."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


class SinkServer:
    """Accepts connections and records everything each one sends until EOF."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        data = bytearray()
        with conn:
            try:
                while chunk := conn.recv(65536):
                    data += chunk
            except OSError:
                pass
        self.received.append(bytes(data))
        self.done.set()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def sink_server() -> Iterator[SinkServer]:
    server = SinkServer()
    yield server
    server.close()
