"""Distributed runs: workers record, the master judges.

The transport is injected (Locust's custom messages in ``harness.locust_ext.distributed``), so this module has
no Locust import and its protocol is tested with an in-memory channel. Messages:

==============  ================  ===================================================================
type            direction         data
==============  ================  ===================================================================
``dlv_hello``   worker → master   {} - "send me the run" (repeated until answered)
``dlv_setup``   master → worker   run id, node name, scenario, target, the scenario's user ids, the
                                  master's wall clock when sent (``master_ns``), and, unless shipping
                                  is forced, the run folder and the token of its probe file
``dlv_clock``   worker → master   {offset_ms} - this worker's clock minus the master's, as seen on setup
``dlv_claim``   worker → master   {req} - one Locust user wants a scenario user
``dlv_slot``    master → worker   {req, slot | None}
``dlv_flags``   master → workers  {sending, stopped} - the run controller's switches
``dlv_track``   worker → master   {track: [[f, type, process, msg_id, recipient, room, conn], ...]} - what
                                  the live tracker reads of a sharding worker's rows, every
                                  ``SHIP_INTERVAL_S``
``dlv_rows``    worker → master   {first, count, blob, track} - a shipping worker's ledger lines
                                  ``first``..``first+count-1``, zlib-compressed, in order, every
                                  ``SHIP_INTERVAL_S`` (its own ``health`` rows among them: see below)
``dlv_flush``   master → workers  {} - close your ledger and send the rest
``dlv_flushed`` worker → master   {rows: n, closing | shard} - everything is written or sent: n rows in
                                  total, with the ``node_closed`` line (shipping) or ``shard: true``
==============  ================  ===================================================================

Where a worker's ledger goes. The master writes a probe file (``SHARD_PROBE``) with a random token in the
run folder and sends the folder and token with the run. A worker that reads that token there shares the
folder (the same machine, or a shared filesystem): it writes its own ``ledger-<node>.jsonl`` there with the
same writer and crash-safety as a local run (``ShardWriter``), and the master, which no longer handles its
rows, gets only the few fields its live tracker reads. Any other worker ships its rows (``ShippingWriter``):
encoded once, compressed, appended by the master without decoding. Either way the master's cost per row is
its live tracker's, not a row's decoding and writing (bench/README.md, "Ledger shipping").

The flush barrier matters: Locust's master fires ``test_stop`` before its workers' last reports arrive,
so the master asks every worker to flush and waits for each ``dlv_flushed`` before writing the verdict.
A worker's record counts as complete only when its count is confirmed: a shipped file gets its
``node_closed`` line from the master only when every row arrived, and a shard only when the file, as the
master reads it, ends with the worker's own ``node_closed`` row of that number. A worker that died, or
whose rows went missing, leaves an unclosed ledger, and the master's ``node`` row says so: the checker
reports what it observed as "unseen" (verdict unknown), never as lost.

Each worker samples its own CPU and memory once a second from the moment it has the run until its ledger
closes, as ``health`` rows with the role ``load-<node>`` (``load-worker-1``…), shipped like every other row:
the checker judges each load process's CPU, so a saturated worker makes a passing verdict unknown and the
verdict names it. The master samples itself (``load``), the target, proxy and store as in a local run.

Every row carries its own machine's wall clock, so on workers on other machines clock skew enters the
latencies and the fair-chance rule (docs/distributed.md). Each worker measures its offset from the
master's clock on setup (its clock on arrival minus ``master_ns``: the skew plus the one-way delay, an
upper bound when the worker is ahead) and warns past ``CLOCK_WARN_MS``; the master's ``node`` row for it
records ``clock_offset_ms``.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import gevent
import orjson
from gevent.event import AsyncResult, Event

from harness.config import Scenario
from harness.ledger.recorder import LedgerRecorder, LedgerWriter, Row, encode_row
from harness.run.context import RunContext, Slot, TrackerFields, tracker_fields
from harness.run.health import ProcessSampler

__all__ = ["SHIP_INTERVAL_S", "HEALTH_INTERVAL_S", "CLOCK_WARN_MS", "SHARD_PROBE", "ShippingWriter", "ShardWriter",
           "LedgerCollector", "WorkerRunContext", "Master", "Worker", "shard_path", "worker_role"]

log = logging.getLogger(__name__)

SHIP_INTERVAL_S = 0.2
"""How often a worker ships its buffered rows: bounds how stale the master's live view is."""

