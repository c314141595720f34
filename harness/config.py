"""Scenario files: frozen, validated value objects (pydantic), loaded once at the edge.

A scenario is a TOML file (see scenarios/heartbeat-timeout.toml, and docs/scenario.md, which is generated from
these models). Every error names the file, the field (dotted path) and the reason.
"""

from __future__ import annotations

import random
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ScenarioError
from harness.run.targets import DEFAULT_PORT, PLACEHOLDERS, Claims, TargetSpec, builtin_targets, placeholders

__all__ = [
    "Heartbeat",
    "Load",
    "Drain",
    "Health",
    "Cohort",
    "Store",
    "FaultSpec",
    "PROCESS_FAULTS",
    "Expectation",
    "GatePolicy",
    "TargetDef",
    "Readiness",
    "Scenario",
    "load_scenario",
    "resolve_target",
    "check_target_fits",
]


class _Frozen(BaseModel):
    # inf and NaN are refused everywhere: a timeout of inf never ends and NaN compares false with every bound
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Heartbeat(_Frozen):
    """Engine.IO heartbeat the targets are started with (real defaults are 25 s + 20 s)."""

    ping_interval_s: float = Field(1.0, gt=0)
    """Seconds between the server's pings (Socket.IO's default is 25)."""
    ping_timeout_s: float = Field(1.0, gt=0)
    """Seconds the server waits for a pong before it drops the connection (Socket.IO's default is 20)."""


class Load(_Frozen):
    """How users send. Every loop is bounded by ``duration_s`` and ``max_messages_per_user``."""

    duration_s: float = Field(10.0, gt=0, le=24 * 3600)
    """Sending window, from the moment every user is connected."""
    rate_per_user: float = Field(10.0, gt=0, le=10_000)
    """Messages per second each user sends, round-robin over the other users."""
    max_messages_per_user: int = Field(100_000, gt=0)
    ack_timeout_s: float = Field(3.0, gt=0)
    """A send with no server ack after this long ends ``info`` (outcome unknown)."""
    connect_timeout_s: float = Field(20.0, gt=0)
    """How long to wait for every user's first connect before the sending window opens anyway."""


class Drain(_Frozen):
    """After sending stops: wait until every acked send is delivered (quiescence) or the timeout."""

    timeout_s: float = Field(10.0, ge=0, le=24 * 3600)
    """How long to wait for quiescence. While deliveries are still arriving at this point the drain goes on,
    up to ``max_s``: a slow replay is given its time instead of being reported as loss."""
    settle_s: float = Field(0.5, ge=0, le=3600)
    """Quiet time after quiescence, to catch late duplicates."""
    max_s: float | None = Field(None, ge=0, le=24 * 3600)
    """Hard limit of the drain while it is still making progress (default: 4 × ``timeout_s``). Reaching it
    while deliveries still arrive makes the verdict ``unknown`` ("still delivering at the limit")."""
    fair_chance_s: float | None = Field(None, ge=0, le=3600)
    """A message counts as lost only if its recipient was connected without interruption for at least this
    long before the drain ended; otherwise it is ``unseen`` ("no fair chance"). Default: the heartbeat's
    ping interval + ping timeout + ``settle_s`` + 1 s (time to notice a dead link, reconnect and replay)."""

    @property
    def limit_s(self) -> float:
        return self.max_s if self.max_s is not None else 4 * self.timeout_s


class Health(_Frozen):
    """When the experiment itself was too sick to support a verdict (a passing verdict becomes ``unknown``).

    Relax a limit only when you know why: e.g. ``min_ack_share = 0.1`` for a target that refuses most sends
    on purpose. The rules are in ``harness.checker.health``.
    """

    min_connected_share: float = Field(1.0, ge=0, le=1)
    """Share of the users that must be connected when sending starts. Below it sending does not start."""
    min_ack_share: float = Field(0.5, ge=0, le=1)
    """Share of the sends made while no fault is active that must be acknowledged."""
    min_offered_share: float = Field(0.4, ge=0, le=1)
    """Share of the planned sends (users × rate × duration, capped by ``max_messages_per_user``) the load
    generator must actually make: below it, the load the scenario describes was never offered."""
    max_cpu_pct: float = Field(90.0, gt=0, le=100)
    """A load process at or above this CPU (percent of one core) is saturated..."""
    max_cpu_saturated_share: float = Field(0.25, ge=0, le=1)
    """...and the run is unhealthy when that holds for more than this share of the sending window."""
    max_wait_pct: float = Field(50.0, gt=0, le=100)
    """A load process that waited for a core at least this share of the time (run-queue wait), for more than
    ``max_cpu_saturated_share`` of the window, was starved by other work: a warning (its latencies include it)."""


