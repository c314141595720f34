"""Proxy overhead: added latency per hop and bulk throughput, direct vs proxied, in one run.

Variants, each measured in the same run against the same echo/sink servers:
  direct            client → server
  bare              a minimal asyncio BufferedProtocol pass-through (the anchor's reference design)
  ours              `harness proxy`, no toxic
  ours+latency0     `harness proxy` with a 0 ms latency toxic in each direction (the toxic machinery's cost)

Latency: 64-byte ping-pong, N round trips after a warm-up; "added per hop" = (proxied RTT − direct RTT) / 2,
since a round trip crosses the proxy once in each direction. Bulk: MB/s of a one-way stream into a sink.
Run: .venv/bin/python bench/proxy_bench.py [--rounds 20000] [--bulk-mb 512]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.faults.client import ToxiproxyClient  # noqa: E402

BARE = r'''
import asyncio, sys
UP = ("127.0.0.1", int(sys.argv[2]))
class Side(asyncio.BufferedProtocol):
    def __init__(self, peer=None):
        self.peer, self.buf, self.pending = peer, bytearray(65536), []
    def connection_made(self, t):
        self.t = t
        if self.peer is None:
            t.pause_reading()
            asyncio.get_running_loop().create_task(self.dial())
    async def dial(self):
        _, other = await asyncio.get_running_loop().create_connection(lambda: Side(self), *UP)
        self.peer = other
        self.t.resume_reading()
    def get_buffer(self, n): return self.buf
    def buffer_updated(self, n): self.peer.t.write(bytes(self.buf[:n]))
    def pause_writing(self): self.peer.t.pause_reading()
    def resume_writing(self): self.peer.t.resume_reading()
    def eof_received(self): self.peer.t.close()
    def connection_lost(self, exc):
        if self.peer: self.peer.t.close()
async def main():
    server = await asyncio.get_running_loop().create_server(Side, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def echo_server() -> int:
    sock = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(sock.getsockname()[1])


def sink_server() -> int:
    sock = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        buf = bytearray(1 << 20)
        with conn:
            while conn.recv_into(buf):
                pass

    def accept() -> None:
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(sock.getsockname()[1])


def rtts(port: int, rounds: int) -> list[float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        msg = b"x" * 64
        out = []
        for i in range(rounds + 500):
            start = time.perf_counter_ns()
            sock.sendall(msg)
            got = 0
            while got < 64:
                got += len(sock.recv(64))
            if i >= 500:
                out.append((time.perf_counter_ns() - start) / 1000)
        return out


def bulk(port: int, megabytes: int) -> float:
    block = b"b" * (1 << 20)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.perf_counter()
        for _ in range(megabytes):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # wait for the close to come back through
        return megabytes * 1.048576 / (time.perf_counter() - start)


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--bulk-mb", type=int, default=512)
    args = parser.parse_args()
    echo, sink = echo_server(), sink_server()
    procs = []
    try:
        bare_echo, bare_sink = free_port(), free_port()
        for listen, upstream in ((bare_echo, echo), (bare_sink, sink)):
            p = subprocess.Popen([sys.executable, "-c", BARE, str(listen), str(upstream)], stdout=subprocess.PIPE)
            assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
            procs.append(p)
        ready = Path(tempfile.mkdtemp()) / "url"
        proxy = subprocess.Popen([sys.executable, "-m", "harness", "proxy", "--port", "0", "--ready-file", str(ready)],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proxy)
        while not (ready.exists() and ready.read_text()):
            time.sleep(0.05)
        client = ToxiproxyClient(ready.read_text())
        ours_echo = client.create_proxy("echo", f"127.0.0.1:{echo}").port
        ours_sink = client.create_proxy("sink", f"127.0.0.1:{sink}").port
        tox_echo = client.create_proxy("echo-tox", f"127.0.0.1:{echo}").port
        tox_sink = client.create_proxy("sink-tox", f"127.0.0.1:{sink}").port
        for name in ("echo-tox", "sink-tox"):
            for stream in ("upstream", "downstream"):
                client.add_toxic(name, "latency", stream=stream, attributes={"latency": 0})
        variants = {"direct": (echo, sink), "bare": (bare_echo, bare_sink), "ours": (ours_echo, ours_sink),
                    "ours+latency0": (tox_echo, tox_sink)}
        results: dict[str, dict[str, float]] = {}
        for name, (echo_port, sink_port) in variants.items():
            samples = rtts(echo_port, args.rounds)
            results[name] = {"rtt_p50_us": quantile(samples, 0.5), "rtt_p99_us": quantile(samples, 0.99),
                             "bulk_MBps": bulk(sink_port, args.bulk_mb)}
        base = results["direct"]
        print(f"{'variant':<15}{'RTT p50':>10}{'RTT p99':>10}{'+hop p50':>10}{'+hop p99':>10}{'MB/s':>9}{'x bare':>8}")
        for name, r in results.items():
            add50 = (r["rtt_p50_us"] - base["rtt_p50_us"]) / 2
            add99 = (r["rtt_p99_us"] - base["rtt_p99_us"]) / 2
            r["added_hop_p50_us"], r["added_hop_p99_us"] = add50, add99
            ratio = r["bulk_MBps"] / results["bare"]["bulk_MBps"]
            print(f"{name:<15}{r['rtt_p50_us']:>10.1f}{r['rtt_p99_us']:>10.1f}{add50:>10.1f}{add99:>10.1f}"
                  f"{r['bulk_MBps']:>9.0f}{ratio:>8.2f}")
        print(json.dumps(results, indent=1))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        os.sync()


if __name__ == "__main__":
    main()
