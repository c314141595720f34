"""report.html and comparison.html in a real browser (Debian chromium, headless, driven by Playwright).

A failing and a passing run, each from a hand-built ledger through ``finalize``, side by side on one comparison
page, and a room run whose Rooms section must show its exact figures. For every page the verdict banner, the
reason (or the passing headline) and the plot must be visible in the first screen, and every image must have
loaded. The screenshots are kept as test artefacts in the module's
tmp folder (``<pytest basetemp>/browser-pages*/shots/``, named in the output) and copied to
``test-artifacts/pages/`` (git-ignored): pytest keeps only its last three tmp folders, which on a shared machine
other suites' runs replace within minutes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from harness.report import finalize
from harness.report.compare import load_cell, write_comparison
from tests.checker.builders import History

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "pages"

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_pages_in_browser")]  # one module fixture

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT: ViewportSize = {"width": 1100, "height": 900}


def _failing() -> History:
    """b is blackholed; a's message 2 is acknowledged while b is away and never arrives: lost."""
    h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("a", at_ms=0, conn=1, cohort="ca")
    h.phase("start", at_ms=1)
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    h.fault("inject", "b-blackhole", "cb", at_ms=20)
    h.invoke("a", "b", 2, at_ms=30).ok("a", "b", 2, at_ms=31)
    h.disconnect("b", at_ms=40).fault("heal", "b-blackhole", "cb", at_ms=50).connect("b", at_ms=60, conn=2)
    h.invoke("a", "b", 3, at_ms=70).ok("a", "b", 3, at_ms=71).recv("b", "a", "b", 3, at_ms=72, conn=2)
    h.phase("drain_start", at_ms=80)
    return h.finished()


def _passing() -> History:
    """The same outage, but message 2 is redelivered after b reconnects."""
    h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("a", at_ms=0, conn=1, cohort="ca")
    h.phase("start", at_ms=1)
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    h.fault("inject", "b-blackhole", "cb", at_ms=20)
    h.invoke("a", "b", 2, at_ms=30).ok("a", "b", 2, at_ms=31)
    h.disconnect("b", at_ms=40).fault("heal", "b-blackhole", "cb", at_ms=50).connect("b", at_ms=60, conn=2)
    h.recv("b", "a", "b", 2, at_ms=65, conn=2)
    h.invoke("a", "b", 3, at_ms=70).ok("a", "b", 3, at_ms=71).recv("b", "a", "b", 3, at_ms=72, conn=2)
    h.phase("drain_start", at_ms=80)
    return h.finished()


def _cut_short() -> History:
    """The target dies mid-fault: b's cohort is blackholed and never healed, and the run ends without a drain."""
    h = History().connect("b", at_ms=0, conn=1, cohort="cb").connect("a", at_ms=0, conn=1, cohort="ca")
    h.phase("start", at_ms=1)
    h.invoke("a", "b", 1, at_ms=10).ok("a", "b", 1, at_ms=11).recv("b", "a", "b", 1, at_ms=12, conn=1)
    h.fault("inject", "b-blackhole", "cb", at_ms=20)
    h.disconnect("b", at_ms=40).disconnect("a", at_ms=41)
    return h


def _rooms() -> History:
    """alice sends twice to the lobby (alice, bob, carol); bob's cohort is blackholed during message 2, which he
    never gets: one lost copy of four expected. Message 1 reached the whole room 30 ms after its send."""
    h = History()
    for user, cohort in (("alice", "ca"), ("bob", "cb"), ("carol", "ca")):
        h.connect(user, at_ms=0, conn=1, cohort=cohort)
    for i, user in enumerate(("alice", "bob", "carol")):
        h.join(user, "lobby", at_ms=10 + 2 * i)
    h.phase("start", at_ms=100)
    h.room_send("alice", "lobby", 1, at_ms=200).room_recv("bob", "alice", "lobby", 1, at_ms=212)
    h.room_recv("carol", "alice", "lobby", 1, at_ms=230)
    h.fault("inject", "bob-out", "cb", at_ms=300)
    h.room_send("alice", "lobby", 2, at_ms=400).room_recv("carol", "alice", "lobby", 2, at_ms=410)
    h.disconnect("bob", at_ms=500).fault("heal", "bob-out", "cb", at_ms=600).connect("bob", at_ms=700, conn=2)
    h.phase("drain_start", at_ms=800)
    return h.finished()


@dataclass(frozen=True)
class Pages:
    root: Path
    shots: Path
    browser: Browser


