"""``--workers``: a count, or ``auto`` for one worker per core this process may run on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.run.process import cores, worker_count


def test_cores_is_this_process_affinity_not_the_machine_count() -> None:
    """Pinned to one core (as ``taskset`` or a container's cpuset would), auto means one worker."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from harness.run.process import worker_count; print(worker_count('auto'))")
    pinned = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert pinned.stdout.strip() == "1"
    assert cores() == len(os.sched_getaffinity(0))


def test_auto_is_one_worker_per_core() -> None:
    assert worker_count("auto") == cores()
    assert worker_count(" AUTO ") == cores()


@pytest.mark.parametrize(("text", "count"), [("0", 0), ("1", 1), ("7", 7)])
def test_a_number_is_that_many_workers(text: str, count: int) -> None:
    assert worker_count(text) == count


@pytest.mark.parametrize("text", ["-1", "two", "", "1.5"])
def test_anything_else_is_refused_with_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="a number >= 0 or 'auto'"):
        worker_count(text)