HEALTH_INTERVAL_S = 1.0
"""How often a worker samples its own CPU and memory (the master's controller samples at the same rate)."""

CLOCK_WARN_MS = 250.0
"""A worker whose clock is further than this from the master's says so (a second of skew starts to matter
against ``fair_chance_s``; a few milliseconds, what NTP keeps, never does)."""

SHARD_PROBE = ".shard-probe"
"""A file the master writes in the run folder with a random token it also sends its workers: a worker that
reads the same token there shares the folder, and writes its own ledger shard in it."""

ToMaster = Callable[[str, dict[str, Any]], None]
ToWorker = Callable[[str, dict[str, Any], str | None], None]
"""(type, data, client id or None for every worker)."""


def _is_closing(row: Row) -> bool:
    return row.get("f") == "phase" and (row.get("data") or {}).get("phase") == "node_closed"


class _TrackerShipper:
    """A worker's live-view feed: what the master's tracker reads of each row (``tracker_fields``), batched
    and sent every ``interval_s`` (and on every flush), in order."""

    def __init__(self, send: ToMaster, interval_s: float, tick: Callable[[], None] | None = None) -> None:
        """``tick`` is what the timer calls (default ``ship``; a shipping writer sends its rows with it)."""
        self._send = send
        self._interval_s = interval_s
        self._tick = tick or self.ship
        self.track: list[TrackerFields] = []
        self._greenlet: gevent.Greenlet | None = None

    def add(self, row: Row) -> None:
        fields = tracker_fields(row)
        if fields is not None:
            self.track.append(fields)
        if self._greenlet is None:  # started by the first row: a writer that never records costs nothing
            self._greenlet = gevent.spawn(self._every_interval)

    def _every_interval(self) -> None:
        while True:
            gevent.sleep(self._interval_s)
            try:
                self._tick()
            except Exception:  # e.g. Locust's send queue full: what was not sent stays buffered for the next tick
                log.exception("shipping ledger data to the master failed; retrying")

    def ship(self) -> None:
        """Send what the tracker has not seen yet (subclasses send rows with it)."""
        if self.track:
            self._send("dlv_track", {"track": self.track})
            self.track = []  # only once sent: a failed send keeps the batch

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)


class ShippingWriter(LedgerRecorder):
    """A worker's ledger when it cannot write the run folder itself (on another machine): rows are encoded
    here, and shipped to the master in order, one zlib-compressed batch of ledger lines every ``interval_s``
    with what the master's live tracker reads of them; the master appends the lines as they are, without
    decoding them. The ``node_closed`` row travels only with the final count (``dlv_flushed``), so the
    master writes it only once every row is confirmed to have arrived."""

    def __init__(self, run_id: str, node: str, send: ToMaster, interval_s: float = SHIP_INTERVAL_S) -> None:
        super().__init__(run_id, node)
        self._send = send
        self.interval_s = interval_s
        self._lines: list[bytes] = []
        self._closing: bytes | None = None
        self._shipped = 0
        self._feed = _TrackerShipper(send, interval_s, tick=self.flush)

    def _emit(self, row: Row) -> None:
        if _is_closing(row):
            self._closing = encode_row(row)
            return
        self._lines.append(encode_row(row))
        self._feed.add(row)

    def flush(self) -> None:
        if self._lines or self._feed.track:
            lines, track = self._lines, self._feed.track
            self._send("dlv_rows", {"first": self._shipped + 1, "count": len(lines),
                                    "blob": zlib.compress(b"".join(lines), 1), "track": track})
            self._lines, self._feed.track = [], []  # only once sent: a failed send keeps the batch, in order
            self._shipped += len(lines)

    def _release(self) -> None:
        self._feed.stop()
        self._send("dlv_flushed", {"rows": self.rows_written, "closing": self._closing})