class Store(_Frozen):
    """The redis-server the harness starts for targets that need a store (one per run, on a free port)."""

    persistence: Literal["none", "everysec", "always"] = "none"
    """none: memory only; everysec / always: AOF with that fsync policy (survives a store restart)."""


class Deploy(_Frozen):
    """How many instances of the target run at once (cohort i connects to instance i mod N)."""

    instances: int = Field(1, ge=1, le=16)


ROOM_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
"""A room name: what the reference targets accept (``targets.common.ROOM_NAME``)."""


class Cohort(_Frozen):
    """A group of users sharing one fault-proxy listener, so a fault can hit this group alone."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    users: int = Field(1, ge=1, le=20_000)
    rate_per_user: float | None = Field(None, gt=0, le=10_000)
    """This cohort's send rate, instead of ``[load] rate_per_user`` (a burst from one group)."""
    rooms: list[Annotated[str, Field(pattern=ROOM_PATTERN)]] = Field(default_factory=list, max_length=64)
    """Rooms every user of the cohort joins once connected (and asks to join again after each reconnect, as an
    app's connect handler does); what a member must receive is in docs/scenario.md "Rooms"."""
    send_to: Literal["users", "rooms", "nobody"] = "users"
    """``users``: each send goes to another user, round robin; ``rooms``: to one of the cohort's ``rooms``,
    round robin (a broadcast to its members); ``nobody``: the cohort only listens (a room's audience)."""

    @model_validator(mode="after")
    def _rooms_to_send_to(self) -> Cohort:
        if self.send_to == "rooms" and not self.rooms:
            raise _FieldError("send_to", "send_to = \"rooms\" needs the cohort's rooms (rooms = [\"lobby\"])")
        return self


class MembershipChange(_Frozen):
    """Every user of a cohort joins or leaves a room during sending (members coming and going while messages
    flow); occurrence k happens at ``at_s + k * every_s``, each user up to ``spread_s`` later (seeded)."""

    cohort: str
    room: str = Field(pattern=ROOM_PATTERN)
    action: Literal["join", "leave"]
    at_s: float = Field(ge=0)
    """Seconds after sending starts; must be before sending stops."""
    repeat: int = Field(1, ge=1, le=10_000)
    every_s: float | None = Field(None, gt=0)
    spread_s: float = Field(0.0, ge=0)
    """Each user acts up to this much later than ``at_s`` (so 1,000 members do not leave in one millisecond)."""

    @model_validator(mode="after")
    def _repeats_have_a_period(self) -> MembershipChange:
        if self.repeat > 1 and self.every_s is None:
            raise _FieldError("every_s", "a repeated membership change needs every_s (seconds between them)")
        return self

    def starts(self) -> list[float]:
        return [self.at_s + k * (self.every_s or 0.0) for k in range(self.repeat)]


PROCESS_FAULTS: dict[str, str] = {
    "kill_target": "SIGKILL the target; it is started again (same port) after duration_s",
    "restart_target": "SIGTERM the target (graceful shutdown); started again (same port) after duration_s",
    "kill_store": "SIGKILL the store (redis-server); started again after duration_s",
    "restart_store": "SIGTERM the store; started again after duration_s",
    "rolling_restart": "restart the target's instances one at a time, each drained first ([deploy] instances >= 2)",
}


