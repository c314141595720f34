"""A run whose cohorts are spread over two embedded proxy processes (``--links-per-proxy 1``: one cohort
each) gets the verdict of a run with one: blip on ackmap, valid, nothing lost, the stall on u1 applied and
biting, measured from u1's own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.helpers import ROOT, assert_as_committed, harness, verdict

pytestmark = pytest.mark.integration

BLIP = ROOT / "scenarios" / "blip.toml"


def test_two_proxy_processes_give_the_verdict_of_one(tmp_path: Path) -> None:
    run = harness("run", str(BLIP), "--target", "ackmap", "--links-per-proxy", "1", "--out", str(tmp_path),
                  timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["proxy_processes"] == 2 and manifest["proxy_members"] == {"u1": 0, "u2": 1}
    result = verdict(tmp_path)
    assert result["valid"] is True and result["counts"]["lost"] == 0 and result["counts"]["unseen"] == 0
    assert not (result["details"].get("faults") or {}).get("problems"), result["details"].get("faults")
    assert {"proxy", "proxy-1"} <= set(result["details"]["health"]["cpu_peak_pct"])
    assert_as_committed("blip", "ackmap", tmp_path)
    # u1's bytes were read from the metrics of u1's own process (asked of the other, they are not there),
    # and the stall bit: deliveries to u1 waited for it
    (effect,) = result["details"]["faults"]["effects"]
    assert effect["cohort"] == "u1" and effect["bytes_before"] > 0
    assert effect["latency_ms_during"] > 10 * effect["latency_ms_before"]