class ShardWriter(LedgerWriter):
    """A worker's ledger when it can write the run folder (the master's machine, or a shared filesystem, as
    the master's probe file showed): its own ``ledger-<node>.jsonl`` there, written as a local run writes
    its ledger, so the master never handles its rows; only what the live tracker reads of them travels.
    ``close`` writes ``node_closed`` and syncs the file before it reports its count, and the master checks
    the file ends with that row before it calls the shard complete."""

    def __init__(self, path: str | Path, run_id: str, node: str, send: ToMaster,
                 interval_s: float = SHIP_INTERVAL_S) -> None:
        super().__init__(path, run_id, node)
        self._send = send
        self._feed = _TrackerShipper(send, interval_s)

    def _emit(self, row: Row) -> None:
        super()._emit(row)
        self._feed.add(row)

    def flush(self) -> None:
        super().flush()
        self._feed.ship()

    def _release(self) -> None:
        super()._release()
        self._feed.stop()
        self._send("dlv_flushed", {"rows": self.rows_written, "shard": True})


def shard_path(setup: dict[str, Any]) -> Path | None:
    """Where this worker writes its shard, or None to ship its rows: the run folder named in the setup, if
    this process reads the master's probe file there with the token the master sent."""
    folder, token = setup.get("shard_dir"), setup.get("shard_probe")
    if not folder or not token:
        return None
    try:
        seen = (Path(folder) / SHARD_PROBE).read_text()
    except OSError:
        return None
    return Path(folder) / f"ledger-{setup['node']}.jsonl" if seen == token else None


def _last_line(path: Path, window: int = 1 << 16) -> bytes:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - window))
        lines = f.read().splitlines()
    return lines[-1] if lines else b""


class LedgerCollector:
    """The master's end: each shipping worker's lines go to ``ledger-<node>.jsonl`` as they arrive, and what
    the tracker reads of every worker's rows (shipped or sharded) to ``on_fields``."""

    def __init__(self, run_dir: Path, on_fields: Callable[..., None]) -> None:
        self.run_dir = run_dir
        self.on_fields = on_fields
        self._files: dict[str, IO[bytes]] = {}
        self.received: dict[str, int] = {}
        self.broken: dict[str, str] = {}
        """Shipping nodes whose batches did not add up (a lost or garbled batch), with why."""
        self.totals: dict[str, int] = {}
        """Node → the row count its worker reported when it flushed (its record's last index)."""
        self.how: dict[str, str] = {}
        """Node → how its rows reached the run folder: ``shard`` (written by the worker) or ``shipped``."""
        self.flushed: set[str] = set()
        """Nodes whose ledger arrived complete."""
        self.incomplete: dict[str, str] = {}
        """Nodes that said they flushed but whose rows did not all arrive, with why."""

    def _file(self, node: str) -> IO[bytes]:
        if node not in self._files:
            self._files[node] = (self.run_dir / f"ledger-{node}.jsonl").open("ab", buffering=0)
            self.received[node] = 0
        return self._files[node]

    def track(self, node: str, fields: list[list[Any]], how: str = "shard") -> None:
        self.how.setdefault(node, how)
        for item in fields:
            self.on_fields(*item)

    def rows(self, node: str, first: int, count: int, blob: bytes, track: list[list[Any]]) -> None:
        out = self._file(node)
        lines = zlib.decompress(blob)
        found = lines.count(b"\n")
        if first != self.received[node] + 1 or found != count:
            self.broken.setdefault(node, f"a batch of rows {first}..{first + count - 1} arrived after row "
                                         f"{self.received[node]}, holding {found} lines")
        out.write(lines)
        self.received[node] += count
        self.track(node, track, "shipped")

    def flushed_by(self, node: str, total: int, closing: bytes | None) -> None:
        out = self._file(node)
        self.totals[node] = total
        got = self.received[node] + (closing is not None)
        if got == total and closing is not None and node not in self.broken:
            out.write(closing)
            self.flushed.add(node)
        else:
            self.incomplete[node] = self.broken.get(node, f"{got} of {total} ledger rows arrived")
            log.error("worker %s: %s; its ledger stays open", node, self.incomplete[node])

    def shard_closed(self, node: str, total: int) -> None:
        """A sharding worker closed its file: complete only if that file, as this machine reads it, ends with
        the worker's ``node_closed`` row numbered ``total``."""
        path = self.run_dir / f"ledger-{node}.jsonl"
        self.how.setdefault(node, "shard")
        self.totals[node] = total
        try:
            row = orjson.loads(_last_line(path))
        except (OSError, orjson.JSONDecodeError):
            row = None
        if (isinstance(row, dict) and _is_closing(row) and row.get("node") == node
                and row.get("index") == total):
            self.flushed.add(node)
        else:
            self.incomplete[node] = f"its ledger shard {path.name} does not end with its closing row {total}"
            log.error("worker %s: %s; its ledger stays open", node, self.incomplete[node])

    def close(self) -> None:
        for out in self._files.values():
            os.fsync(out.fileno())
            out.close()
        self._files.clear()


