"""Each toxic's ``pipe`` over in-memory queues: exact bytes, piece counts, timings within tolerance."""

from __future__ import annotations

import asyncio
import time

import pytest

from harness.faults.base import ToxicValidationError, registry
from harness.faults.toxics import (
    Bandwidth,
    Latency,
    LimitData,
    LimitTime,
    Noop,
    ResetPeer,
    Slicer,
    SlowClose,
    SlowOpen,
    Timeout,
)
from tests.faults.fake_link import Driven

TOLERANCE = 0.05  # s; asyncio timers on a loaded 2-core machine


def test_registry_has_every_toxic() -> None:
    assert set(registry()) >= {"noop", "latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer",
                               "limit_data", "limit_time", "slow_open"}


async def test_noop_passes_everything_then_eof() -> None:
    d = Driven(Noop())
    d.feed(b"a", b"bc")
    d.feed_eof()
    await d.finish()
    assert d.link.out == [b"a", b"bc"]
    assert d.stub.eof


async def test_latency_delays_each_chunk_and_releases_on_interrupt() -> None:
    d = Driven(Latency(latency=100))
    start = time.monotonic()
    d.feed(b"one")
    await asyncio.sleep(0.15)
    assert d.link.out == [b"one"]
    assert 0.1 - 0.005 <= d.link.out_times[0] - start < 0.1 + TOLERANCE
    d.feed(b"held")
    await asyncio.sleep(0.02)
    await d.interrupt()
    assert d.link.out == [b"one", b"held"]  # nothing dropped


async def test_stacked_latency_adds_up() -> None:
    first, second = Latency(latency=60), Latency(latency=60)
    d1 = Driven(first)
    d2 = Driven(second)
    d1.link.forward_from = lambda stub, item: d2.stub.put(item)  # type: ignore[method-assign]
    start = time.monotonic()
    d1.feed(b"x")
    await asyncio.sleep(0.2)
    assert d2.link.out == [b"x"]
    assert 0.12 - 0.005 <= d2.link.out_times[0] - start < 0.12 + TOLERANCE
    await d1.interrupt()
    await d2.interrupt()


async def test_latency_jitter_stays_in_range_and_keeps_order() -> None:
    d = Driven(Latency(latency=30, jitter=20))
    d.feed(*[bytes([i]) for i in range(20)])
    await asyncio.sleep(0.3)
    assert d.output == bytes(range(20))
    await d.interrupt()


async def test_bandwidth_paces_bytes() -> None:
    d = Driven(Bandwidth(rate=100))  # 100 KB/s: 48,000 B take 480 ms, in 10,000-byte pieces per 100 ms
    start = time.monotonic()
    d.feed(b"z" * 48_000)
    while len(d.output) < 48_000:
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - start
    assert 0.48 - 0.01 <= elapsed < 0.48 + 2 * TOLERANCE
    assert [len(p) for p in d.link.out] == [10_000] * 4 + [8_000]
    await d.interrupt()


async def test_bandwidth_zero_stalls_and_flushes_on_interrupt() -> None:
    d = Driven(Bandwidth(rate=0))
    d.feed(b"a", b"b")
    await asyncio.sleep(0.1)
    assert d.link.out == []
    await d.interrupt()
    assert d.link.out == [b"a", b"b"]


def test_bandwidth_rejects_negative_rate() -> None:
    with pytest.raises(ToxicValidationError):
        Bandwidth().apply_attributes({"rate": -1})


async def test_slow_close_delays_the_eof() -> None:
    d = Driven(SlowClose(delay=100))
    d.feed(b"bye")
    start = time.monotonic()
    d.feed_eof()
    await d.finish()
    assert d.link.out == [b"bye"]
    assert time.monotonic() - start >= 0.1 - 0.005


async def test_timeout_zero_discards_until_interrupted() -> None:
    d = Driven(Timeout(timeout=0))
    d.feed(b"gone", b"also gone")
    await asyncio.sleep(0.05)
    await d.interrupt()
    assert d.link.out == [] and d.link.connection.closes == []


async def test_timeout_positive_closes_after_idle_time_and_rearms_per_chunk() -> None:
    d = Driven(Timeout(timeout=100))
    start = time.monotonic()
    for _ in range(3):
        await asyncio.sleep(0.06)
        d.feed(b"keepalive")  # re-arms the idle timer
    await d.finish()
    assert d.link.out == []
    assert d.link.connection.closes == [False]
    assert time.monotonic() - start >= 0.18 + 0.1 - 0.01