class FaultSpec(_Frozen):
    """One fault in the timeline, from ``at_s`` for ``duration_s`` (healed when the drain starts at the latest).

    Either a Toxiproxy toxic on one cohort's proxy listener (``type`` = a toxic name, ``cohort`` required),
    or a process fault (``type`` in PROCESS_FAULTS, no cohort): the process is down for ``duration_s``.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Unique within the scenario; it names the fault in the ledger, the report and the web UI."""
    type: str
    """A toxic (``timeout``, ``reset_peer``, ``latency``, …) or a process fault (``kill_target``, …)."""
    cohort: str | None = None
    """The cohort whose proxy listener a toxic sits on (none for a process fault)."""
    port: str | None = None
    """Which of the target's named ports (``[target.NAME] ports``) the toxic sits on; default: every port of
    the cohort (one toxic per listener). A fault on one port leaves the cohort's other listeners alone."""
    stream: Literal["upstream", "downstream", "both"] = "both"
    """upstream = client→server, downstream = server→client."""
    at_s: float = Field(ge=0)
    """Seconds after sending starts; must be before sending stops."""
    duration_s: float = Field(gt=0)
    """How long it lasts (healed when the drain starts at the latest)."""
    toxicity: float = Field(1.0, ge=0, le=1)
    """Share of connections the toxic applies to (Toxiproxy's toxicity)."""
    attributes: dict[str, Any] = Field(default_factory=dict)
    """The toxic's own fields (Toxiproxy's names, e.g. ``latency``, ``timeout``, ``rate``): each one checked by
    name, type and range when the scenario is loaded, so a fault the proxy would refuse never reaches a run."""
    repeat: int = Field(1, ge=1, le=10_000)
    """How many times the fault happens (flapping, soak); occurrence k starts at ``at_s + k * every_s``."""
    every_s: float | None = Field(None, gt=0)
    jitter_s: float = Field(0.0, ge=0)
    """Each occurrence starts up to this much later, drawn from the scenario's seed (same seed, same times)."""

    @model_validator(mode="after")
    def _attributes_fit_the_type(self) -> FaultSpec:
        if self.is_process_fault:
            if self.attributes:
                raise _FieldError("attributes", f"a {self.type} fault takes no attributes")
            if self.port is not None:
                raise _FieldError("port", f"a {self.type} fault hits the whole process; remove the port")
            return self
        from harness.faults import toxics as _builtin  # noqa: F401  (registers the built-in toxics)
        from harness.faults.base import ToxicValidationError, registry

        try:  # names, integer types and ranges, as the proxy itself would judge them
            registry()[self.type].check_attributes(self.attributes)
        except ToxicValidationError as exc:
            raise _FieldError("attributes", f"{self.type}: {exc}") from None
        return self

    @model_validator(mode="after")
    def _occurrences_do_not_overlap(self) -> FaultSpec:
        if self.repeat > 1:
            if self.every_s is None:
                raise _FieldError("every_s", "a repeated fault needs every_s (seconds between its starts)")
            if self.every_s <= self.duration_s + self.jitter_s:
                raise _FieldError("every_s", "must be longer than duration_s + jitter_s: occurrences would overlap")
        return self

    def starts(self, seed: int) -> list[float]:
        """When each occurrence starts, in seconds from the start of sending (deterministic given the seed)."""
        every = self.every_s or 0.0
        return [self.at_s + k * every + (random.Random(f"{seed}:{self.name}:{k}").uniform(0, self.jitter_s)
                                          if self.jitter_s else 0.0) for k in range(self.repeat)]

    @field_validator("type")
    @classmethod
    def _known_toxic(cls, value: str) -> str:
        from harness.faults import toxics as _builtin  # noqa: F401
        from harness.faults.base import registry

        if value not in registry() and value not in PROCESS_FAULTS:
            known = sorted(registry()) + sorted(PROCESS_FAULTS)
            raise ValueError(f"unknown fault type '{value}'; known: {', '.join(known)}")
        return value

    @property
    def is_process_fault(self) -> bool:
        return self.type in PROCESS_FAULTS

    @property
    def streams(self) -> list[str]:
        return ["upstream", "downstream"] if self.stream == "both" else [self.stream]


class Expectation(_Frozen):
    """What the scenario expects of a target (used by ``harness run --expect``)."""

    valid: bool | Literal["unknown"]
    min_lost: int | None = Field(None, ge=0)
    max_lost: int | None = Field(None, ge=0)
    reason_contains: str | None = None
    """Text the verdict's reason must contain (e.g. "saturated": an unknown verdict for the right reason)."""


class GatePolicy(_Frozen):
    """Thresholds the CI gate applies to a verdict (``[gate]`` in a scenario; CLI flags override).

    Unset fields follow the verdict: no loss, nothing unexpected, nothing delivered after a refusal, no
    duplicates when the target claims effectively-once, no reordering when it claims order.
    """

    max_lost: int | None = Field(None, ge=0)
    max_unexpected: int | None = Field(None, ge=0)
    max_duplicated_ratio: float | None = Field(None, ge=0)
    """Extra receipts / delivered messages."""
    max_reordered: int | None = Field(None, ge=0)
    max_p99_delivery_ms: float | None = Field(None, gt=0)
    max_p99_redelivery_ms: float | None = Field(None, gt=0)


