"""Data-path conformance over real loopback TCP (reference §8 "Proxy and data")."""

from __future__ import annotations

import socket
import struct
import threading
import time

import httpx
import pytest

from harness.faults.client import ToxiproxyClient
from tests.conftest import EchoServer, SinkServer


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _echo_rtt(sock: socket.socket, payload: bytes) -> float:
    start = time.monotonic()
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += sock.recv(65536)
    assert got == payload
    return time.monotonic() - start


@pytest.fixture
def client(proxy_api: str) -> ToxiproxyClient:
    return ToxiproxyClient(proxy_api)


@pytest.mark.parametrize(("up_ms", "down_ms"), [(100, 0), (0, 100), (60, 40), (0, 0)])
def test_latency_per_leg(client: ToxiproxyClient, echo_server: EchoServer, up_ms: int, down_ms: int) -> None:
    proxy = client.create_proxy("lat", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("lat", "latency", stream="upstream", attributes={"latency": up_ms})
    client.add_toxic("lat", "latency", stream="downstream", attributes={"latency": down_ms})
    with _connect(proxy.port) as sock:
        rtt = _echo_rtt(sock, b"m" * 40_000)
    expected = (up_ms + down_ms) / 1000
    assert expected - 0.005 <= rtt < expected + 0.06


def test_65535_ordered_writes_survive_toxic_churn(client: ToxiproxyClient, sink_server: SinkServer) -> None:
    proxy = client.create_proxy("churn", f"127.0.0.1:{sink_server.port}")
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            client.add_toxic("churn", "latency", stream="upstream", name="lat", attributes={"latency": 50})
            time.sleep(0.01)
            client.remove_toxic("churn", "lat")

    churner = threading.Thread(target=churn)
    churner.start()
    try:
        with _connect(proxy.port) as sock:
            for i in range(65_535):
                sock.sendall(struct.pack(">H", i))
    finally:
        stop.set()
        churner.join(10)
    assert sink_server.done.wait(10), "the sink never saw EOF"
    data = sink_server.received[0]
    assert len(data) == 2 * 65_535
    assert list(struct.unpack(f">{65_535}H", data)) == list(range(65_535))


def test_timeout_toxicity_zero_passes_then_update_to_one_closes(
    client: ToxiproxyClient, echo_server: EchoServer
) -> None:
    proxy = client.create_proxy("tx", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("tx", "timeout", stream="downstream", toxicity=0.0, attributes={"timeout": 100})
    with _connect(proxy.port) as sock:
        _echo_rtt(sock, b"through")
        client.update_toxic("tx", "timeout_downstream", toxicity=1.0)
        start = time.monotonic()
        sock.settimeout(2)
        assert sock.recv(10) == b""
        assert time.monotonic() - start < 0.15 + 0.05


def test_removing_latency_beside_a_blackhole_does_not_hang(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("bh", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        client.add_toxic("bh", "timeout", stream="upstream", attributes={"timeout": 0})
        client.add_toxic("bh", "latency", stream="upstream", attributes={"latency": 1000})
        sock.sendall(b"x" * 1000)
        start = time.monotonic()
        client.remove_toxic("bh", "latency_upstream")
        assert time.monotonic() - start < 1
        start = time.monotonic()
        client.remove_toxic("bh", "timeout_upstream")
        sock.settimeout(1)
        assert sock.recv(10) == b""
        assert time.monotonic() - start < 1


def test_reset_peer_downstream_after_timeout(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("rst", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("rst", "reset_peer", stream="downstream", attributes={"timeout": 100})
    with _connect(proxy.port) as sock:
        start = time.monotonic()
        sock.sendall(b"ping")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
        assert 0.1 - 0.01 <= time.monotonic() - start < 0.1 + 0.11


def test_bandwidth_over_tcp(client: ToxiproxyClient, sink_server: SinkServer) -> None:
    proxy = client.create_proxy("bw", f"127.0.0.1:{sink_server.port}")
    client.add_toxic("bw", "bandwidth", stream="upstream", attributes={"rate": 1000})
    payload = bytes(range(256)) * 1875  # 480,000 B at 1000 KB/s: 480 ms
    start = time.monotonic()
    with _connect(proxy.port) as sock:
        sock.sendall(payload)
    assert sink_server.done.wait(5)
    elapsed = time.monotonic() - start
    assert sink_server.received[0] == payload
    assert 0.47 <= elapsed < 0.48 + 0.15


def test_limit_data_truncates_the_stream_exactly(client: ToxiproxyClient, sink_server: SinkServer) -> None:
    proxy = client.create_proxy("ld", f"127.0.0.1:{sink_server.port}")
    client.add_toxic("ld", "limit_data", stream="upstream", attributes={"bytes": 100})
    with _connect(proxy.port) as sock:
        sock.sendall(b"a" * 90)
        time.sleep(0.05)
        sock.sendall(b"b" * 20)
        sock.settimeout(2)
        assert sock.recv(10) == b""  # the proxy closed after 100 bytes
    assert sink_server.done.wait(5)
    assert sink_server.received[0] == b"a" * 90 + b"b" * 10


def test_limit_time_cuts_a_busy_connection(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("lt", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("lt", "limit_time", stream="downstream", attributes={"time": 300})
    start = time.monotonic()
    with _connect(proxy.port) as sock:
        sock.settimeout(2)
        while True:
            try:
                sock.sendall(b"ping")
                if not sock.recv(16):
                    break
            except (ConnectionResetError, BrokenPipeError):
                break
            time.sleep(0.02)
    assert 0.3 - 0.01 <= time.monotonic() - start < 0.3 + 0.1


def test_removing_stalled_bandwidth_toxics_under_load_does_not_hang(
    client: ToxiproxyClient, echo_server: EchoServer
) -> None:
    proxy = client.create_proxy("stall", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("stall", "bandwidth", stream="upstream", attributes={"rate": 0})
    client.add_toxic("stall", "bandwidth", stream="downstream", attributes={"rate": 0})
    with _connect(proxy.port) as sock:
        sock.sendall(b"q" * 200_000)
        start = time.monotonic()
        client.remove_toxic("stall", "bandwidth_upstream")
        client.remove_toxic("stall", "bandwidth_downstream")
        assert time.monotonic() - start < 1
        got = b""
        while len(got) < 200_000:
            got += sock.recv(65536)
        assert got == b"q" * 200_000  # nothing dropped


def test_metrics_count_bytes_per_direction(proxy_api_with_metrics: str, echo_server: EchoServer) -> None:
    client = ToxiproxyClient(proxy_api_with_metrics)
    proxy = client.create_proxy("m", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        _echo_rtt(sock, b"hello")
    time.sleep(0.1)
    text = httpx.get(f"{proxy_api_with_metrics}/metrics").text
    labels = f'listener="{proxy.listen}",proxy="m",upstream="127.0.0.1:{echo_server.port}"'
    for metric in ("received", "sent"):
        for direction in ("upstream", "downstream"):
            assert f'toxiproxy_proxy_{metric}_bytes_total{{direction="{direction}",{labels}}} 5' in text


def test_upstream_down_gives_the_client_eof_quickly(client: ToxiproxyClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    proxy = client.create_proxy("down", f"127.0.0.1:{dead}")
    with _connect(proxy.port) as sock:
        start = time.monotonic()
        sock.settimeout(2)
        assert sock.recv(10) == b""
        assert time.monotonic() - start < 0.5


def test_echo_round_trips_stay_correct_under_toxic_churn(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("rt", f"127.0.0.1:{echo_server.port}")
    with _connect(proxy.port) as sock:
        for i in range(100):
            if i % 2 == 0:
                client.add_toxic("rt", "noop", stream="upstream" if i % 4 else "downstream", name=f"n{i}")
            else:
                client.remove_toxic("rt", f"n{i - 1}")
            payload = f"message {i}".encode() * 50
            _echo_rtt(sock, payload)


def test_add_dial_write_close_remove_rounds_are_race_free(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("race", f"127.0.0.1:{echo_server.port}")
    for _ in range(200):
        client.add_toxic("race", "latency", stream="downstream", attributes={"latency": 0})
        with _connect(proxy.port) as sock:
            _echo_rtt(sock, b"x")
        client.remove_toxic("race", "latency_downstream")
    assert client.get_proxy("race").toxics == []


def test_throughput_through_a_100ms_latency_toxic(client: ToxiproxyClient, sink_server: SinkServer) -> None:
    proxy = client.create_proxy("fat", f"127.0.0.1:{sink_server.port}")
    client.add_toxic("fat", "latency", stream="upstream", attributes={"latency": 100})
    block = b"f" * (1 << 20)
    start = time.monotonic()
    with _connect(proxy.port) as sock:
        for _ in range(64):
            sock.sendall(block)
    assert sink_server.done.wait(20)
    assert len(sink_server.received[0]) == 64 << 20
    # The guarantee (upstream's TestLatencyToxicBandwidth): latency delays each chunk, it does not serialise
    # them. Serialised, 64 MiB in ~256 KiB reads would take ~25 s; pipelined it takes about 1 s here. The bound
    # only tells the two apart; how fast it is belongs to bench/proxy_bench.py (a busy machine measured 52 MB/s).
    assert time.monotonic() - start < 10


def test_reset_peer_with_no_wait(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("rst0", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("rst0", "reset_peer", stream="upstream", attributes={"timeout": 0})
    with _connect(proxy.port) as sock:
        sock.sendall(b"x")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)


def test_toxicity_is_drawn_per_connection(client: ToxiproxyClient, echo_server: EchoServer) -> None:
    proxy = client.create_proxy("half", f"127.0.0.1:{echo_server.port}")
    client.add_toxic("half", "latency", stream="downstream", toxicity=0.5, attributes={"latency": 80})
    slow = 0
    for _ in range(40):
        with _connect(proxy.port) as sock:
            if _echo_rtt(sock, b"t") >= 0.075:
                slow += 1
    assert 8 <= slow <= 32  # both outcomes occur; with 40 fair draws this fails with p < 1e-4
