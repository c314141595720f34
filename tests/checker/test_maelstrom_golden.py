"""Jepsen's published set-full histories and two of Maelstrom's documented broadcast runs, ported to rooms.

Sources: jepsen/test/jepsen/checker_test.clj ``set-full-test`` (two stored versions, the same seven histories;
the newer adds ``:duplicated-count 0 :duplicated {}`` to every result), Maelstrom's broadcast workload
(src/maelstrom/workload/broadcast.clj: its checker *is* set-full with ``:broadcast`` as ``:add``), and
doc/03-broadcast/01-broadcast.md and 02-performance.md.

Mapping (histories): a broadcast value ``v`` is a room message ``v`` sent to the room ``broadcast`` by its own
sender ``c-v``, which is not a member (a Maelstrom client is not a node; each value its own stream, so our
order-only categories stay out). ``(invoke-op p :add v)`` → the send's invoke; ``(ok-op p :add v)`` → its ok (no
completion: ours counts it ``info``, outcome unknown, which is what Jepsen's missing completion means). A reading
process ``p`` → a room member ``p<p>``, joined, connected before the history. ``(ok-op p :read S)`` → a receipt by
that member of each value of ``S`` it has not had yet, at the read's completion. A read's invoke has no row: members
do not ask, receipts are pushed. A read that lacks a value has no row either: our only read that observes absence is
the end of the drain, for a member connected then; a reader whose last read lacks a value and who reads no more → a
member that disconnects at that read (before any, when it never reads) and stays away. Jepsen's op ``k`` is at ``k``
ms; ours at ``T0 + k`` ms.

Mapping (keys; ``rooms`` = verdict.json ``details.rooms``; counts per *room message*, as set-full's per element):

- ``valid?`` → ``verdict.valid``. Both: false if anything is lost. set-full: else ``:unknown`` if nothing is
  stable, else true. Ours: else ``"unknown"`` if any copy is unseen or nothing was acknowledged, else true. So
  one stable message plus one unseen message is true for set-full and unknown for us (no published case has it).
- ``attempt-count`` → ``rooms.sends``.
- ``stable-count`` → messages every expected member received (``rooms.stable_latency_ms.count``).
- ``lost`` / ``lost-count`` → messages with a lost copy (``rooms.lost_messages``): an acknowledged copy missing
  from a member connected at the drain's end with a fair chance.
- ``never-read`` / ``never-read-count`` → the rest, each observed: a copy unseen (acknowledged, its member gone
  or without a fair chance), or a send never acknowledged and never received, or a room with no member to read.
- ``stale`` / ``stale-count`` / ``worst-stale`` → no analogue. They need a read that missed a message after it
  was known, and receipts are pushed: the ledger never records such a read.
- ``stable-latencies`` → ``rooms.stable_latency_ms``: from the send's *invoke* (as point-to-point latency) to the
  last expected member's first receipt. set-full measures from the known time (the ack, or the first read that saw
  it) to just after the last read that missed it, and says 0 when no read missed it. None of the five published
  histories has such a read, so Jepsen says 0 where we say 1-3 ms. (Applied literally to our ledger, which has no
  reads that miss, set-full's rule would say 0 for every message.)
- ``lost-latencies`` → ``rooms.lost_latency_ms``: ack → the last first receipt by any member, 0 when none (set-full:
  known → lost time, 0 when never observed). Our known time is the ack alone. set-full's is the ack *or the first
  read that saw it*, whichever is earlier. They differ only when a member got a lost message before its ack, and
  no portable case has that.
- ``duplicated`` / ``duplicated-count`` → messages some member received more than once. set-full counts a value
  repeated inside one read. Every published case has 0.
- Quantile maps: set-full ``{0 .5 .95 .99 1}``, nearest rank, whole ms; ours p50/p95/p99/max, interpolated, with
  no 0 quantile. ``_quantiles`` shows ours under set-full's keys minus ``0``. With one value the two agree.

set-full-test cases that do not map (receipts are never taken back, so a value present then absent has no ledger):
- "write, present, missing": process 2 reads {1}, {0 1}, then {0}, then {}.
- "write, flutter, stable/lost": process 2 reads {1}, then {0}: value 1 taken back at the same reader.

Maelstrom's docs: the "no communication" run (01-broadcast.md) and the partition run (02-performance.md) print every
final read, and on those histories set-full's lost/stable outcome follows from the final reads alone (see
``_set_full_by_final_reads``), so their counts port exactly. We assume every broadcast was acknowledged (neither run
shows a timed-out broadcast). set-full's outcome does not depend on that, but ours would: an unacknowledged copy is
never lost. Their stale counts need the elided middle reads, so they are not ported. Every other result in those
docs (e.g. the 32-broadcast "Everything looks good" run, the 959-broadcast latency runs) is a summary of a run whose
history is not shown, so it cannot be ported exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.checker import analyse, check
from tests.checker.builders import History
from tests.checker.test_check import counts

ROOM = "broadcast"

Op = tuple[str, int, str, Any]
"""(type, process, f, value), as Jepsen's ``invoke-op`` / ``ok-op``; f is ``add`` or ``read``."""


