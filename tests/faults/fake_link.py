"""Drive a toxic's ``pipe`` over in-memory queues: no sockets, exact outputs."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from harness.faults.base import Chunk, Stub, Toxic, _Eof


@dataclass
class FakeConnection:
    opened: float = field(default_factory=time.monotonic)
    closes: list[bool] = field(default_factory=list)  # reset flag per close() call

    def close(self, reset: bool = False) -> None:
        self.closes.append(reset)


@dataclass
class FakeLink:
    connection: FakeConnection = field(default_factory=FakeConnection)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    out: list[bytes] = field(default_factory=list)
    out_times: list[float] = field(default_factory=list)
    eof: bool = False

    def forward_from(self, stub: Stub, item: Chunk | _Eof) -> None:
        if isinstance(item, _Eof):
            self.eof = True
        else:
            self.out.append(item.data)
            self.out_times.append(time.monotonic())


class Driven:
    """A toxic running on a fake link; ``feed`` chunks, ``interrupt``, ``finish``."""

    def __init__(self, toxic: Toxic) -> None:
        self.link = FakeLink()
        self.stub = Stub(self.link)  # type: ignore[arg-type]
        self.toxic = toxic
        self.task = asyncio.get_running_loop().create_task(toxic.pipe(self.stub))

    def feed(self, *pieces: bytes) -> None:
        for data in pieces:
            self.stub.put(Chunk(data, time.monotonic()))

    def feed_eof(self) -> None:
        from harness.faults.base import EOF

        self.stub.put(EOF)

    async def interrupt(self) -> None:
        self.stub.interrupt()
        await asyncio.wait_for(self.task, 2)

    async def finish(self, timeout: float = 5) -> None:
        await asyncio.wait_for(self.task, timeout)

    @property
    def output(self) -> bytes:
        return b"".join(self.link.out)
