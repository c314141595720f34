"""Jepsen's published total-queue histories (jepsen/test/jepsen/checker_test.clj, total-queue-test), ported.

Mapping: ``(invoke-op p :enqueue v)`` → an invoke of message ``v`` from sender ``p`` to the queue's reader;
``(ok-op p :enqueue v)`` → its ok; ``(ok-op p :dequeue v)`` → a receipt of ``v`` by the reader. Each value
is its own sender stream, so Jepsen's order-free categories are not mixed with ours (skip, gap).
Jepsen's keys map one to one: attempt-count → attempted, acknowledged-count → acknowledged, ok-count →
delivered, lost/unexpected/duplicated/recovered-count → lost/unexpected/duplicated/recovered.
"""

from __future__ import annotations

from typing import Any

from harness.checker import analyse, check
from tests.checker.builders import History

READER = "reader"


def _jepsen(history: list[tuple[str, int, str, str]]) -> History:
    h = History().connect(READER).phase("start")
    for kind, _process, f, value in history:
        sender = f"p-{value}"
        if f == "enqueue" and kind == "invoke":
            h.invoke(sender, READER, 1)
        elif f == "enqueue":
            h.complete(kind, sender, READER, 1)
        elif f == "dequeue" and kind == "ok":
            h.recv(READER, sender, READER, 1, msg_id=f"{sender}>{READER}#1")
    return h.finished()


def _jepsen_view(h: History) -> dict[str, Any]:
    verdict = check(h.frame())
    ids = analyse(h.frame()).ids
    value = lambda msg_id: msg_id.split(">")[0].removeprefix("p-")  # noqa: E731
    c = verdict.counts
    return {
        "valid?": verdict.valid,
        "lost": sorted(map(value, ids["lost"])),
        "unexpected": sorted(map(value, ids["unexpected"])),
        "recovered": sorted(map(value, ids["recovered"])),
        "duplicated": sorted(map(value, ids["duplicated"])),
        "attempt-count": c["attempted"],
        "acknowledged-count": c["acknowledged"],
        "ok-count": c["delivered"],
        "lost-count": c["lost"],
        "unexpected-count": c["unexpected"],
        "duplicated-count": c["duplicated"],
        "recovered-count": c["recovered"],
    }


def test_sane() -> None:
    history = [("invoke", 1, "enqueue", "1"), ("invoke", 2, "enqueue", "2"), ("ok", 2, "enqueue", "2"),
               ("invoke", 3, "dequeue", "-"), ("ok", 3, "dequeue", "1"),
               ("invoke", 3, "dequeue", "-"), ("ok", 3, "dequeue", "2")]
    assert _jepsen_view(_jepsen(history)) == {
        "valid?": True, "duplicated": [], "lost": [], "unexpected": [], "recovered": ["1"],
        "attempt-count": 2, "acknowledged-count": 1, "ok-count": 2, "unexpected-count": 0, "lost-count": 0,
        "duplicated-count": 0, "recovered-count": 1,
    }


def test_pathological() -> None:
    history = [("invoke", 1, "enqueue", "hung"),
               ("invoke", 2, "enqueue", "enqueued"), ("ok", 2, "enqueue", "enqueued"),
               ("invoke", 3, "enqueue", "dup"), ("ok", 3, "enqueue", "dup"),
               ("invoke", 4, "dequeue", "-"),
               ("invoke", 5, "dequeue", "-"), ("ok", 5, "dequeue", "wtf"),
               ("invoke", 6, "dequeue", "-"), ("ok", 6, "dequeue", "dup"),
               ("invoke", 7, "dequeue", "-"), ("ok", 7, "dequeue", "dup")]
    assert _jepsen_view(_jepsen(history)) == {
        "valid?": False, "lost": ["enqueued"], "unexpected": ["wtf"], "recovered": [], "duplicated": ["dup"],
        "acknowledged-count": 2, "attempt-count": 3, "ok-count": 1, "lost-count": 1, "unexpected-count": 1,
        "duplicated-count": 1, "recovered-count": 0,
    }


def test_empty_is_unknown_here_where_jepsen_says_valid() -> None:
    # Deliberate difference: with nothing acknowledged there is nothing to judge, so we never say "valid".
    view = _jepsen_view(_jepsen([]))
    assert view["valid?"] == "unknown"
    assert view["attempt-count"] == view["lost-count"] == view["ok-count"] == 0