class Readiness(_Frozen):
    """How to tell the target is ready (``[target.NAME.ready]``); the error on timeout names the probe and
    what it saw last. One of: ``kind = "http"`` (``path``, ``statuses``), ``"tcp"`` (the port accepts a
    connection: brokers, non-HTTP protocols), ``"log"`` (``pattern``, a regular expression matched against the
    target's log) or ``"command"`` (``command``, an argv exiting 0; ``{port}``, ``{port.NAME}`` and ``{run_dir}``
    filled in)."""

    kind: Literal["http", "tcp", "log", "command"] = "http"
    path: str = "/"
    """http: the path to GET."""
    statuses: list[int] = Field(default_factory=lambda: [200], min_length=1)
    """http: answers that mean ready."""
    pattern: str | None = None
    """log: a regular expression (Python syntax)."""
    command: list[str] | None = Field(None, min_length=1)
    """command: the argv to run."""
    port: str | None = None
    """http / tcp: which named port to probe. Default: http probes the first port, tcp every port."""
    timeout_s: float = Field(20.0, gt=0, le=3600)
    """How long to wait before the start fails."""

    @model_validator(mode="after")
    def _settings_of_its_kind(self) -> Readiness:
        if self.kind == "log":
            if not self.pattern:
                raise _FieldError("pattern", "a log probe needs the pattern that means ready")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise _FieldError("pattern", f"not a regular expression: {exc}") from None
        if self.kind == "command" and not self.command:
            raise _FieldError("command", "a command probe needs the command to run")
        if self.kind == "http" and not self.path.startswith("/"):
            raise _FieldError("path", "must start with /")
        return self


_PORT_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class TargetDef(_Frozen):
    """A user-supplied target: a command to start or the URL of a server that is already running.

    Command placeholders: ``{python}``, ``{port}`` (the first port), ``{port.NAME}`` (a named port),
    ``{ping_interval}``, ``{ping_timeout}``, ``{redis_url}``, ``{run_dir}``; literal braces are doubled."""

    command: list[str] | None = None
    """The argv that starts one instance of your server (placeholders above), run from the project root."""
    url: str | None = None
    """A server that is already running (``http://127.0.0.1:5000``), with one port."""
    urls: dict[str, str] | None = None
    """A running server with several ports, by name (``{ sub = "http://127.0.0.1:7001", pub = "…" }``):
    its ``ports`` are these names, in this order."""
    ports: list[str] = Field(default_factory=lambda: [DEFAULT_PORT], min_length=1, max_length=8)
    """Named ports (e.g. ``["sub", "pub"]``), the first being the default: each gets a free port number
    (``{port.sub}`` in the command) and its own proxy listener per cohort; the driver reads their URLs as
    ``self.slot.urls["sub"]`` (``self.slot.url`` is the first). Names: lower case, digits, ``_``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Settings for the driver (``[target.NAME.options]``), checked against the driver class's pydantic model
    ``Options`` when the load process starts: an unknown or badly typed option stops the run there (exit 2)."""
    ordered: bool = False
    """The target claims per-stream order (a reordered receipt then invalidates the verdict)."""
    delivery: Literal["at-most-once", "at-least-once", "effectively-once"] = "at-least-once"
    driver: str = "socketio"
    """Client protocol: "socketio", "sse", or your own "package.module:UserClass" (docs/custom-target.md)."""
    needs_store: bool = False
    """Start the run's redis-server and pass its URL to the command as ``{redis_url}``."""
    health_path: str = "/socket.io/?EIO=4&transport=polling"
    """Polled until it answers 200 before the run starts (shorthand for ``ready = { kind = "http", path = … }``)."""
    ready: Readiness | None = None
    """How to tell your server is ready, when it is not an HTTP 200 on ``health_path`` (see ``Readiness``)."""
    survives_restart: bool = False
    rooms: bool = False
    """The server serves rooms (``join`` / ``leave`` events, sends with ``room``): needed by a scenario with rooms."""
    secret: str | None = None
    """HMAC secret for the users' auth tokens. Default: random per run for a started target (passed in its
    environment as ``HARNESS_TARGET_SECRET``, never on its command line); for a target given by URL, the
    harness's own ``HARNESS_TARGET_SECRET`` (there is no public default). Never copied into the run folder."""

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        from harness.drivers.registry import driver_path

        driver_path(value)  # raises ValueError with the known names
        return value

    @model_validator(mode="before")
    @classmethod
    def _ports_of_the_urls(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("urls"), dict) and "ports" not in data:
            return {**data, "ports": list(data["urls"])}
        return data

    @model_validator(mode="after")
    def _one_way_to_reach_it(self) -> TargetDef:
        if sum(way is not None for way in (self.command, self.url, self.urls)) != 1:
            raise ValueError("give exactly one of 'command', 'url' or 'urls'")
        if self.urls is not None and list(self.urls) != list(self.ports):
            raise _FieldError("ports", f"a target reached by urls has the ports they name ({', '.join(self.urls)}); "
                              "leave ports out")
        for index, name in enumerate(self.ports):
            if not re.match(_PORT_NAME, name):
                raise _FieldError(f"ports.{index}", f"'{name}': a port name is lower case letters, digits and _, "
                                  "starting with a letter (it is written {port.NAME} in the command)")
        if len(set(self.ports)) != len(self.ports):
            raise _FieldError("ports", "port names must be unique")
        if self.url is not None and len(self.ports) > 1:
            raise _FieldError("ports", "a target reached by url has one port; for several give urls "
                              "(a table: port name → URL)")
        for index, part in enumerate(self.command or []):
            _check_placeholders(f"command.{index}", part, self.ports)
        if self.ready is not None:
            if self.ready.port is not None and self.ready.port not in self.ports:
                raise _FieldError("ready.port", f"unknown port '{self.ready.port}'; ports: {', '.join(self.ports)}")
            for index, part in enumerate(self.ready.command or []):
                _check_placeholders(f"ready.command.{index}", part, self.ports)
        return self