@dataclass
class WorkerRunContext(RunContext):
    """A worker's run context: the run arrives from the master (``configure``), slots are claimed from it."""

    ask_master: ToMaster | None = None
    ready: Event = field(default_factory=Event)
    _claims: dict[int, AsyncResult] = field(default_factory=dict)
    _req: itertools.count[int] = field(default_factory=itertools.count)
    claim_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        """No live tracker here: the master's follows the shipped rows, and nothing reads a worker's."""

    def configure(self, setup: dict[str, Any]) -> None:
        """Take the run; write this node's ledger shard in the run folder if this process shares it with
        the master (``shard_path``), else ship the rows (the writer given at construction)."""
        self.run_id = setup["run_id"]
        self.target = setup["target"]
        self.scenario = Scenario.model_validate(setup["scenario"])
        send = self.ask_master
        shard = shard_path(setup) if send is not None else None
        if shard is not None and send is not None:
            try:
                self.writer = ShardWriter(shard, self.run_id, setup["node"], send,
                                          getattr(self.writer, "interval_s", SHIP_INTERVAL_S))
            except OSError as exc:
                log.warning("cannot write the ledger shard %s (%s): shipping every row to the master", shard, exc)
        self.writer.run_id = self.run_id
        self.writer.node = setup["node"]
        self.slots = [Slot(user, cohort, "", "") for user, cohort in setup["users"]]
        self.ready.set()

    def claim_slot(self) -> Slot | None:
        """Ask the master for the next unclaimed scenario user (None when all are taken or it never answers)."""
        if not self.ready.wait(self.claim_timeout_s) or self.ask_master is None:
            return None
        req = next(self._req)
        answer: AsyncResult = AsyncResult()
        self._claims[req] = answer
        self.ask_master("dlv_claim", {"req": req})
        try:
            slot = answer.get(timeout=self.claim_timeout_s)
        except gevent.Timeout:
            log.error("the master did not answer a slot claim within %.0f s", self.claim_timeout_s)
            return None
        finally:
            self._claims.pop(req, None)
        return None if slot is None else Slot(**slot)

    def slot_granted(self, req: int, slot: dict[str, str] | None) -> None:
        answer = self._claims.get(req)
        if answer is not None:
            answer.set(slot)


