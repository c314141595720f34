"""The embedded proxy over real loopback TCP: pass-through, toxics on live connections, the HTTP API."""

from __future__ import annotations

import socket
import time

import pytest
import toxiproxy

from harness.errors import ProxyError
from harness.faults.client import ToxiproxyClient
from tests.conftest import EchoServer


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture
def client(proxy_api: str) -> ToxiproxyClient:
    return ToxiproxyClient(proxy_api)


def test_passes_bytes_intact(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    assert proxy.listen.startswith("127.0.0.1:") and proxy.port > 0
    with _connect(proxy.port) as sock:
        assert _roundtrip(sock, b"hello world") == b"hello world"
        big = bytes(range(256)) * 256
        assert _roundtrip(sock, big) == big


def test_latency_toxic_applies_to_a_live_connection_and_removal_flushes(
    client: ToxiproxyClient, echo_server: EchoServer
) -> None:
    proxy = client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        assert _roundtrip(sock, b"warm") == b"warm"
        client.add_toxic("echo", "latency", stream="downstream", attributes={"latency": 200})
        start = time.monotonic()
        assert _roundtrip(sock, b"slow") == b"slow"
        elapsed = time.monotonic() - start
        assert 0.19 <= elapsed < 0.6
        # A chunk held by the toxic is released at once when the toxic is removed.
        sock.sendall(b"held")
        time.sleep(0.05)
        start = time.monotonic()
        client.remove_toxic("echo", "latency_downstream")
        assert sock.recv(16) == b"held"
        assert time.monotonic() - start < 0.15


def test_timeout_zero_is_a_silent_blackhole_and_removal_closes(
    client: ToxiproxyClient, echo_server: EchoServer
) -> None:
    proxy = client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        assert _roundtrip(sock, b"a") == b"a"
        client.add_toxic("echo", "timeout", stream="upstream", attributes={"timeout": 0})
        sock.sendall(b"into the void")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(16)
        sock.settimeout(2)
        client.remove_toxic("echo", "timeout_upstream")
        assert sock.recv(16) == b""  # EOF: removing a timeout toxic closes its connections


def test_reset_peer_sends_rst(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        assert _roundtrip(sock, b"a") == b"a"
        client.add_toxic("echo", "reset_peer", stream="upstream", attributes={"timeout": 100})
        start = time.monotonic()
        sock.sendall(b"b")
        with pytest.raises(ConnectionResetError):
            while sock.recv(16):
                pass
        assert 0.09 <= time.monotonic() - start < 1.0


def test_disable_refuses_and_enable_restores(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    client.update_proxy("echo", enabled=False)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
    client.update_proxy("echo", enabled=True)
    with _connect(proxy.port) as sock:
        assert _roundtrip(sock, b"back") == b"back"


def test_api_errors_and_shapes(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    assert client.proxies() == {}
    assert client.version() == "2.12.0"
    client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    with pytest.raises(ProxyError) as conflict:
        client.create_proxy("echo", f"127.0.0.1:{echo_server.port}")
    assert (conflict.value.status, conflict.value.message) == (409, "proxy already exists")
    with pytest.raises(ProxyError) as bad_type:
        client.add_toxic("echo", "wobble")
    assert (bad_type.value.status, bad_type.value.message) == (400, "invalid toxic type")
    with pytest.raises(ProxyError) as bad_stream:
        client.add_toxic("echo", "latency", stream="walrustream")
    assert bad_stream.value.status == 400
    added = client.add_toxic("echo", "latency", attributes={"latency": 10, "jitter": 2})
    assert added == {"attributes": {"latency": 10, "jitter": 2}, "name": "latency_downstream", "type": "latency",
                     "stream": "downstream", "toxicity": 1.0}
    updated = client.update_toxic("echo", "latency_downstream", attributes={"latency": 20})
    assert updated["attributes"] == {"latency": 20, "jitter": 2}
    with pytest.raises(ProxyError) as as_float:
        client.update_toxic("echo", "latency_downstream", attributes={"latency": 20.0})
    assert as_float.value.status == 400
    client.delete_proxy("echo")
    with pytest.raises(ProxyError) as missing:
        client.delete_proxy("echo")
    assert (missing.value.status, missing.value.message) == (404, "proxy not found")


def test_toxiproxy_python_drives_the_stand_in(proxy_api: str, echo_server: EchoServer) -> None:
    port = int(proxy_api.rpartition(":")[2])
    server = toxiproxy.Toxiproxy()
    server.update_api_consumer("127.0.0.1", port)
    proxy = server.create(upstream=f"127.0.0.1:{echo_server.port}", name="echo")
    listen_port = int(proxy.listen.rpartition(":")[2])
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    assert list(proxy.toxics()) == ["latency_downstream"]
    with _connect(listen_port) as sock:
        start = time.monotonic()
        assert _roundtrip(sock, b"x") == b"x"
        assert time.monotonic() - start >= 0.09
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    server.destroy(proxy)
    assert server.proxies() == {}