def _check_placeholders(field: str, part: str, ports: list[str]) -> None:
    """Each ``{…}`` in a command argument is a known placeholder (a typo would only fail at start)."""
    if "{secret}" in part:  # argv is world-readable (/proc/PID/cmdline, ps) and lands in logs
        raise _FieldError(field, "the token secret is never put on a command line: read it "
                          "from the environment variable HARNESS_TARGET_SECRET in your server instead")
    try:
        names = placeholders(part)
    except ValueError as exc:
        raise _FieldError(field, f"{exc} (a literal brace is written doubled: {{{{ or }}}})") from None
    for name in names:
        root, dot, attribute = name.partition(".")
        if root not in PLACEHOLDERS or (dot and root != "port") or "[" in name:
            raise _FieldError(field, f"unknown placeholder {{{name}}}; known: "
                              + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + ", {port.NAME}")
        if dot and attribute not in ports:
            raise _FieldError(field, f"{{{name}}}: no port named '{attribute}'; ports: {', '.join(ports)}")


class Scenario(_Frozen):
    """One scenario file."""

    name: str
    description: str = ""
    targets: list[str] = Field(default_factory=lambda: ["naive", "ackmap"], min_length=1)
    seed: int = 1
    heartbeat: Heartbeat = Field(default_factory=Heartbeat)
    load: Load = Field(default_factory=Load)
    drain: Drain = Field(default_factory=Drain)
    health: Health = Field(default_factory=Health)
    store: Store = Field(default_factory=Store)
    deploy: Deploy = Field(default_factory=Deploy)
    cohorts: list[Cohort] = Field(min_length=1)
    faults: list[FaultSpec] = Field(default_factory=list)
    membership: list[MembershipChange] = Field(default_factory=list)
    """Joins and leaves during sending (``[[membership]]``), on top of each cohort's ``rooms``."""
    expect: dict[str, Expectation] = Field(default_factory=dict)
    gate: GatePolicy = Field(default_factory=GatePolicy)
    target: dict[str, TargetDef] = Field(default_factory=dict)
    """User-defined targets by name, in addition to the built-in ones."""

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        names = [c.name for c in self.cohorts]
        if len(set(names)) != len(names):
            raise ValueError("cohort names must be unique")
        if sum(c.users for c in self.cohorts) < 2:
            raise ValueError("need at least two users in total: messages go from one user to another")
        for index, fault in enumerate(self.faults):
            if fault.is_process_fault:
                if fault.cohort is not None:
                    raise _FieldError(f"faults.{index}.cohort", f"a {fault.type} fault hits the whole target; "
                                      "remove the cohort")
                continue
            if fault.cohort is None:
                raise _FieldError(f"faults.{index}.cohort", f"a {fault.type} toxic needs the cohort it hits")
            if fault.cohort not in names:
                raise _FieldError(f"faults.{index}.cohort",
                                  f"unknown cohort '{fault.cohort}'; known: {', '.join(names)}")
        for index, fault in enumerate(self.faults):
            if fault.type == "rolling_restart" and self.deploy.instances < 2:
                raise _FieldError(f"faults.{index}.type", "rolling_restart needs [deploy] instances >= 2")
            late = [s for s in fault.starts(self.seed) if s >= self.load.duration_s]
            if late:
                raise _FieldError(f"faults.{index}.at_s",
                                  f"an occurrence starts at {late[0]:.1f} s, after sending stops at "
                                  f"{self.load.duration_s:g} s ([load] duration_s): it would never happen")
            long = [s for s in fault.starts(self.seed) if s + fault.duration_s > self.load.duration_s + 1e-6]
            if long and not fault.is_process_fault:
                raise _FieldError(f"faults.{index}.duration_s",
                                  f"an occurrence would last until {long[0] + fault.duration_s:.1f} s, after sending "
                                  f"stops at {self.load.duration_s:g} s, where every fault is healed: it would be "
                                  "cut short (shorten it or lengthen [load] duration_s)")
        for index, change in enumerate(self.membership):
            if change.cohort not in names:
                raise _FieldError(f"membership.{index}.cohort",
                                  f"unknown cohort '{change.cohort}'; known: {', '.join(names)}")
            late = [s for s in change.starts() if s >= self.load.duration_s]
            if late:
                raise _FieldError(f"membership.{index}.at_s", f"a change at {late[0]:.1f} s is after sending stops at "
                                  f"{self.load.duration_s:g} s ([load] duration_s): it would never happen")
            if change.spread_s and change.starts()[-1] + change.spread_s >= self.load.duration_s:
                raise _FieldError(f"membership.{index}.spread_s",
                                  f"users spread up to {change.starts()[-1] + change.spread_s:.1f} s, at or after "
                                  f"sending stops at {self.load.duration_s:g} s ([load] duration_s): some users' "
                                  "change would never happen (shorten spread_s or lengthen the run)")
        if self.cohorts and all(c.send_to == "nobody" for c in self.cohorts):
            raise _FieldError("cohorts", 'every cohort has send_to = "nobody": no message would be sent, so '
                              "there would be nothing to judge")
        fault_names = [f.name for f in self.faults]
        if len(set(fault_names)) != len(fault_names):
            raise ValueError("fault names must be unique")
        known = set(builtin_targets()) | set(self.target)
        for index, name in enumerate(self.targets):
            if name not in known:
                raise _FieldError(f"targets.{index}", f"unknown target '{name}'; known: {', '.join(sorted(known))}")
        return self

    @property
    def fair_chance_s(self) -> float:
        """See ``Drain.fair_chance_s``."""
        if self.drain.fair_chance_s is not None:
            return self.drain.fair_chance_s
        return self.heartbeat.ping_interval_s + self.heartbeat.ping_timeout_s + self.drain.settle_s + 1.0

    @property
    def planned_sends(self) -> int:
        """Sends the scenario asks for in its sending window (what the load generator should offer). While a
        process fault has the target or its store down, nobody can send: those seconds are not planned."""
        down = 0.0
        for fault in self.faults:
            if fault.is_process_fault:
                for start in fault.starts(self.seed):
                    down += max(0.0, min(start + fault.duration_s, self.load.duration_s) - start)
        window = max(0.0, self.load.duration_s - down)
        per_cohort = (min(self.load.max_messages_per_user, int(self.rate_for(c.name) * window)) * c.users
                      for c in self.cohorts if c.send_to != "nobody")
        return int(sum(per_cohort))

    def rate_for(self, cohort: str) -> float:
        """Messages per second for each user of ``cohort``."""
        rates = {c.name: c.rate_per_user for c in self.cohorts}
        return rates.get(cohort) or self.load.rate_per_user

    @property
    def total_users(self) -> int:
        return sum(c.users for c in self.cohorts)

    def user_ids(self) -> list[tuple[str, str]]:
        """(user_id, cohort) for every user, in slot order: u1-0, u1-1, …, u2-0, …"""
        return [(f"{c.name}-{i}", c.name) for c in self.cohorts for i in range(c.users)]


