"""The built-in toxics, one small class each. Names, attributes and units are Toxiproxy's, plus two
extensions users asked Toxiproxy for: ``limit_time`` and ``slow_open`` (docs/proxy.md).

Every attribute is an integer >= 0 (upstream takes any int64, and crashes or stalls on some). Caps, so an
absurd value is a 400 instead of a link stalled for ever: time-like fields at most one hour (``MAX_MS``;
slicer's ``delay`` in µs likewise), sizes at most ``MAX_SIZE``, bandwidth at most ``MAX_RATE``; ``bytes``
of limit_data is a running total, so int64 as upstream."""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.faults.base import MAX_MS, Chunk, Stub, Toxic, ToxicValidationError, attribute, register

__all__ = ["Noop", "Latency", "Bandwidth", "SlowClose", "Timeout", "ResetPeer", "Slicer", "LimitData",
           "LimitTime", "SlowOpen", "MAX_SIZE", "MAX_RATE"]

MAX_SIZE = 1 << 30
"""1 GiB: the cap for slicer sizes (bytes); a read is at most 64 KiB, so more never slices anything."""
MAX_RATE = 1_000_000_000
"""KB/s (1 TB/s): far above what loopback carries, so any larger rate means the same."""


@register("noop")
@dataclass
class Noop(Toxic):
    """Pass-through; also the hidden head of every chain."""

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            stub.write(chunk)


@register("latency")
@dataclass
class Latency(Toxic):
    """Delay each chunk by ``latency`` ms ± ``jitter`` ms from its arrival; order is kept. Stacked latency
    toxics add up: a released chunk is re-stamped with its release time."""

    latency: int = attribute(maximum=MAX_MS)  # ms
    jitter: int = attribute(maximum=MAX_MS)  # ms

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            delay_ms = self.latency + (stub.rng.randrange(-self.jitter, self.jitter) if self.jitter > 0 else 0)
            release = chunk.t + delay_ms / 1000
            if not await stub.sleep_until(release):
                stub.write(chunk)  # interrupted: release the held chunk now, never drop it
                return
            chunk.t = max(chunk.t, release)
            stub.write(chunk)


@register("bandwidth")
@dataclass
class Bandwidth(Toxic):
    """Limit throughput to ``rate`` KB/s (1 KB = 1000 B), per connection. rate 0 stalls without dropping."""

    rate: int = attribute(maximum=MAX_RATE)  # KB/s; a negative rate crashes upstream

    async def pipe(self, stub: Stub) -> None:
        debt = 0.0  # seconds of sleep owed
        while (chunk := await stub.read()) is not None:
            if self.rate == 0:
                held = [chunk]  # stall: keep reading so the sender is not blocked, release on interrupt
                while (more := await stub.read()) is not None:
                    held.append(more)
                for piece in held:
                    stub.write(piece)
                return
            debt += len(chunk.data) / (self.rate * 1000)
            step = self.rate * 100  # bytes per 100 ms
            data = chunk.data
            while len(data) > step:
                if not await stub.sleep(0.1):
                    stub.write(Chunk(data, chunk.t))
                    return
                stub.write(Chunk(data[:step], chunk.t))
                data = data[step:]
                debt -= 0.1
            started = time.monotonic()
            if not await stub.sleep(debt):
                stub.write(Chunk(data, chunk.t))
                return
            debt -= time.monotonic() - started
            stub.write(Chunk(data, chunk.t))


@register("slow_close")
@dataclass
class SlowClose(Toxic):
    """Pass-through; when the source closes, wait ``delay`` ms before closing."""

    delay: int = attribute(maximum=MAX_MS)  # ms

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            stub.write(chunk)
        if stub.eof:
            await stub.sleep(self.delay / 1000)


@register("timeout")
@dataclass
class Timeout(Toxic):
    """Discard all data. ``timeout`` > 0: close the connection after that many ms without a chunk;
    0: a silent blackhole until removed. Removing it closes its connections, as in Toxiproxy."""

    timeout: int = attribute(maximum=MAX_MS)  # ms
    closes_on_remove = True

    async def pipe(self, stub: Stub) -> None:
        limit = self.timeout / 1000 if self.timeout > 0 else None
        while (await stub.read(timeout=limit)) is not None:
            pass  # dropped on the floor: that is the fault
        if stub.eof or stub.timed_out:
            stub.close()