async def test_reset_peer_waits_then_resets() -> None:
    d = Driven(ResetPeer(timeout=50))
    await asyncio.sleep(0.05)
    assert d.link.connection.closes == []  # an idle direction is never reset
    start = time.monotonic()
    d.feed(b"trigger")
    await d.finish()
    assert d.link.out == []
    assert d.link.connection.closes == [True]
    assert time.monotonic() - start >= 0.05 - 0.005


async def test_slicer_average_one_gives_one_byte_pieces() -> None:
    d = Driven(Slicer(average_size=1, size_variation=0, delay=0))
    d.feed(b"x" * 24)
    d.feed_eof()
    await d.finish()
    assert [len(p) for p in d.link.out] == [1] * 24


async def test_slicer_piece_count_within_upstream_bounds() -> None:
    d = Driven(Slicer(average_size=1024, size_variation=512, delay=0))
    payload = bytes(range(256)) * 1875  # 480,000 B
    d.feed(payload)
    d.feed_eof()
    await d.finish()
    assert d.output == payload  # lossless, in order
    assert 240 <= len(d.link.out) <= 720
    assert all(len(p) >= 1 for p in d.link.out)


def test_slicer_rejects_sizes_that_crash_upstream() -> None:
    with pytest.raises(ToxicValidationError):
        Slicer().apply_attributes({"average_size": 0, "size_variation": 0})


async def test_limit_data_truncates_exactly_and_closes() -> None:
    d = Driven(LimitData(bytes=100))
    d.feed(b"a" * 90, b"b" * 20, b"never")
    await d.finish()
    assert d.link.out == [b"a" * 90, b"b" * 10]
    assert d.link.connection.closes == [False]


async def test_limit_data_zero_forwards_nothing() -> None:
    d = Driven(LimitData(bytes=0))
    d.feed(b"x")
    await d.finish()
    assert d.link.out == [] and d.link.connection.closes == [False]


async def test_limit_data_count_survives_restart() -> None:
    toxic = LimitData(bytes=10)
    d = Driven(toxic)
    d.feed(b"123456")
    await asyncio.sleep(0.01)
    await d.interrupt()
    d.stub.interrupted = False
    d.task = asyncio.get_running_loop().create_task(toxic.pipe(d.stub))  # restart, as after an update
    d.feed(b"789012")
    await d.finish()
    assert d.output == b"1234567890"


async def test_limit_time_cuts_even_while_data_flows() -> None:
    d = Driven(LimitTime(time=150))
    start = time.monotonic()
    while not d.task.done() and time.monotonic() - start < 1:
        d.feed(b"ping")
        await asyncio.sleep(0.02)
    assert d.task.done()
    assert d.link.connection.closes == [False]
    assert 0.15 - 0.005 <= time.monotonic() - start < 0.15 + TOLERANCE + 0.02
    assert len(d.link.out) >= 5


async def test_slow_open_holds_only_the_first_bytes() -> None:
    d = Driven(SlowOpen(delay=100))
    start = d.link.connection.opened
    d.feed(b"hello")
    await asyncio.sleep(0.15)
    fed_again = time.monotonic()
    d.feed(b"again")
    await asyncio.sleep(0.01)
    assert d.link.out == [b"hello", b"again"]
    assert d.link.out_times[0] - start >= 0.1 - 0.005
    assert d.link.out_times[1] - fed_again < 0.01  # later chunks are not delayed
    await d.interrupt()


def test_attributes_must_be_integers_and_merge_partially() -> None:
    toxic = Latency()
    toxic.apply_attributes({"latency": 100, "jitter": 10})
    toxic.apply_attributes({"latency": 50})
    assert toxic.attributes() == {"latency": 50, "jitter": 10}
    for bad in (100.0, "100", True, None):
        with pytest.raises(ToxicValidationError):
            toxic.apply_attributes({"latency": bad})
    assert toxic.attributes() == {"latency": 50, "jitter": 10}


async def test_new_input_does_not_cut_a_sleep_short() -> None:
    d = Driven(Latency(latency=100))
    start = time.monotonic()
    d.feed(b"first")
    for _ in range(5):
        await asyncio.sleep(0.01)
        d.feed(b"more")  # arrivals during the first chunk's delay must not release it early
    await asyncio.sleep(0.2)
    assert d.link.out_times[0] - start >= 0.1 - 0.005
    await d.interrupt()
