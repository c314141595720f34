"""A user's slot: its listener URLs by port, as built by the load process and as shipped to a worker."""

from __future__ import annotations

from dataclasses import asdict

import msgpack

from harness.run.context import CohortURL, Slot


def test_a_slot_for_a_one_port_target_names_its_port_main() -> None:
    slot = Slot("u1-0", "u1", "http://127.0.0.1:5000", "tok")
    assert slot.urls == {"main": "http://127.0.0.1:5000"}
    assert Slot("u1-0", "u1", "", "").urls == {}  # a worker's placeholder before its claim is answered


def test_a_cohort_url_carries_every_port_into_the_slot_and_leaves_a_plain_string() -> None:
    urls = {"sub": "http://127.0.0.1:7001", "pub": "http://127.0.0.1:7002"}
    slot = Slot("a-0", "a", CohortURL(urls["sub"], urls), "tok")
    assert slot.url == urls["sub"] and type(slot.url) is str and slot.urls == urls
    given = Slot("a-0", "a", urls["sub"], "tok", urls={"sub": urls["sub"]})
    assert given.urls == {"sub": urls["sub"]}  # urls given explicitly win


def test_a_slot_survives_the_trip_to_a_worker() -> None:
    urls = {"sub": "http://127.0.0.1:7001", "pub": "http://127.0.0.1:7002"}
    sent = Slot("a-0", "a", CohortURL(urls["sub"], urls), "tok")
    shipped = msgpack.unpackb(msgpack.packb(asdict(sent)))  # how the master answers a worker's claim
    assert Slot(**shipped) == sent