def _run(folder: Path, history: History, target: str) -> dict[str, object]:
    folder.mkdir(parents=True)
    ledger = folder / "ledger.jsonl"
    ledger.write_text("".join(json.dumps(r) + "\n" for r in history.rows))
    return finalize(ledger, target=target, scenario="story")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pages]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: scripts/setup.sh installs the Debian package"
    root = tmp_path_factory.mktemp("browser-pages")
    assert _run(root / "lossy", _failing(), "lossy")["valid"] is False
    assert _run(root / "safe", _passing(), "safe")["valid"] is True
    assert _run(root / "rooms", _rooms(), "rooms")["valid"] is False
    bare = root / "bare"
    bare.mkdir()
    (bare / "only.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _cut_short().rows))
    finalize(bare / "only.jsonl")  # a bare ledger file: no run folder, no --target
    write_comparison(root, "story", [load_cell("story", t, root / t) for t in ("lossy", "safe")])
    shots = root / "shots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield Pages(root, shots, browser)
        finally:
            browser.close()
    print(f"screenshots kept in {shots}")


def _open(pages: Pages, path: Path) -> Page:
    page = pages.browser.new_page(viewport=VIEWPORT)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


def _in_first_screen(page: Page, selector: str) -> None:
    """Visible, and at least partly inside the first 900 px: what a person sees without scrolling."""
    element = page.locator(selector).first
    assert element.is_visible(), selector
    box = element.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, selector
    assert box["y"] < VIEWPORT["height"], (selector, box)


def _loaded(page: Page, selector: str) -> None:
    """An image that the browser decoded (a broken src has naturalWidth 0)."""
    width = page.locator(selector).first.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width > 300, (selector, width)


def _screenshot(page: Page, path: Path) -> None:
    """A full-page screenshot that shows something: many colours, not a blank or one-colour page."""
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200, (path, len(colours or []))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / path.name)


def test_a_failing_report_shows_fail_its_reason_and_the_plot_first(pages: Pages) -> None:
    page = _open(pages, pages.root / "lossy" / "report.html")
    _in_first_screen(page, "#verdict.banner.FAIL")
    assert page.locator("#verdict .badge").inner_text() == "FAIL"
    _in_first_screen(page, "#reason")
    assert page.locator("#reason").inner_text() == "Why: 1 acknowledged message(s) lost"
    _in_first_screen(page, "#experiment")
    _in_first_screen(page, "#per-message-plot")
    _loaded(page, "#per-message-plot")
    lost = page.locator("#headline-counts div.bad")
    assert lost.count() == 1 and lost.inner_text().split() == ["lost", "1"]
    conclusion = page.locator("details[open] tr.conclusion").first
    assert conclusion.is_visible() and conclusion.inner_text().endswith("→ lost")
    _screenshot(page, pages.shots / "report-fail.png")
    page.close()


def test_a_passing_report_shows_pass_the_headline_and_no_loss_text(pages: Pages) -> None:
    page = _open(pages, pages.root / "safe" / "report.html")
    _in_first_screen(page, "#verdict.banner.PASS")
    assert page.locator("#verdict .badge").inner_text() == "PASS"
    assert page.locator("#reason").count() == 0  # a pass has no reason; its headline says what held
    assert page.locator("#verdict .headline").inner_text() == "Every one of the 3 acknowledged messages was delivered."
    _in_first_screen(page, "#per-message-plot")
    _loaded(page, "#per-message-plot")
    assert page.locator("#no-loss").is_visible()  # words, not an empty per-cohort chart
    assert page.locator("#headline-counts div.bad").count() == 0
    _screenshot(page, pages.shots / "report-pass.png")
    page.close()


def test_the_comparison_shows_both_verdicts_reasons_and_plots(pages: Pages) -> None:
    page = _open(pages, pages.root / "comparison.html")
    _in_first_screen(page, "#summary")
    assert [b.inner_text() for b in page.locator("#summary .badge").all()] == ["FAIL", "PASS"]
    _in_first_screen(page, "#latency-compared")
    _loaded(page, "#latency-compared")
    for target, badge in (("lossy", "FAIL"), ("safe", "PASS")):
        card = page.locator(f"#target-{target}")
        assert card.is_visible()
        assert card.locator(".badge").inner_text() == badge
        images = card.locator("img")
        for index in range(images.count()):
            assert images.nth(index).evaluate("img => img.complete ? img.naturalWidth : 0") > 300, target
    assert "Why: 1 acknowledged message(s) lost" in page.locator("#target-lossy").inner_text()
    assert "None" not in page.locator("body").inner_text()
    for link in page.locator("a").all():  # every link on the page opens a file that is there
        href = link.get_attribute("href")
        assert href and (pages.root / href).is_file(), href
    _screenshot(page, pages.shots / "comparison.png")
    page.close()