class _FieldError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _field_of(error: Mapping[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ())) or "(top level)"


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None,
                  check_options: bool | None = None) -> Scenario:
    """Parse and validate a scenario file; raise ScenarioError naming file, field and reason.

    ``check_options``: also check the drivers' typed options (``check_driver_options``); default: only when
    Locust is already loaded in this process (the load process), since it imports the drivers."""
    path = Path(path)
    if not path.exists():
        raise ScenarioError(str(path), "(file)", "no such file")
    if not path.is_file():
        raise ScenarioError(str(path), "(file)", "not a file (a scenario is one .toml file)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ScenarioError(str(path), "(file)", f"not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    except OSError as exc:
        raise ScenarioError(str(path), "(file)", f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), "(syntax)", f"not valid TOML: {exc}") from None
    raw.setdefault("name", path.stem)
    for key, value in (overrides or {}).items():
        raw[key] = value
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = (first.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _FieldError):
            where = _field_of(first)  # a nested model's own check: its field under the model's place
            field = ctx_error.field if where == "(top level)" else f"{where}.{ctx_error.field}"
            raise ScenarioError(str(path), field, ctx_error.reason) from None
        reason = first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "unknown field"
        raise ScenarioError(str(path), _field_of(first), reason) from None
    if check_options if check_options is not None else "locust" in sys.modules:
        check_driver_options(scenario, path)
    return scenario


