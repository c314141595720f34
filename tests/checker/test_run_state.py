"""A distributed run's record of its workers: the master's ``node`` reports against the rows actually checked.

The master reports each worker with the users it ran. When the report says "complete" but that worker's closed
record is not in the ledger being checked (its ``ledger-<node>.jsonl`` missing from the folder, or truncated after
the run), what its users observed is not here: their undelivered messages are unseen, never lost.
"""

from __future__ import annotations

from harness.checker import check, exit_code
from harness.checker.run_state import run_state
from tests.checker.builders import History
from tests.checker.test_check import counts


def _distributed(worker2_rows: bool, worker2_closed: bool) -> History:
    """u1 on worker-1 sends two messages to u2 on worker-2; the master reports both workers complete."""
    h = History().connect("u1", 10, conn=1, node="worker-1")
    if worker2_rows:
        h.connect("u2", 11, conn=1, node="worker-2")
    h.phase("start", 20, connected=2, users=2, sending=True, faults=[])
    for seq in (1, 2):
        h.invoke("u1", "u2", seq).ok("u1", "u2", seq)  # acknowledged to u1 (these rows stand for worker-1's)
    if worker2_rows:
        h.recv("u2", "u1", "u2", 1, node="worker-2")
    h.phase("drain_end", 5_000, quiescent=False).phase("end", 5_001)
    for node, users in (("worker-1", ["u1"]), ("worker-2", ["u2"])):
        h._add(None, process="controller", type="event", f="node",
               data={"node": node, "users": users, "complete": True, "reason": None})
    h.node_closed("local").node_closed("worker-1")
    if worker2_rows and worker2_closed:
        h.node_closed("worker-2")
    return h


def test_a_missing_worker_file_is_unseen_not_lost() -> None:
    verdict = check(_distributed(worker2_rows=False, worker2_closed=False).frame())
    assert verdict.valid == "unknown" and exit_code(verdict) == 3
    assert verdict.counts == counts(attempted=2, acknowledged=2, unseen=2)
    assert verdict.details["unhealthy_nodes"] == {
        "worker-2": "the master received its ledger complete, but ledger-worker-2.jsonl is not in what was "
                    "checked (a missing file: check the whole run folder)"}
    assert any("2 acknowledged message(s) unseen: observed by unhealthy load process(es) worker-2" in r
               for r in verdict.reasons), verdict.reasons


def test_a_worker_file_truncated_after_the_run_is_unseen_not_lost() -> None:
    verdict = check(_distributed(worker2_rows=True, worker2_closed=False).frame())
    assert verdict.valid == "unknown"
    assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, unseen=1)
    assert "ends before its close (truncated after the run)" in verdict.details["unhealthy_nodes"]["worker-2"]


def test_every_worker_file_present_judges_the_loss() -> None:
    frame = _distributed(worker2_rows=True, worker2_closed=True).frame()
    assert run_state(frame).unhealthy_nodes == {}
    verdict = check(frame)
    assert verdict.valid is False
    assert verdict.counts == counts(attempted=2, acknowledged=2, delivered=1, lost=1)