def invoke(process: int, f: str, value: Any) -> Op:
    return ("invoke", process, f, value)


def ok(process: int, f: str, value: Any) -> Op:
    return ("ok", process, f, value)


def _sender(value: int) -> str:
    return f"c-{value}"


def _member(process: int) -> str:
    return f"p{process}"


def _port(history: list[Op], readers: tuple[int, ...] = (1,), gone: tuple[int, ...] = (),
          finish: bool = True) -> History:
    """Our ledger for a set-full history (module doc). ``gone``: readers that disconnect at their last read;
    ``finish``: end the run (drain end, end, nodes closed)."""
    h = History()
    for p in readers:
        h.connect(_member(p), at_ms=1)
    for i, p in enumerate(readers):
        h.join(_member(p), ROOM, at_ms=2 + 2 * i)
    h.phase("start", at_ms=2 + 2 * len(readers))
    t0 = 2 * len(readers) + 4
    last_read = {p: max((k for k, (kind, q, f, _) in enumerate(history) if q == p and f == "read" and kind == "ok"),
                        default=-1) for p in gone}
    for p in gone:
        if last_read[p] == -1:  # it never reads: gone before the history
            h.disconnect(_member(p), at_ms=t0 - 1)
    seen: dict[int, set[int]] = {p: set() for p in readers}
    for k, (kind, process, f, value) in enumerate(history):
        t = t0 + k
        if f == "add":
            mid = History.room_mid(_sender(value), ROOM, 1)
            h._add(t, process=_sender(value), type=kind, f="send", msg_id=mid, sender=_sender(value), room=ROOM, seq=1)
        elif kind == "ok":  # a read's completion; its invoke has no row
            taken_back = seen[process] - set(value)
            if taken_back:
                raise ValueError(f"process {process} no longer reads {sorted(taken_back)}: receipts are never taken "
                                 "back, so this history has no analogue")
            for v in sorted(set(value) - seen[process]):
                h.room_recv(_member(process), _sender(v), ROOM, 1, at_ms=t)
            seen[process] |= set(value)
            if last_read.get(process) == k:
                h.disconnect(_member(process), at_ms=t)
    return h.finished() if finish else h


def _value(msg_id: str) -> int:
    return int(msg_id.split(">")[0].removeprefix("c-"))


def _quantiles(q: dict[str, Any]) -> dict[float, Any]:
    """Ours under set-full's quantile keys (no 0 quantile: we keep p50/p95/p99/max)."""
    return {0.5: q["p50"], 0.95: q["p95"], 0.99: q["p99"], 1: q["max"]}


def _set_full_view(h: History) -> dict[str, Any]:
    """Our verdict for ``h`` under set-full's keys (module doc, "Mapping (keys)")."""
    frame = h.frame()
    verdict = check(frame)
    analysis = analyse(frame)
    rooms = verdict.details["rooms"]
    facts = analysis.rooms
    table = facts.by_message
    sends = ((frame["f"] == "send") & frame["room"].notna()).to_numpy(dtype=bool, na_value=False)
    every = {str(m) for m in frame.loc[sends, "msg_id"]}
    stable = {str(m) for m in table.index[table["stable_ns"].notna().to_numpy(dtype=bool)]} if len(table) else set()
    lost = {str(m) for m in table.index[(table["lost"] > 0).to_numpy(dtype=bool)]} if len(table) else set()
    copies = analysis.messages.loc[analysis.messages.index.isin(list(facts.origin))]
    unseen = set(analysis.ids["unseen"])
    acked: set[str] = set()
    received: set[str] = set()
    with_unseen: set[str] = set()
    duplicated: set[str] = set()
    for copy_id, row in copies.iterrows():
        message = facts.origin[str(copy_id)]
        if row["outcome"] == "ok":
            acked.add(message)
        if row["receipts"] > 0:
            received.add(message)
        if str(copy_id) in unseen:
            with_unseen.add(message)
        if row["receipts"] > row["attempts"]:
            duplicated.add(message)
    judged = set(facts.origin.values())
    unobserved = with_unseen | {m for m in judged if m not in acked and m not in received} | (every - judged)
    never_read = unobserved - lost
    view: dict[str, Any] = {
        "valid?": verdict.valid,
        "attempt-count": rooms["sends"],
        "stable-count": rooms["stable_latency_ms"]["count"],
        "lost": sorted(map(_value, lost)),
        "lost-count": rooms["lost_messages"],
        "never-read": sorted(map(_value, never_read)),
        "never-read-count": len(never_read),
        "duplicated-count": len(duplicated),
    }
    assert view["stable-count"] == len(stable)  # the verdict's count and the per-message table agree
    if rooms["stable_latency_ms"]["count"]:  # set-full leaves a latency key out when it has no value
        view["stable-latencies"] = _quantiles(rooms["stable_latency_ms"])
    if rooms["lost_latency_ms"]["count"]:
        view["lost-latencies"] = _quantiles(rooms["lost_latency_ms"])
    return view