@register("reset_peer")
@dataclass
class ResetPeer(Toxic):
    """On the next chunk (or EOF), wait ``timeout`` ms, then reset both sockets (TCP RST, SO_LINGER 0)."""

    timeout: int = attribute(maximum=MAX_MS)  # ms

    async def pipe(self, stub: Stub) -> None:
        await stub.read()
        if stub.interrupted:
            return
        # Deviation from upstream: this wait is interruptible, so the API never blocks on it.
        if await stub.sleep(self.timeout / 1000):
            stub.close(reset=True)


@register("slicer")
@dataclass
class Slicer(Toxic):
    """Split each chunk into pieces of about ``average_size`` ± ``size_variation`` bytes, ``delay`` µs apart."""

    average_size: int = attribute(maximum=MAX_SIZE)  # bytes
    size_variation: int = attribute(maximum=MAX_SIZE)  # bytes
    delay: int = attribute(maximum=MAX_MS * 1000)  # microseconds

    def validate(self) -> None:
        super().validate()
        if self.average_size + self.size_variation < 1:
            raise ToxicValidationError("average_size + size_variation must be >= 1 (upstream recurses forever)")

    def boundaries(self, stub: Stub, start: int, end: int) -> list[int]:
        """Recursive bisection as upstream, with the jittered midpoint kept strictly inside (no inversions)."""
        if (end - start) - self.average_size <= self.size_variation:
            return [start, end]
        mid = start + (end - start) // 2
        if self.size_variation > 0:
            mid += stub.rng.randrange(self.size_variation * 2) - self.size_variation
        mid = min(max(mid, start + 1), end - 1)
        left = self.boundaries(stub, start, mid)
        right = self.boundaries(stub, mid, end)
        return left + right[1:]

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            cuts = self.boundaries(stub, 0, len(chunk.data))
            for index in range(1, len(cuts)):
                if index > 1 and not await stub.sleep(self.delay / 1_000_000):
                    stub.write(Chunk(chunk.data[cuts[index - 1]:], chunk.t))
                    return
                stub.write(Chunk(chunk.data[cuts[index - 1]:cuts[index]], chunk.t))


@register("limit_data")
@dataclass
class LimitData(Toxic):
    """Forward at most ``bytes`` bytes on this link (the crossing chunk is cut exactly), then close."""

    bytes: int = 0

    async def pipe(self, stub: Stub) -> None:
        stub.state.setdefault("bytes_transmitted", 0)  # survives restarts (updates), dropped on removal
        while (chunk := await stub.read()) is not None:
            remaining = max(0, self.bytes - stub.state["bytes_transmitted"])
            data = chunk.data[:remaining]
            if data:
                stub.write(Chunk(data, chunk.t))
                stub.state["bytes_transmitted"] += len(data)
            if self.bytes - stub.state["bytes_transmitted"] <= 0:
                stub.close()
                return


@register("limit_time")
@dataclass
class LimitTime(Toxic):
    """Extension: close the connection ``time`` ms after it opened, even while data flows (e.g. WebSocket
    pings keep a ``timeout`` toxic from ever firing). Connections already older than that close at once."""

    time: int = attribute(maximum=MAX_MS)  # ms

    async def pipe(self, stub: Stub) -> None:
        deadline = stub.link.connection.opened + self.time / 1000
        while (chunk := await stub.read(timeout=deadline - time.monotonic())) is not None:
            stub.write(chunk)
        if stub.timed_out:
            stub.close()


@register("slow_open")
@dataclass
class SlowOpen(Toxic):
    """Extension: hold the first bytes of each new connection until ``delay`` ms after it opened."""

    delay: int = attribute(maximum=MAX_MS)  # ms

    async def pipe(self, stub: Stub) -> None:
        opened = stub.link.connection.opened
        while (chunk := await stub.read()) is not None:
            if not await stub.sleep_until(opened + self.delay / 1000):
                stub.write(chunk)
                return
            stub.write(chunk)
