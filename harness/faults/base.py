"""The toxic plug-in interface: one small class per fault, registered by name.

A toxic sits in one direction of a connection (``upstream`` = client→server, ``downstream`` =
server→client). Each live connection runs its own copy of the chain; a toxic sees that copy through a
:class:`Stub`: ``read()`` the next chunk, ``write()`` it on, ``sleep()`` interruptibly, ``close()`` the
connection. Contract (as Toxiproxy's CREATING_TOXICS.md): every chunk read is written on unless the
fault's purpose is to drop it, and when ``read``/``sleep`` report an interrupt the toxic writes any chunk
it holds and returns, so removing or updating a toxic never loses bytes.

    @register("noop")
    class Noop(Toxic):
        async def pipe(self, stub: Stub) -> None:
            while (chunk := await stub.read()) is not None:
                stub.write(chunk)
"""

from __future__ import annotations

import asyncio
import random
import reprlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

__all__ = ["Chunk", "Stub", "Toxic", "register", "registry", "ToxicValidationError", "STREAMS", "LinkHandle",
           "attribute", "INT64_MAX", "MAX_MS"]

STREAMS = ("upstream", "downstream")

INT64_MAX = 2**63 - 1
"""Toxiproxy's attributes are Go int64: the default upper bound of any integer attribute."""
MAX_MS = 3_600_000
"""One hour: the cap for time-like attributes in ms. More than that is a stalled link, not a fault under test."""

_RANGE = "range"  # dataclass field metadata key: (minimum, maximum) of an integer attribute


def attribute(default: int = 0, *, maximum: int = INT64_MAX, minimum: int = 0) -> Any:
    """A toxic's integer attribute with its accepted range (inclusive); ``validate`` enforces it."""
    return field(default=default, metadata={_RANGE: (minimum, maximum)})


def _show(value: Any) -> str:
    """A value for an error message: short even for a 4,000-digit integer or a deeply nested list."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"{'-' if value < 0 else ''}a {len(str(abs(value)))}-digit number"
    return reprlib.repr(value)


def _go_kind(value: Any) -> str:
    """How Go's JSON decoder names a value it cannot put into an int64."""
    if isinstance(value, float):
        return f"number {_show(value)}"
    return {str: "string", bool: "bool", list: "array", dict: "object"}.get(type(value), type(value).__name__)


@dataclass(slots=True)
class Chunk:
    """One read from a socket, stamped with its arrival time (monotonic seconds)."""

    data: bytes
    t: float


class _Eof:
    """Queue marker: the source side of the link has closed."""


EOF = _Eof()


class ToxicValidationError(ValueError):
    """An attribute value the API must reject with 400."""