def _without_latencies(view: dict[str, Any]) -> dict[str, Any]:
    """The view less its latency maps (for Maelstrom's runs, whose docs print no latency for these histories)."""
    return {k: v for k, v in view.items() if not k.endswith("-latencies")}


# Jepsen's names in set-full-test: a / a' the add of 0, r a read by process 1, r+ seeing 0, r- not seeing it
a, a_ = invoke(0, "add", 0), ok(0, "add", 0)
r, r_plus, r_minus = invoke(1, "read", None), ok(1, "read", {0}), ok(1, "read", set())

NEVER_READ = {"valid?": "unknown", "attempt-count": 1, "stable-count": 0, "lost": [], "lost-count": 0,
              "never-read": [0], "never-read-count": 1, "duplicated-count": 0}


# -- set-full-test ---------------------------------------------------------------------------------------------


def test_never_read() -> None:
    # (c [(invoke-op 0 :add 0) (ok-op 0 :add 0)]): acknowledged, nobody reads. Ours: its one member was gone
    # before the send (unseen) ...
    gone = _port([a, a_], gone=(1,))
    assert _set_full_view(gone) == NEVER_READ
    assert check(gone.frame()).counts == counts(attempted=1, acknowledged=1, unseen=1)
    # ... or the room had no member at all: no copy to judge
    empty = _port([a, a_], readers=())
    assert _set_full_view(empty) == NEVER_READ
    assert check(empty.frame()).counts == counts()


def test_never_confirmed_never_read() -> None:
    # (c [a r r-]): the add never completes; a later read lacks it. Ours: no completion (info), the member
    # connected through the drain and never got it: not lost, since it was never acknowledged.
    h = _port([a, r, r_minus])
    assert _set_full_view(h) == NEVER_READ
    assert check(h.frame()).counts == counts(attempted=1, indeterminate=1)


@pytest.mark.parametrize(("history", "stable_ms"), [
    pytest.param([r, a, r_plus, a_], 1.0, id="concurrent read before"),
    pytest.param([r, a, a_, r_plus], 2.0, id="concurrent read outside"),
    pytest.param([a, r, r_plus, a_], 2.0, id="concurrent read inside"),
    pytest.param([a, r, a_, r_plus], 3.0, id="concurrent read after"),
    pytest.param([a, a_, r, r_plus], 3.0, id="subsequent read"),
])
def test_successful_read_either_concurrently_or_after(history: list[Op], stable_ms: float) -> None:
    # Jepsen: valid, stable 1, stable-latencies all 0 in all five. Without read invokes the five are two of ours
    # (receipt before / after the ack); the same verdict and counts. Our stable latency is invoke -> receipt
    # (r+'s index - a's index, in ms), where Jepsen's is 0 (no read ever missed it): see the module doc.
    h = _port(history)
    assert _set_full_view(h) == {
        "valid?": True, "attempt-count": 1, "stable-count": 1, "lost": [], "lost-count": 0, "never-read": [],
        "never-read-count": 0, "duplicated-count": 0, "stable-latencies": dict.fromkeys((0.5, 0.95, 0.99, 1),
                                                                                         stable_ms)}
    assert check(h.frame()).counts == counts(attempted=1, acknowledged=1, delivered=1)