class Master:
    """The master's side of the protocol, around the run context it drives."""

    def __init__(self, send: ToWorker, alive: Callable[[str], bool], shards: bool = True) -> None:
        """``shards``: let workers that share the run folder write their own ledger files (off: every row
        is shipped, as from a worker on another machine)."""
        self.send = send
        self.alive = alive
        self.shards = shards
        self._probe: str | None = None
        self.ctx: RunContext | None = None
        self.collector: LedgerCollector | None = None
        self.nodes: dict[str, str] = {}
        """Locust client id → node name, in the order workers said hello."""
        self.users: dict[str, list[str]] = {}
        """Node name → the scenario users it was granted."""
        self._waiting: list[str] = []
        self._reported = False
        self._flushing = False
        self.clock_offsets: dict[str, float] = {}
        """Node name → its clock minus the master's, in ms, as the worker measured it on setup."""

    def attach(self, ctx: RunContext, run_dir: Path) -> None:
        """The run exists: answer workers that said hello before it did, and relay the controller's flags."""
        self.ctx = ctx
        self.collector = LedgerCollector(run_dir, ctx.tracker.apply_fields)
        if self.shards:
            self._probe = secrets.token_hex(16)
            (run_dir / SHARD_PROBE).write_text(self._probe)
        ctx.flag_listeners.append(lambda sending, stopped: self.send(
            "dlv_flags", {"sending": sending, "stopped": stopped}, None))
        waiting, self._waiting = self._waiting, []
        for client in waiting:
            self.hello(client)

    def hello(self, client: str) -> None:
        if self.ctx is None:
            self._waiting.append(client)
            return
        node = self.nodes.setdefault(client, f"worker-{len(self.nodes) + 1}")
        ctx = self.ctx
        self.send("dlv_setup", {"run_id": ctx.run_id, "node": node, "target": ctx.target,
                                "scenario": ctx.scenario.model_dump(mode="json"),
                                "users": [[s.user_id, s.cohort] for s in ctx.slots],
                                "master_ns": time.time_ns(), **self._shard_offer()}, client)
        self.send("dlv_flags", {"sending": ctx.sending, "stopped": ctx.stopped}, client)
        if self._flushing:  # joined while the barrier waits: it is asked to close at once, like the others
            self.send("dlv_flush", {}, client)

    def _shard_offer(self) -> dict[str, str]:
        if self._probe is None or self.collector is None:
            return {}
        return {"shard_dir": str(self.collector.run_dir.resolve()), "shard_probe": self._probe}

    def claim(self, client: str, req: int) -> None:
        slot = self.ctx.claim_slot() if self.ctx is not None and client in self.nodes else None
        if slot is not None:
            self.users.setdefault(self.nodes[client], []).append(slot.user_id)
        self.send("dlv_slot", {"req": req, "slot": None if slot is None else asdict(slot)}, client)

    def clock(self, client: str, offset_ms: float) -> None:
        node = self.nodes.get(client)
        if node is not None:
            self.clock_offsets[node] = offset_ms
            if abs(offset_ms) > CLOCK_WARN_MS:
                log.warning("%s's clock is %+.0f ms from this one: latencies and the fair-chance rule are off by "
                            "as much (sync the clocks: docs/distributed.md)", node, offset_ms)

    def rows(self, client: str, data: dict[str, Any]) -> None:
        """A shipping worker's batch (``ShippingWriter.flush``)."""
        if self.collector is not None and client in self.nodes:
            self.collector.rows(self.nodes[client], int(data["first"]), int(data["count"]), data["blob"],
                                data.get("track") or [])

    def track(self, client: str, data: dict[str, Any]) -> None:
        """A sharding worker's tracker inputs (``ShardWriter``)."""
        if self.collector is not None and client in self.nodes:
            self.collector.track(self.nodes[client], data.get("track") or [])

    def flushed(self, client: str, data: dict[str, Any]) -> None:
        if self.collector is None or client not in self.nodes:
            return
        node, total = self.nodes[client], int(data["rows"])
        if data.get("shard"):
            self.collector.shard_closed(node, total)
        else:
            self.collector.flushed_by(node, total, data.get("closing"))

    def barrier(self, timeout_s: float = 20.0) -> list[str]:
        """Ask every worker to flush and wait until each has, or is gone; returns the nodes that did not."""
        if self.collector is None:
            return []
        self._flushing = True
        self.send("dlv_flush", {}, None)
        deadline = time.monotonic() + timeout_s
        collector = self.collector

        def pending() -> list[str]:
            return [client for client, node in self.nodes.items()
                    if node not in collector.flushed and node not in collector.incomplete and self.alive(client)]

        while pending() and time.monotonic() < deadline:
            gevent.sleep(0.05)
        missing = sorted(node for node in self.nodes.values() if node not in collector.flushed)
        if missing:
            log.error("no complete ledger from %s: what they observed will be reported unseen", ", ".join(missing))
        self._report_nodes()
        return missing

    def _report_nodes(self) -> None:
        """One ``node`` row per worker in the master's ledger: complete or not, and the users it ran (so a
        worker none of whose rows arrived still makes its users' messages unseen, not lost)."""
        if self._reported or self.ctx is None or self.collector is None:
            return
        self._reported = True
        for node in self.nodes.values():
            complete = node in self.collector.flushed
            reason = None if complete else self.collector.incomplete.get(
                node, "never confirmed its ledger flush (it died, or the run was cut short)")
            self.ctx.writer.append(process="controller", type="event", f="node", data={
                "node": node, "users": self.users.get(node, []), "complete": complete, "reason": reason,
                "clock_offset_ms": self.clock_offsets.get(node), "ledger": self.collector.how.get(node),
                "rows": self.collector.totals.get(node)})

    def close(self) -> None:
        """Before the master's own ledger closes: report every worker and close their files."""
        if self.collector is not None:
            self._report_nodes()
            self.collector.close()
            (self.collector.run_dir / SHARD_PROBE).unlink(missing_ok=True)