def test_a_room_report_shows_its_rooms_section_with_the_exact_figures(pages: Pages) -> None:
    page = _open(pages, pages.root / "rooms" / "report.html")
    section = page.locator("#rooms")
    section.scroll_into_view_if_needed()
    assert section.is_visible() and section.inner_text() == "Rooms"
    assert page.locator("#rooms-summary").inner_text() == (
        "2 room sends to 1 room → 4 expected copies (fan-out 2.0): 3 delivered, 1 lost, 0 unseen; stable latency "
        "p50 30.0 ms, p99 30.0 ms (n 1: over the room messages that reached every expected member only).")
    assert ("whose join the server had acknowledged before the message was sent (invoked), and whose leave was "
            "sent only after the message's acknowledgement arrived") in page.locator("#membership-rule").inner_text()
    copies = page.locator("#counts-are-copies")
    assert copies.is_visible() and copies.inner_text() == (
        "Counts are per copy: a room send counts once for each member that had to receive it. 4 acknowledged = 4 "
        "copies of 2 acknowledged room sends (one per expected member) + 0 point-to-point messages.")
    shown = dict(zip(page.locator("#headline-counts span").all_inner_texts(),
                     page.locator("#headline-counts b").all_inner_texts(), strict=True))
    assert shown["acknowledged"] == "4" and shown["delivered"] == "3" and shown["lost"] == "1"
    row = page.locator('#per-room tr[data-room="lobby"]')
    assert row.is_visible()
    assert [c.inner_text() for c in row.locator("td").all()] == [
        "lobby", "2", "3", "2.0", "4", "3", "1", "0", "0", "0", "30.0", "30.0", "1"]
    assert page.locator("#per-room tr").count() == 2  # the header and the lobby
    bob = page.locator('#members tr[data-member="lobby/bob"]')
    assert bob.is_visible() and [c.inner_text() for c in bob.locator("td").all()] == [
        "lobby", "bob", "2", "1", "1", "0", "0", "0"]
    assert page.locator("#members tr").count() == 2  # only bob missed anything
    cdf = page.locator("#stable-latency-cdf")
    cdf.scroll_into_view_if_needed()
    assert cdf.is_visible()
    _loaded(page, "#stable-latency-cdf")
    lost = page.locator("details[open] tr.conclusion").first
    lost.scroll_into_view_if_needed()
    assert lost.is_visible() and lost.inner_text().split("\t", 1)[-1].strip() == (
        "lost: bob was a member of lobby (joined 0.4 s before the send, never left) and connected from 0.6 s to "
        "the end of the drain (0.7 s), and never received it (fault bob-out hit its cohort cb from 0.2 s to "
        "0.5 s) → lost")
    _screenshot(page, pages.shots / "report-rooms.png")
    page.close()


@pytest.mark.parametrize("name", ["lossy/report.html", "safe/report.html", "rooms/report.html", "comparison.html"])
def test_every_page_fits_800_px_without_sideways_scrolling(pages: Pages, name: str) -> None:
    page = pages.browser.new_page(viewport={"width": 800, "height": 900})
    page.goto((pages.root / name).as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    _in_first_screen(page, "#verdict" if name.endswith("report.html") else "#summary")
    page.close()


def test_a_bare_ledger_cut_short_says_what_is_known_and_agrees_with_its_verdict(pages: Pages) -> None:
    doc = json.loads((pages.root / "bare" / "verdict.json").read_text())
    page = _open(pages, pages.root / "bare" / "report.html")
    text = page.locator("body").inner_text()
    assert "None" not in text and " on ?" not in text and "ledger on" not in text
    assert page.locator("#verdict h1").inner_text() == f"{page.locator('#verdict .badge').inner_text()} ledger " \
        "(target not recorded)"
    experiment = page.locator("#experiment").inner_text()
    health, faults = doc["details"]["health"], doc["details"]["faults"]
    assert health.get("healthy", True) is not False and faults["problems"]  # fine measurements, a fault left open
    assert experiment.startswith("Experiment UNHEALTHY (the faults did not run as scheduled; the run did not "
                                 "finish; the health measurements were fine)")
    assert "the run did not finish (no 'end' phase in the ledger): loss not judged" in experiment
    assert faults["problems"] == ["fault b-blackhole was never healed: the run ended under the fault, without a drain"]
    assert "fault b-blackhole was never healed: the run ended under the fault, without a drain" in experiment
    assert "drain ran" not in text  # there was none: the page does not say both
    no_drain = page.locator("#no-drain")
    assert no_drain.is_visible() and no_drain.inner_text() == "no drain was recorded (the run ended without one)"
    assert "hatched grey: the drain" not in text
    page.close()


def test_warnings_look_like_warnings_not_like_good_news(pages: Pages, tmp_path: Path) -> None:
    from harness.checker import analyse, check
    from harness.report.html import render_html

    frame = _passing().frame()
    doc = check(frame).to_dict()
    doc["details"].setdefault("health", {})["warnings"] = ["proxy lagging: its API answered in 900 ms"]
    html, _ = render_html(doc, analyse(frame), frame)
    (tmp_path / "report.html").write_text(html)
    page = _open(pages, tmp_path / "report.html")
    warning = page.locator("#health-warnings li").first
    assert warning.is_visible()
    assert warning.inner_text() == "warning (the verdict stands): proxy lagging: its API answered in 900 ms"
    style = warning.evaluate("e => { const s = getComputedStyle(e); return [s.backgroundColor, s.borderLeftColor] }")
    assert style == ["rgb(255, 248, 225)", "rgb(249, 168, 37)"]  # amber, not the green of a healthy run
    page.close()
