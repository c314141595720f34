"""Wires ``harness.run.distributed`` to Locust's runners: custom messages both ways, worker liveness, quitting.

``locust -f harness/locustfile.py --processes 2 …`` (or ``--master`` plus ``--worker`` processes given the
same ``--scenario`` and ``--target``): the master starts the stack, runs the controller and the faults,
and keeps the ledger; workers run the users and write their own ledger shards in the run folder, or, on another
machine (or with ``--ship-ledger``), ship their rows to the master.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from locust import events, runners
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from harness.config import Scenario
from harness.drivers.base import DeliveryUser
from harness.run.distributed import Master, ShippingWriter, Worker, WorkerRunContext

__all__ = ["WORKER_LIVENESS_S", "start_master", "start_worker"]

log = logging.getLogger(__name__)

WORKER_LIVENESS_S = 10.0
"""How long a worker may go without a heartbeat before the master marks it missing. Locust's own is 3 s
(``HEARTBEAT_LIVENESS`` beats of ``HEARTBEAT_INTERVAL``): on a busy machine a starved but healthy worker
missed it, Locust took its users away mid-spawn, and the run could not connect everyone. A dead worker is
still found: the flush barrier stops waiting for it once it is marked missing (or after the barrier's own
timeout), and its ledger stays unclosed."""


def start_master(environment: Environment) -> Master:
    """Register the master's message handlers now (workers may say hello before the stack is up)."""
    runner = environment.runner
    assert isinstance(runner, MasterRunner)

    def alive(client: str) -> bool:
        node = runner.clients.get(client)
        return node is not None and node.state != STATE_MISSING

    options = environment.parsed_options
    liveness_s = float(getattr(options, "worker_liveness_s", WORKER_LIVENESS_S) or WORKER_LIVENESS_S)
    runners.HEARTBEAT_LIVENESS = max(1, math.ceil(liveness_s / runners.HEARTBEAT_INTERVAL))  # read at each beat
    shards = not getattr(options, "ship_ledger", False)
    master = Master(lambda kind, data, client: runner.send_message(kind, data, client), alive, shards=shards)
    runner.register_message("dlv_hello", lambda msg, **_: master.hello(msg.node_id))
    runner.register_message("dlv_claim", lambda msg, **_: master.claim(msg.node_id, int(msg.data["req"])))
    runner.register_message("dlv_clock", lambda msg, **_: master.clock(msg.node_id, float(msg.data["offset_ms"])))
    runner.register_message("dlv_rows", lambda msg, **_: master.rows(msg.node_id, msg.data))
    runner.register_message("dlv_track", lambda msg, **_: master.track(msg.node_id, msg.data))
    runner.register_message("dlv_flushed", lambda msg, **_: master.flushed(msg.node_id, msg.data))
    return master


def start_worker(environment: Environment, scenario: Scenario, target: str, driver: type[DeliveryUser]) -> None:
    """Run ``driver`` users for the master's run; their rows go to a shard in the master's run folder, or to
    the master (``harness.run.distributed``)."""
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)

    def send(kind: str, data: dict[str, Any]) -> None:
        runner.send_message(kind, data)

    ctx = WorkerRunContext(scenario, target, "", ShippingWriter("", "", send), [])
    worker = Worker(ctx, send)

    def on_setup(msg: Any, **_: Any) -> None:
        if msg.data["target"] != target:
            log.error("this worker was started for target '%s' but the master runs '%s': pass the same "
                      "--scenario and --target to every process; this worker stays idle", target, msg.data["target"])
            return
        worker.setup(msg.data)

    runner.register_message("dlv_setup", on_setup)
    runner.register_message("dlv_slot", lambda msg, **_: ctx.slot_granted(int(msg.data["req"]), msg.data["slot"]))
    runner.register_message("dlv_flags", lambda msg, **_: worker.flags(msg.data))
    runner.register_message("dlv_flush", lambda **_: worker.flush())

    @events.quitting.add_listener
    def ship_the_rest(**_: Any) -> None:
        worker.stop()

    driver.run_context = ctx
    environment.user_classes = [driver]