def worker_role(node: str) -> str:
    """The health-row role of a worker's load process: ``load-`` + its node name (the checker judges every
    role starting with ``load``)."""
    return f"load-{node}"


class Worker:
    """The worker's side: keeps asking for the run until it arrives, then follows the master's flags and
    samples its own process for ``health`` rows until its ledger closes."""

    def __init__(self, ctx: WorkerRunContext, send: ToMaster, hello_every_s: float = 1.0,
                 sample_every_s: float = HEALTH_INTERVAL_S,
                 sampler: Callable[[str], ProcessSampler] | None = None) -> None:
        """``sampler`` makes the sampler for a role (tests inject a fake; default: this process, via psutil)."""
        self.ctx = ctx
        self.send = send
        ctx.ask_master = send
        self._make_sampler = sampler or (lambda role: ProcessSampler(own_role=role, machine=False))
        self._sample_every_s = sample_every_s
        self._sampler: gevent.Greenlet | None = None
        self._hello = gevent.spawn(self._say_hello, hello_every_s)

    def _say_hello(self, every_s: float) -> None:
        while not self.ctx.ready.is_set():
            self.send("dlv_hello", {})
            self.ctx.ready.wait(every_s)

    def setup(self, data: dict[str, Any]) -> None:
        if not self.ctx.ready.is_set():
            arrived = time.time_ns()
            self.ctx.configure(data)
            if data.get("master_ns") is not None:
                offset_ms = round((arrived - int(data["master_ns"])) / 1e6, 1)
                self.send("dlv_clock", {"offset_ms": offset_ms})
                if abs(offset_ms) > CLOCK_WARN_MS:
                    log.warning("this machine's clock is %+.0f ms from the master's: sync the clocks "
                                "(docs/distributed.md)", offset_ms)
            self._sampler = gevent.spawn(self._sample_health, self._make_sampler(worker_role(self.ctx.writer.node)))

    def _sample_health(self, sampler: ProcessSampler) -> None:
        """One ``health`` row per interval until the ledger closes (appends after close are dropped anyway)."""
        writer = self.ctx.writer
        while not writer.closed:
            try:
                writer.append(process="controller", type="event", f="health", data=sampler.sample())
            except Exception:  # measuring must never end the run; a gap in samples is visible in the ledger
                log.exception("health sample failed")
            gevent.sleep(self._sample_every_s)

    def flags(self, data: dict[str, Any]) -> None:
        self.ctx.sending = bool(data.get("sending"))
        self.ctx.stopped = bool(data.get("stopped"))

    def _stop_sampling(self) -> None:
        if self._sampler is not None:
            self._sampler.kill(block=False)

    def flush(self) -> None:
        self._stop_sampling()
        self.ctx.writer.close()

    def stop(self) -> None:
        """At quit: ship whatever is buffered (no ``node_closed``: the master never asked, the run was cut)."""
        self._hello.kill(block=False)
        self._stop_sampling()
        if not self.ctx.writer.closed:
            self.ctx.writer.flush()