@dataclass
class Toxic:
    """Base of every toxic. Subclasses add integer attributes as dataclass fields (units in comments), with
    :func:`attribute` when the range is narrower than 0..int64 max."""

    name: str = ""
    stream: str = "downstream"
    toxicity: float = 1.0
    type: ClassVar[str] = ""
    #: Toxics whose removal must close their connections (Toxiproxy's CleanupToxic), e.g. ``timeout``.
    closes_on_remove: ClassVar[bool] = False

    async def pipe(self, stub: Stub) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ToxicValidationError for attribute values that would break the data path: each integer
        attribute must lie in its declared range (default 0..int64 max). Overrides extend this: call super()."""
        ranges = self.attribute_ranges()
        for name in self.attribute_names():
            value = getattr(self, name)
            low, high = ranges[name]
            if isinstance(value, int) and not low <= value <= high:
                raise ToxicValidationError(f"{name} must be between {low} and {high}, got {_show(value)}")

    @classmethod
    def attribute_names(cls) -> list[str]:
        base = {"name", "stream", "toxicity"}
        return [f.name for f in fields(cls) if f.name not in base]

    @classmethod
    def attribute_ranges(cls) -> dict[str, tuple[int, int]]:
        """Accepted (minimum, maximum) per attribute, both inclusive."""
        return {f.name: f.metadata.get(_RANGE, (0, INT64_MAX)) for f in fields(cls) if f.name in cls.attribute_names()}

    @classmethod
    def check_attributes(cls, values: Mapping[str, Any]) -> None:
        """Strict check for the scenario loader: unlike the HTTP API, an unknown name is an error (a typo
        would silently be no fault). Raises ToxicValidationError naming the attribute and the reason."""
        known = cls.attribute_names()
        for key, value in values.items():
            if key not in known:
                raise ToxicValidationError(f"{key!r} is not an attribute of {cls.type or cls.__name__}; "
                                           f"it has: {', '.join(known) or 'none'}")
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToxicValidationError(f"{key} must be an integer, got {_show(value)}")
        cls().apply_attributes(dict(values))  # ranges and cross-field rules: validate() on a fresh toxic

    def attributes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.attribute_names()}

    def apply_attributes(self, values: Mapping[str, Any]) -> None:
        """Merge a partial attribute update, all or nothing; every value must be a JSON integer (as in
        Toxiproxy) and the result must pass validate(). Unknown names are ignored, as upstream does."""
        known = set(self.attribute_names())
        staged = {}
        for key, value in values.items():
            if key not in known:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ToxicValidationError(
                    f"bad request body: json: cannot unmarshal {_go_kind(value)} into Go struct "
                    f"field {type(self).__name__}.{key} of type int64"
                )
            staged[key] = value
        previous = self.attributes()
        for key, value in staged.items():
            setattr(self, key, value)
        try:
            self.validate()
            Toxic.validate(self)  # the ranges hold even for a plug-in whose validate() forgets super()
        except ToxicValidationError:
            for key, value in previous.items():
                setattr(self, key, value)
            raise

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes(),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
        }


_REGISTRY: dict[str, type[Toxic]] = {}


def register(name: str) -> Callable[[type[Toxic]], type[Toxic]]:
    """Class decorator: make a toxic available to the API under ``name``."""

    def wrap(cls: type[Toxic]) -> type[Toxic]:
        cls.type = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def registry() -> dict[str, type[Toxic]]:
    """Registered toxic types by name (a copy)."""
    return dict(_REGISTRY)


class ConnectionHandle(Protocol):
    """What a toxic may do to the whole connection it sits on."""

    @property
    def opened(self) -> float:
        """``time.monotonic()`` when the client connected."""
        ...

    def close(self, reset: bool = False) -> None: ...


class LinkHandle(Protocol):
    """The one direction of a connection a stub belongs to, as a toxic sees it. The proxy's ``Link``
    implements it; declaring it here keeps this module free of the proxy (imports point one way)."""

    @property
    def rng(self) -> random.Random: ...

    @property
    def connection(self) -> ConnectionHandle: ...

    def forward_from(self, stub: Stub, item: Chunk | _Eof) -> None: ...


@dataclass(eq=False)
class Stub:
    """A toxic's handle on one link: its input queue, its output, and per-link state."""

    link: LinkHandle
    state: dict[str, Any] = field(default_factory=dict)
    """Per-link state of a stateful toxic (e.g. bytes counted); kept across restarts, dropped on removal."""
    _queue: deque[Chunk | _Eof] = field(default_factory=deque)
    _waiter: asyncio.Future[None] | None = None  # a read waiting for input
    _sleeper: asyncio.Future[None] | None = None  # a sleep; only its timer or an interrupt ends it
    interrupted: bool = False
    eof: bool = False
    timed_out: bool = False
    """Set by ``read(timeout=…)`` when the time ran out before a chunk came."""

    def put(self, item: Chunk | _Eof) -> None:
        self._queue.append(item)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _expire(self) -> None:
        self.timed_out = True
        self._wake()

    def interrupt(self) -> None:
        """Ask the running ``pipe`` to hand over what it holds and return."""
        self.interrupted = True
        self._wake()
        self._end_sleep()

    def _end_sleep(self) -> None:
        if self._sleeper is not None and not self._sleeper.done():
            self._sleeper.set_result(None)

    async def read(self, timeout: float | None = None) -> Chunk | None:
        """The next chunk; None when interrupted, when the source closed (``eof`` set) or when ``timeout``
        seconds passed without a chunk (``timed_out`` set)."""
        self.timed_out = False
        handle: asyncio.TimerHandle | None = None
        loop = asyncio.get_running_loop()
        if timeout is not None:
            handle = loop.call_later(max(0.0, timeout), self._expire)
        try:
            while not self._queue:
                if self.interrupted or self.timed_out:
                    return None
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
        finally:
            if handle is not None:
                handle.cancel()
        if self.interrupted:
            return None
        item = self._queue.popleft()
        if isinstance(item, _Eof):
            self.eof = True
            return None
        return item

    async def sleep(self, seconds: float) -> bool:
        """Sleep unless interrupted first; True if the full time passed."""
        if self.interrupted:
            return False
        if seconds <= 0:
            return True
        loop = asyncio.get_running_loop()
        self._sleeper = loop.create_future()
        handle = loop.call_later(seconds, self._end_sleep)
        try:
            await self._sleeper
        finally:
            handle.cancel()
            self._sleeper = None
        return not self.interrupted

    async def sleep_until(self, deadline: float) -> bool:
        """Sleep until a monotonic deadline unless interrupted; True if reached."""
        return await self.sleep(deadline - time.monotonic())

    @property
    def rng(self) -> random.Random:
        """The proxy's seeded random source: use it (not the ``random`` module) so runs are reproducible."""
        return self.link.rng

    def write(self, chunk: Chunk) -> None:
        """Pass a chunk to the next stage (or the destination socket)."""
        self.link.forward_from(self, chunk)

    def close(self, reset: bool = False) -> None:
        """Close the whole connection, both sockets; ``reset`` sends an RST (SO_LINGER 0) instead of a FIN."""
        self.link.connection.close(reset=reset)

    def drain(self) -> list[Chunk | _Eof]:
        """Take every queued item (used when the stage is spliced out)."""
        items = list(self._queue)
        self._queue.clear()
        return items
