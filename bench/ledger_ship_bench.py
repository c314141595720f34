"""Ledger shipping ceiling: how many ledger rows per second the master takes from its workers.

A real Locust master and N real worker processes (``locust --master`` / ``locust --worker``, loopback). Each
worker appends synthetic send/ack/recv rows of realistic size (the fields a DeliveryUser writes) as fast as it
can, for ``--seconds``, at most ``--rows`` rows, to the real writer of the mode:

- ``ship``: ``ShippingWriter`` (what a worker on another machine does): zlib-compressed batches of ledger
  lines over Locust's channel, which the master's real ``LedgerCollector`` appends to ``ledger-<node>.jsonl``
  and whose tracker fields feed the real ``DeliveryTracker``;
- ``shard``: ``ShardWriter`` (a worker sharing the run folder): the worker writes its own file, and only the
  tracker fields travel to the master.

The master reports the rows it accounted for per second while the workers were sending (shipped lines, or
tracker fields for a shard), and its own CPU over that window (psutil, in cores: 1.0 = one core busy).

    .venv/bin/python bench/ledger_ship_bench.py --workers 1 2 4 --modes ship shard --seconds 8

Offered rows exceed what the master takes, so the backlog waits in ZeroMQ queues; the bench stops at the end
of the window and reports only what arrived within it. Bounded: ``--seconds`` per point, ``--rows`` per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ != "__main__":  # loaded by locust -f: the master's and workers' side
    import gevent
    import psutil
    from locust import User, events
    from locust.runners import MasterRunner, WorkerRunner

    from harness.ledger.recorder import LedgerRecorder
    from harness.run.context import DeliveryTracker
    from harness.run.distributed import LedgerCollector, ShardWriter, ShippingWriter

    SECONDS = float(os.environ["SHIP_BENCH_SECONDS"])
    MAX_ROWS = int(os.environ["SHIP_BENCH_ROWS"])
    OUT = Path(os.environ["SHIP_BENCH_OUT"])
    MODE = os.environ["SHIP_BENCH_MODE"]
    RUN_DIR = Path(os.environ["SHIP_BENCH_DIR"])

    class Idle(User):
        def wait_time(self) -> float:
            return 1.0

        def on_start(self) -> None:
            while True:
                gevent.sleep(1)

    def ship(runner: WorkerRunner) -> None:
        node = f"worker-{os.getpid()}"
        send = lambda kind, data: runner.send_message(kind, data)  # noqa: E731
        writer: LedgerRecorder = (ShardWriter(RUN_DIR / f"ledger-{node}.jsonl", "bench-run", node, send)
                                  if MODE == "shard" else ShippingWriter("bench-run", node, send))
        deadline = time.monotonic() + SECONDS
        n = 0
        while n < MAX_ROWS and time.monotonic() < deadline:
            for _ in range(100):  # one message: invoke, ok (the ack), recv: the three rows a delivered send makes
                user, peer = f"u{n % 500}", f"u{(n + 7) % 500}"
                msg = f"bench-{os.getpid()}-{n}"
                writer.append(process=user, type="invoke", f="send", msg_id=msg, recipient=peer, seq=n,
                              conn=1, data={"payload_bytes": 64})
                writer.append(process=user, type="ok", f="send", msg_id=msg, recipient=peer, seq=n, conn=1)
                writer.append(process=peer, type="ok", f="recv", msg_id=msg, recipient=peer, sender=user,
                              seq=n, conn=1)
                n += 3
            gevent.sleep(0)
        writer.close()

    @events.test_start.add_listener
    def on_test_start(environment, **_):  # type: ignore[no-untyped-def]
        if isinstance(environment.runner, WorkerRunner):
            gevent.spawn(ship, environment.runner)

    @events.init.add_listener
    def on_init(environment, **_):  # type: ignore[no-untyped-def]
        runner = environment.runner
        if not isinstance(runner, MasterRunner):
            return
        tracker = DeliveryTracker()
        run_dir = RUN_DIR
        collector = LedgerCollector(run_dir, tracker.apply_fields)
        state: dict[str, float] = {"rows": 0, "first": 0.0}
        proc = psutil.Process()
        window: dict[str, float] = {}

        def started() -> None:
            if not state["first"]:
                state["first"] = time.monotonic()
                window["cpu0"] = sum(proc.cpu_times()[:2])
                gevent.spawn_later(SECONDS, finish)

        def on_rows(msg, **_):  # type: ignore[no-untyped-def]
            started()
            data = msg.data
            collector.rows(msg.node_id, data["first"], data["count"], data["blob"], data["track"])
            state["rows"] += data["count"]

        def on_track(msg, **_):  # type: ignore[no-untyped-def]
            started()
            collector.track(msg.node_id, msg.data["track"])
            state["rows"] += len(msg.data["track"])

        def finish() -> None:
            elapsed = time.monotonic() - state["first"]
            cpu = sum(proc.cpu_times()[:2]) - window["cpu0"]
            size = sum(p.stat().st_size for p in run_dir.glob("ledger-*.jsonl"))
            OUT.write_text(json.dumps({"mode": MODE, "rows": state["rows"], "seconds": round(elapsed, 2),
                                       "rows_per_s": round(state["rows"] / elapsed),
                                       "master_cpu_cores": round(cpu / elapsed, 2),
                                       "bytes_per_row": round(size / max(state["rows"], 1)),
                                       "rss_mb": round(proc.memory_info().rss / 2**20)}))
            collector.close()
            runner.quit()

        runner.register_message("dlv_rows", on_rows)
        runner.register_message("dlv_track", on_track)
        runner.register_message("dlv_flushed", lambda msg, **_: None)


def measure(workers: int, seconds: float, rows: int, mode: str) -> dict[str, float]:
    """One point: a master and ``workers`` worker processes; returns the master's figures."""
    locust = str(Path(sys.executable).with_name("locust"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        env = {**os.environ, "SHIP_BENCH_SECONDS": str(seconds), "SHIP_BENCH_ROWS": str(rows),
               "SHIP_BENCH_OUT": str(out), "SHIP_BENCH_MODE": mode, "SHIP_BENCH_DIR": str(run_dir),
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        common = ["-f", __file__, "--master-host", "127.0.0.1"]
        port = _free_port()
        master = subprocess.Popen([locust, *common[:2], "--master", "--master-bind-host", "127.0.0.1",
                                   "--master-bind-port", str(port), "--headless", "--expect-workers", str(workers),
                                   "-u", str(workers), "-r", str(workers), "-t", f"{int(seconds * 4 + 30)}s",
                                   "--loglevel", "WARNING"], env=env, stdout=subprocess.DEVNULL)
        procs = [subprocess.Popen([locust, *common, "--master-port", str(port), "--worker", "--loglevel", "WARNING"],
                                  env=env) for _ in range(workers)]
        try:
            master.wait(timeout=seconds * 4 + 60)
        finally:
            for p in [*procs, master]:
                if p.poll() is None:
                    p.terminate()
            for p in [*procs, master]:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        return json.loads(out.read_text()) if out.exists() else {}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rows", type=int, default=3_000_000, help="at most this many rows per worker")
    parser.add_argument("--modes", nargs="+", choices=["ship", "shard"], default=["ship", "shard"])
    args = parser.parse_args()
    for mode in args.modes:
        for n in args.workers:
            result = measure(n, args.seconds, args.rows, mode)
            print(json.dumps({"workers": n, **result}), flush=True)


if __name__ == "__main__":
    main()
