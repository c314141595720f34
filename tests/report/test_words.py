"""The verdict in words: headline, claim sentence, headline counts and numbers with no literal None."""

from __future__ import annotations

from typing import Any

from harness.report.words import claim_sentence, headline, headline_counts, number, other_counts


def _doc(valid: Any, held: Any, delivery: str = "at-least-once", lost: int = 0, **extra: Any) -> dict[str, Any]:
    claim = {"delivery": delivery, "ordered": False, "held": held, "violations": [f"lost={lost}"] if held is False
             else [], **extra}
    return {"valid": valid, "target": "t", "counts": {"acknowledged": 1200, "lost": lost, "duplicated": 3},
            "details": {"claim": claim}}


def test_headlines_say_what_happened_to_the_messages() -> None:
    assert headline(_doc(True, True)) == "Every one of the 1,200 acknowledged messages was delivered."
    assert headline(_doc(False, False, lost=105)) == "105 of the 1,200 acknowledged messages never arrived."
    assert headline(_doc("unknown", "unknown")).startswith("Not judged:")
    assert headline({"valid": "unknown", "counts": {}}).startswith("No verdict on delivery")


def test_duplicates_are_a_cause_only_where_the_target_claims_effectively_once() -> None:
    doc = _doc(False, False, delivery="effectively-once")
    assert headline(doc) == "3 duplicate receipt(s)."
    assert headline(_doc(False, False, lost=2)) == "2 of the 1,200 acknowledged messages never arrived."


def test_the_claim_is_explained_in_words_in_every_case() -> None:
    assert claim_sentence(_doc(True, True)) == (
        "t claims at-least-once delivery: every acknowledged message arrives, perhaps more than once. Nothing this "
        "run saw breaks that promise: claim held.")
    assert claim_sentence(_doc(False, True, delivery="at-most-once", lost=105)) == (
        "t claims at-most-once delivery: it may lose messages but never delivers one twice. Nothing this run saw "
        "breaks that promise, so the claim held. The verdict is still FAIL: the harness requires every "
        "acknowledged message to arrive, and 105 did not.")
    assert claim_sentence(_doc(False, False, lost=4)).endswith("This run broke that claim (lost=4): claim violated.")
    assert "cannot be told" in claim_sentence(_doc("unknown", "unknown"))
    excused = _doc(False, True, lost=39, note="loss after a restart is outside this target's claim")
    assert claim_sentence(excused).endswith("Claim held: loss after a restart is outside this target's claim. "
                                            "The verdict is still FAIL, because 39 were lost.")
    assert claim_sentence({"details": {}}) == "The target's claim was not judged."


def test_headline_counts_come_first_and_bad_ones_are_never_folded() -> None:
    counts = {"attempted": 10, "acknowledged": 9, "delivered": 8, "lost": 1, "unseen": 0, "duplicated": 0,
              "unexpected": 0, "unverifiable": 2, "delivered_after_fail": 0, "skipped": 1, "gap": 1}
    assert [k for k, _ in headline_counts(counts)] == ["acknowledged", "delivered", "lost", "unseen", "duplicated",
                                                       "unexpected", "unverifiable"]
    assert [k for k, _ in other_counts(counts)] == ["attempted", "delivered_after_fail", "skipped", "gap"]


def test_numbers_never_print_none() -> None:
    assert [number(v) for v in (None, 0, 12345, 5363.107, 2.027, 0.0123, "x", True)] == [
        "-", "0", "12,345", "5,363", "2.0", "0.0123", "x", "true"]
