"""The built-in toxics, one small class each (Toxiproxy names and attribute units)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from harness.faults.base import Stub, Toxic, register

__all__ = ["Noop", "Latency", "Timeout", "ResetPeer"]


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
    """Delay each chunk by ``latency`` ms ± ``jitter`` ms from its arrival; order is kept."""

    latency: int = 0  # ms
    jitter: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            delay_ms = self.latency + (stub.rng.randrange(-self.jitter, self.jitter) if self.jitter > 0 else 0)
            if not await stub.sleep_until(chunk.t + delay_ms / 1000):
                stub.write(chunk)  # interrupted: release the held chunk now, never drop it
                return
            stub.write(chunk)


@register("timeout")
@dataclass
class Timeout(Toxic):
    """Discard all data. ``timeout`` > 0: close the connection after that many ms without a chunk;
    0: a silent blackhole until removed. Removing it closes its connections, as in Toxiproxy."""

    timeout: int = 0  # ms
    closes_on_remove = True

    async def pipe(self, stub: Stub) -> None:
        while True:
            if self.timeout > 0:
                reader = stub.read()
                try:
                    chunk = await asyncio.wait_for(reader, self.timeout / 1000)
                except TimeoutError:
                    stub.close()
                    return
            else:
                chunk = await stub.read()
            if chunk is None:
                if stub.eof:
                    stub.close()
                return


@register("reset_peer")
@dataclass
class ResetPeer(Toxic):
    """On the next chunk (or EOF), wait ``timeout`` ms, then reset both sockets (TCP RST, SO_LINGER 0)."""

    timeout: int = 0  # ms

    async def pipe(self, stub: Stub) -> None:
        await stub.read()
        if stub.interrupted:
            return
        # Deviation from upstream: this wait is interruptible, so the API never blocks on it.
        if await stub.sleep(self.timeout / 1000):
            stub.close(reset=True)
