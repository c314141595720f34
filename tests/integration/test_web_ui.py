"""Locust's own web UI with the Delivery tab, driven by a real browser (Debian chromium, headless).

Started as the README shows (no ``--web-host``): the UI must listen on loopback only; its fault routes
refuse what another site could send, and refuse to act once the run has ended."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from playwright.sync_api import Page, sync_playwright

from harness.run.process import free_port
from tests.integration.helpers import ROOT, STORY
from tests.integration.proctree import listening

pytestmark = pytest.mark.integration

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _cell(page: Page, row: str, column: int) -> str:
    """Text of one cell of the Delivery table (row found by its first cell)."""
    return page.locator("tr", has_text=row).first.locator("td").nth(column).inner_text()


def test_delivery_tab_shows_live_numbers_and_the_final_verdict(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "run"
    locust = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "harness" / "locustfile.py"), "--scenario", str(STORY),
         "--target", "ackmap", "--out", str(out), "--web-port", str(port),
         "-u", "2", "-r", "2"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        tree = [psutil.Process(locust.pid), *psutil.Process(locust.pid).children(recursive=True)]
        sockets = listening(tree)
        print("listening sockets seen:", sorted(sockets))
        assert ("127.0.0.1", port) in {(addr, p) for _, addr, p in sockets}
        assert {addr for _, addr, _ in sockets} <= {"127.0.0.1", "::1"}, sorted(sockets)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                 args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("form button[type=submit]").first.click()  # the start form, pre-filled by -u/-r
            page.get_by_role("tab", name="Delivery").click()
            page.locator("tr", has_text="u2").first.wait_for(timeout=20_000)
            first = int(_cell(page, "u2", 2) or 0)
            time.sleep(2.5)
            second = int(_cell(page, "u2", 2) or 0)
            assert second > first, (first, second)  # the numbers move while the run goes
            assert "provisional" in page.content().lower()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "locust-delivery-tab.png"), full_page=True)

            listed = httpx.get(f"http://127.0.0.1:{port}/delivery/faults", timeout=5).json()
            assert [f["name"] for f in listed] == ["u1-blackhole"]
            inject = f"http://127.0.0.1:{port}/delivery/faults/u1-blackhole/inject"
            other_site = httpx.post(inject, json={}, headers={"Origin": "http://evil.example"}, timeout=5)
            assert other_site.status_code == 403 and "cross-origin" in other_site.json()["error"]
            form = httpx.post(inject, data={"x": "1"}, timeout=5)  # what an HTML form on any site can send
            assert form.status_code == 403 and "application/json" in form.json()["error"]
            page.goto(f"http://127.0.0.1:{port}/delivery")  # the fault buttons
            page.get_by_role("button", name="inject now").click()
            page.get_by_text('"active":true').wait_for(timeout=5_000)
            page.get_by_role("button", name="heal now").click()
            page.get_by_text('"active":false').wait_for(timeout=5_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_role("tab", name="Delivery").click()

            page.locator("tr", has_text="FINAL VERDICT").first.wait_for(timeout=60_000)
            assert _cell(page, "FINAL VERDICT", 1) == "true"  # ackmap loses nothing
            for action in ("inject", "heal"):
                late = httpx.post(f"http://127.0.0.1:{port}/delivery/faults/u1-blackhole/{action}", json={},
                                  headers={"Origin": f"http://127.0.0.1:{port}"}, timeout=5)
                assert late.status_code == 409 and "ended" in late.json()["error"], late.text
            page.screenshot(path=str(ARTIFACTS / "locust-delivery-verdict.png"), full_page=True)
            browser.close()
        verdict = json.loads((out / "verdict.json").read_text())
        assert verdict["valid"] is True and verdict["counts"]["lost"] == 0
        ledger = (out / "ledger.jsonl").read_text()
        assert '"action":"inject","fault":"u1-blackhole"' in ledger and '"source":"web-ui"' in ledger
        rows = [json.loads(line) for line in ledger.splitlines()]
        end = next(r["index"] for r in rows if r["f"] == "phase" and r["data"]["phase"] == "end")
        manual = [r["index"] for r in rows if r["f"] == "fault" and r["data"].get("source") == "web-ui"]
        assert 1 <= len(manual) <= 2 and max(manual) < end  # the buttons' actions; nothing refused got in
    finally:
        locust.send_signal(signal.SIGTERM)
        try:
            locust.wait(30)
        except subprocess.TimeoutExpired:
            locust.kill()