def test_absent_read_after() -> None:
    # (c [a a' r r-]): a read begun after the ack lacks it -> lost, lost-latencies all 0 (never observed).
    # Ours: the member, connected at the drain's end (our absent read), never got it. The latency map equals
    # Jepsen's {0 0, 0.5 0, 0.95 0, 0.99 0, 1 0} without its 0 key.
    h = _port([a, a_, r, r_minus])
    assert _set_full_view(h) == {
        "valid?": False, "attempt-count": 1, "stable-count": 0, "lost": [0], "lost-count": 1, "never-read": [],
        "never-read-count": 0, "duplicated-count": 0, "lost-latencies": {0.5: 0.0, 0.95: 0.0, 0.99: 0.0, 1: 0.0}}
    assert check(h.frame()).counts == counts(attempted=1, acknowledged=1, lost=1)


@pytest.mark.parametrize("history", [
    pytest.param([r, a, r_minus, a_], id="read before"),
    pytest.param([r, a, a_, r_minus], id="read outside"),
    pytest.param([a, r, r_minus, a_], id="read inside"),
    pytest.param([a, r, a_, r_minus], id="read after"),
])
def test_absent_read_concurrently(history: list[Op]) -> None:
    # A read concurrent with the add that lacks it may have come first -> never-read, unknown. Ours: that read is
    # the member's last (it disconnects there and stays away), so its copy is unseen.
    h = _port(history, gone=(1,))
    assert _set_full_view(h) == NEVER_READ
    assert check(h.frame()).counts == counts(attempted=1, acknowledged=1, unseen=1)


def test_absent_read_after_by_a_member_gone_at_the_end_is_unseen_here_where_set_full_says_lost() -> None:
    # Deliberate difference: set-full's r- after the ack observes absence; our only such read is the drain's end,
    # and this member was not connected then, so we cannot tell lost from undelivered-to-the-absent.
    h = _port([a, a_, r, r_minus], gone=(1,))
    assert _set_full_view(h) == NEVER_READ
    assert check(h.frame()).counts == counts(attempted=1, acknowledged=1, unseen=1)


@pytest.mark.parametrize("history", [
    pytest.param([invoke(0, "add", 0), invoke(1, "add", 1), invoke(2, "read", None), ok(2, "read", {1}),
                  ok(0, "add", 0), ok(1, "add", 1), invoke(2, "read", None), ok(2, "read", {0, 1}),
                  invoke(2, "read", None), ok(2, "read", {0}), invoke(2, "read", None), ok(2, "read", set())],
                 id="write, present, missing"),
    pytest.param([invoke(0, "add", 0), ok(0, "add", 0), invoke(1, "add", 1), invoke(2, "read", None),
                  ok(2, "read", {1}), ok(1, "add", 1), invoke(2, "read", None), invoke(3, "read", None),
                  ok(3, "read", {1}), ok(2, "read", {0})], id="write, flutter, stable-lost"),
])
def test_a_value_present_then_absent_has_no_analogue(history: list[Op]) -> None:
    with pytest.raises(ValueError, match="never taken back"):
        _port(history, readers=(2, 3))


# -- Maelstrom's documented broadcast runs ---------------------------------------------------------------------


def _set_full_by_final_reads(reads: list[tuple[int, set[int]]]) -> tuple[set[int], set[int]]:
    """set-full's (stable, lost) when every value was known (acknowledged or read) before the final reads, the final
    reads were invoked after every other read, and each value is in at least one of them, as in both documented
    runs. Then the final reads decide alone: a value is lost iff a read *invoked* after the last read containing
    it lacks it, and stable otherwise. ``reads`` in invocation order."""
    values = set().union(*(s for _, s in reads))
    lost = {v for v in values if any(v not in s for _, s in reads[max(i for i, (_, s) in enumerate(reads)
                                                                       if v in s) + 1:])}
    return values - lost, lost


def _maelstrom(values: range, reads: list[tuple[int, set[int]]]) -> History:
    """Each value broadcast and acknowledged, then the final read of each worker's node (a worker reads its own
    node, so a node is a member named by its worker)."""
    history: list[Op] = []
    for v in values:
        history += [invoke(9, "add", v), ok(9, "add", v)]
    history += [invoke(w, "read", None) for w, _ in reads] + [ok(w, "read", s) for w, s in reads]
    return _port(history, readers=tuple(sorted(w for w, _ in reads)))


