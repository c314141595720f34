"""pytest plugin (registered as ``delivery_harness`` through the ``pytest11`` entry point).

Assert delivery guarantees in your own test suite::

    def test_chat_server_loses_nothing(delivery_run):
        verdict = delivery_run("scenarios/heartbeat-timeout.toml", target="mine")
        assert_delivery(verdict)            # or: assert verdict["valid"] is True

The run happens in a subprocess (Locust must never be imported into the pytest process); the verdict is
the verdict.json document plus ``report_dir`` (where the ledger and reports are) and ``exit_code``.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["delivery_run", "assert_delivery", "DeliveryRunError"]

_counter = itertools.count(1)


class DeliveryRunError(AssertionError):
    """The run could not happen (bad scenario, target failed to start): the harness's message is attached."""


def assert_delivery(verdict: dict[str, Any]) -> None:
    """Fail with the gate's reasons unless every guarantee held (exit code 0)."""
    if verdict.get("exit_code") != 0:
        gate = verdict.get("gate") or {}
        reasons = gate.get("reasons") or [verdict.get("reason") or "verdict not valid"]
        raise AssertionError(f"delivery guarantees not met ({verdict.get('target')}): " + "; ".join(reasons)
                             + f"\nreport: {verdict.get('report_dir')}/report.md")


@pytest.fixture
def delivery_run(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """Run a scenario against one target and return its verdict (see module docstring)."""

    def run(scenario: str | Path, target: str | None = None, *, args: Sequence[str] = (),
            timeout: float = 900) -> dict[str, Any]:
        out = tmp_path / f"delivery-{next(_counter)}-{target or 'default'}"
        command = [sys.executable, "-m", "harness", "run", str(scenario), "--out", str(out), *args]
        if target:
            command += ["--target", target]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        verdict_path = out / "verdict.json"
        if not verdict_path.exists():
            raise DeliveryRunError(f"harness run exited {done.returncode} without a verdict:\n{done.stderr[-4000:]}")
        verdict: dict[str, Any] = json.loads(verdict_path.read_text())
        verdict["report_dir"] = str(out)
        verdict["exit_code"] = done.returncode
        verdict["stdout"] = done.stdout
        return verdict

    return run
