"""Bench only: how many Socket.IO connections one load process holds, with the real driver and ledger.

The users connect straight to the target (``BENCH_URL``), not through the fault proxy: the embedded proxy
needs two file descriptors per link and this machine caps a process at 20,000, so through it the ceiling
would be the proxy's (~9,990 links), not the load generator's. Light traffic: every user sends one
message per ``BENCH_PERIOD_S`` to the next user, recorded in the ledger as in a real run. Every
``BENCH_REPORT_S`` the process appends {t, connected, rss_mib, cpu_s} to ``BENCH_OUT/progress.jsonl``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import events

from harness.config import Scenario
from harness.drivers.socketio import SocketIOUser
from harness.ledger.recorder import LedgerWriter
from harness.run.context import RunContext, Slot
from targets.auth import sign


class HeldConnection(SocketIOUser):
    abstract = False


@events.init.add_listener
def _start(environment: Any, **_: Any) -> None:
    users = int(os.environ["BENCH_USERS"])
    out = Path(os.environ["BENCH_OUT"])
    scenario = Scenario.model_validate({
        "name": "connections", "targets": ["naive"], "cohorts": [{"name": "c", "users": users}],
        "load": {"rate_per_user": 1 / float(os.environ.get("BENCH_PERIOD_S", "30")), "duration_s": 3600,
                 "connect_timeout_s": 600, "ack_timeout_s": 30}})
    secret = os.environ["BENCH_SECRET"]
    slots = [Slot(f"c-{i}", "c", os.environ["BENCH_URL"], sign(f"c-{i}", secret)) for i in range(users)]
    ctx = RunContext(scenario, "naive", "bench", LedgerWriter(out / "ledger.jsonl", "bench", "local"), slots)
    ctx.set_flags(sending=True)
    HeldConnection.run_context = ctx
    environment.user_classes = [HeldConnection]
    me = psutil.Process()

    def report() -> None:
        with (out / "progress.jsonl").open("a") as handle:
            while True:
                cpu = me.cpu_times()
                handle.write(json.dumps({"t": time.time(), "connected": len(ctx.tracker.connected),
                                         "rss_mib": me.memory_info().rss / 2**20,
                                         "cpu_s": cpu.user + cpu.system,
                                         "received": sum(c["received"] for c in ctx.tracker.by_user.values()),
                                         "acked": sum(c["acked"] for c in ctx.tracker.by_user.values())}) + "\n")
                handle.flush()
                gevent.sleep(float(os.environ.get("BENCH_REPORT_S", "2")))

    gevent.spawn(report)