def test_maelstrom_no_communication() -> None:
    # 01-broadcast.md, nodes that never gossip: 21 broadcasts, final reads invoked by workers 2, 3, 0, 1, 4;
    # result ":attempt-count 21, :stable-count 1, :stale-count 1, :stale (8), :lost-count 20, :lost (0..7 9..20)".
    reads = [(2, {4, 16, 20}), (3, {1, 3, 6, 12}), (0, {0, 9, 10, 11, 15, 18}),
             (1, {2, 5, 7, 13, 14, 17, 19}), (4, {8})]
    stable, lost = _set_full_by_final_reads(reads)
    assert (len(stable), sorted(lost)) == (1, [*range(8), *range(9, 21)])  # the doc's numbers: the port is faithful
    # 8 is "stable" only because worker 4's read, the one holding it, began last. No value reached a second node:
    # we call all 21 lost (the doc agrees in words: "they weren't present *across all nodes*").
    h = _maelstrom(range(21), reads)
    assert _without_latencies(_set_full_view(h)) == {
        "valid?": False, "attempt-count": 21, "stable-count": 0, "lost": sorted(lost | stable), "lost-count": 21,
        "never-read": [], "never-read-count": 0, "duplicated-count": 0}
    assert check(h.frame()).counts == counts(attempted=105, acknowledged=105, delivered=21, lost=84)


PARTITION_BASE = {*range(3, 17), *range(18, 27), 28, 29, *range(31, 37)}
"""3..16 18..26 28 29 31..36: the values workers 0, 1, 2 and 4 all read in the partition run."""


def test_maelstrom_partition() -> None:
    # 02-performance.md, gossip without retries under --nemesis partition: final reads invoked by workers 4, 2, 1,
    # 3, 0; result ":valid? false, :lost-count 8, :lost (0 1 2 17 27 30 37 39), :stable-count 37". (It prints no
    # attempt-count; every value 0..44 is in some final read, 8 + 37 = 45.)
    reads = [(4, PARTITION_BASE), (2, PARTITION_BASE | {37, 39}), (1, PARTITION_BASE | {37, 39}),
             (3, {0, 1, 2, 17, 27, 30, 32, 33, 34, 35, 36, 38, 40, 41, 42, 43, 44}),
             (0, PARTITION_BASE | {38, 40, 41, 42, 43, 44})]
    stable, lost = _set_full_by_final_reads(reads)
    assert (len(stable), sorted(lost)) == (37, [0, 1, 2, 17, 27, 30, 37, 39])  # the doc's numbers
    # Only 32..36 reached all five nodes; set-full calls 37 stable because worker 0's read began last. We call
    # every value some node lacks lost: a superset of set-full's lost, never fewer.
    everywhere = set.intersection(*(s for _, s in reads))
    assert everywhere == {32, 33, 34, 35, 36}
    h = _maelstrom(range(45), reads)
    view = _without_latencies(_set_full_view(h))
    assert view == {
        "valid?": False, "attempt-count": 45, "stable-count": 5, "lost": sorted(set(range(45)) - everywhere),
        "lost-count": 40, "never-read": [], "never-read-count": 0, "duplicated-count": 0}
    assert set(view["lost"]) >= lost
    # 225 (message, node) pairs; the five final reads hold 31 + 33 + 33 + 17 + 37 = 151 of them
    assert check(h.frame()).counts == counts(attempted=225, acknowledged=225, delivered=151, lost=74)


def test_the_view_reads_every_key_from_the_ledger() -> None:
    # Not a published case: the view itself, on a history with one value of each outcome. Times (ms): joins 2-5,
    # add 0 at 8 (ok 9), add 1 at 10 (ok 11), add 2 invoked at 12 and never answered; p1 reads {0} at 13, p2 at
    # 14 and gets 0 again at 15; the drain ends at 16 with both connected.
    history = [invoke(0, "add", 0), ok(0, "add", 0), invoke(0, "add", 1), ok(0, "add", 1), invoke(0, "add", 2),
               ok(1, "read", {0}), ok(2, "read", {0})]
    h = _port(history, readers=(1, 2), finish=False).room_recv("p2", _sender(0), ROOM, 1, at_ms=15).finished()
    assert _set_full_view(h) == {
        "valid?": False, "attempt-count": 3, "stable-count": 1, "lost": [1], "lost-count": 1, "never-read": [2],
        "never-read-count": 1, "duplicated-count": 1,
        "stable-latencies": dict.fromkeys((0.5, 0.95, 0.99, 1), 6.0),  # 0: invoked 8, last member's receipt 14
        "lost-latencies": dict.fromkeys((0.5, 0.95, 0.99, 1), 0.0)}  # 1: nobody ever had it
    assert check(h.frame()).counts == counts(attempted=6, acknowledged=4, indeterminate=2, delivered=2, lost=2,
                                             duplicated=1)
