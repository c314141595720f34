"""A toxic defined outside the harness, as a user would write one (used by tests and docs/proxy.md)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.faults.base import Chunk, Stub, Toxic, register


@register("uppercase")
@dataclass
class Uppercase(Toxic):
    """Upper-cases ASCII letters in the first ``bytes`` bytes of each chunk (0 = all)."""

    bytes: int = 0

    async def pipe(self, stub: Stub) -> None:
        while (chunk := await stub.read()) is not None:
            cut = self.bytes or len(chunk.data)
            stub.write(Chunk(chunk.data[:cut].upper() + chunk.data[cut:], chunk.t))