def check_driver_options(scenario: Scenario, path: str | Path = "(scenario)") -> None:
    """Check every scenario-defined target's ``options`` against its driver's ``Options`` model.

    This imports the drivers, and a driver imports Locust, which patches the process it is imported into:
    so ``load_scenario`` does it only where Locust already runs (the load process loads the scenario before
    it starts anything). A driver that cannot be imported is skipped here: the load process reports it next.
    """
    from harness.drivers.options import options_error
    from harness.drivers.registry import load_driver

    for name, definition in scenario.target.items():
        try:
            driver = load_driver(definition.driver)
        except (ImportError, AttributeError, ValueError):
            continue
        problem = options_error(getattr(driver, "Options", None), definition.options)
        if problem is not None:
            field, reason = problem
            raise ScenarioError(str(path), f"target.{name}.options{'.' + field if field else ''}", reason)


def check_target_fits(scenario: Scenario, target: TargetSpec, path: str = "(scenario)") -> None:
    """Refuse a run whose faults cannot act on this target (a fault that cannot happen proves nothing)."""
    if not target.rooms:
        for index, cohort in enumerate(scenario.cohorts):
            if cohort.rooms:
                raise ScenarioError(path, f"cohorts.{index}.rooms", f"target '{target.name}' does not serve rooms "
                                    "(a target that does says rooms = true in its [target.NAME] table)")
        if scenario.membership:
            raise ScenarioError(path, "membership.0", f"target '{target.name}' does not serve rooms "
                                "(a target that does says rooms = true in its [target.NAME] table)")
    for index, fault in enumerate(scenario.faults):
        if fault.port is not None and fault.port not in target.ports:
            raise ScenarioError(path, f"faults.{index}.port", f"target '{target.name}' has no port '{fault.port}'; "
                                f"its ports: {', '.join(target.ports)}")
        if fault.type.endswith("_store") and not target.needs_store:
            raise ScenarioError(path, f"faults.{index}.type", f"{fault.type}: target '{target.name}' has no store "
                                "(the harness starts redis-server only for targets with needs_store)")
        if fault.type in ("kill_target", "restart_target", "rolling_restart") and target.url:
            raise ScenarioError(path, f"faults.{index}.type", f"{fault.type}: target '{target.name}' is reached by "
                                "URL, so the harness did not start it and cannot stop or restart it")


def resolve_target(name: str, user_defined: Mapping[str, TargetDef]) -> TargetSpec:
    """A built-in or scenario-defined target by name (scenario definitions win)."""
    if name in user_defined:
        d = user_defined[name]
        url = d.url or (next(iter(d.urls.values())) if d.urls else None)
        return TargetSpec(name, Claims(d.delivery, d.ordered, d.survives_restart),
                          tuple(d.command) if d.command else None, url, secret=d.secret, driver=d.driver,
                          needs_store=d.needs_store, health_path=d.health_path,
                          ready=d.ready.model_dump() if d.ready else None, ports=tuple(d.ports),
                          options=dict(d.options), urls=dict(d.urls or {}), rooms=d.rooms)
    return builtin_targets()[name]
