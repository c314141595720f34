"""The SSE target's rooms over real HTTP (httpx + httpx-sse): a room send lands in every other member's own
stream, once, with its ``room``, in order among the direct messages; an offline member reads it later; a
member who left gets nothing more, a late joiner nothing from before, a non-member never; bad names are
refused; a join racing a send (played step by step on the scripts) is never lost."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx_sse
import pytest
import redis

from harness.run.store import RedisServer
from targets.auth import sign
from targets.sse_app import ROOM_FAN_OUT, ROOM_JOIN, ROOM_LATECOMERS
from tests.targets.helpers import SECRET, Running, started

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_sse_rooms")]


@pytest.fixture(scope="module")
def sse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # default ping interval (15 s): a read ends after `timeout` seconds of silence (pings would keep it open)
    with started("sse", tmp_path_factory.mktemp("sse-rooms")) as target:
        yield target


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(user, SECRET)}"}


def post(url: str, user: str, path: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=auth(user), timeout=10)


def read(url: str, user: str, count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Up to ``count`` msg events of the user's stream from its start (or what came within ``timeout``)."""
    events: list[dict[str, Any]] = []

    def run() -> None:
        try:
            with httpx.Client(base_url=url, timeout=httpx.Timeout(5, read=timeout)) as client, \
                    httpx_sse.connect_sse(client, "GET", "/events", headers=auth(user)) as source:
                for event in source.iter_sse():
                    if event.event == "msg":
                        events.append(json.loads(event.data))
                        if len(events) >= count:
                            return
        except httpx.HTTPError:
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return events


def test_room_messages_reach_each_member_once_in_order_and_nobody_else(sse: Running) -> None:
    tag = secrets.token_hex(3)
    alice, bob, carol, dave, erin = (f"{u}-{tag}" for u in ("alice", "bob", "carol", "dave", "erin"))
    room = f"lobby-{tag}"
    for user in (alice, bob, carol):
        assert post(sse.url, user, "/join", {"room": room}).json() == {"ok": True}
    assert post(sse.url, bob, "/join", {"room": room}).json() == {"ok": True}  # again: no effect
    assert post(sse.url, alice, "/send", {"id": "r1", "room": room, "seq": 1}).json() == {"ok": True}
    assert post(sse.url, alice, "/send", {"id": "d1", "to": bob, "seq": 1}).json() == {"ok": True}
    assert post(sse.url, alice, "/send", {"id": "r2", "room": room, "seq": 2}).json() == {"ok": True}
    # carol reads only now (offline until here): everything is in her own stream
    got = read(sse.url, carol, 2)
    assert [(m["id"], m["room"], m["from"]) for m in got] == [("r1", room, alice), ("r2", room, alice)]
    assert [(m["id"], m.get("room")) for m in read(sse.url, bob, 3)] == [("r1", room), ("d1", None), ("r2", room)]

    assert post(sse.url, erin, "/join", {"room": room}).json() == {"ok": True}  # late
    assert post(sse.url, bob, "/leave", {"room": room}).json() == {"ok": True}
    assert post(sse.url, carol, "/send", {"id": "r3", "room": room, "seq": 1}).json() == {"ok": True}
    assert [m["id"] for m in read(sse.url, erin, 5, timeout=1.5)] == ["r3"]
    assert [m["id"] for m in read(sse.url, bob, 5, timeout=1.5)] == ["r1", "d1", "r2"]  # nothing after leaving
    assert [m["id"] for m in read(sse.url, alice, 5, timeout=1.5)] == ["r3"]  # her own never
    assert [m["id"] for m in read(sse.url, carol, 5, timeout=1.5)] == ["r1", "r2"]  # her own never
    assert read(sse.url, dave, 5, timeout=1.5) == []  # never a member


def test_bad_room_names_and_bodies_are_refused(sse: Running) -> None:
    bodies: list[Any] = [{"room": "no spaces"}, {"room": "x" * 65}, {"room": "{braces}"}, {"room": 7}, {}, []]
    for body in bodies:
        for path in ("/join", "/leave"):
            response = post(sse.url, "mallory", path, body)
            assert response.status_code == 400 and response.json()["ok"] is False, (path, body)
        response = post(sse.url, "mallory", "/send", {"id": "x", "seq": 1, **(body if isinstance(body, dict) else {})})
        assert response.status_code == 400 and response.json()["ok"] is False, body
    assert httpx.post(f"{sse.url}/join", json={"room": "lobby"}, timeout=5).status_code == 401


def test_a_full_members_stream_refuses_the_room_send_for_everyone(tmp_path: Path) -> None:
    with started("sse", tmp_path, "--max-pending", "2") as target:
        for user in ("bob", "carol"):
            assert post(target.url, user, "/join", {"room": "lobby"}).json() == {"ok": True}
        assert post(target.url, "alice", "/send", {"id": "d1", "to": "carol", "seq": 1}).json() == {"ok": True}
        assert post(target.url, "alice", "/send", {"id": "r1", "room": "lobby", "seq": 1}).json() == {"ok": True}
        refused = post(target.url, "alice", "/send", {"id": "r2", "room": "lobby", "seq": 2})
        assert refused.status_code == 507 and refused.json()["ok"] is False
        assert [m["id"] for m in read(target.url, "bob", 5, timeout=1.5)] == ["r1"]  # all or nothing


def test_a_join_between_the_fan_out_and_the_reply_gets_the_message(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        store = redis.Redis.from_url(server.url, decode_responses=True)
        join, fan_out, late = (store.register_script(s) for s in (ROOM_JOIN, ROOM_FAN_OUT, ROOM_LATECOMERS))
        keys = ["members:{r}", "joined:{r}", "joins:{r}"]
        assert join(keys=keys, args=["bob"]) == 1
        fields = ["id", "m1", "from", "alice", "seq", "1", "room", "r"]
        seen, full = fan_out(keys=[keys[0], keys[2]], args=["alice", 100, *fields])
        assert (seen, full) == (1, "")
        assert join(keys=keys, args=["carol"]) == 1  # runs while the send is in flight
        assert join(keys=keys, args=["bob"]) == 0
        assert late(keys=[keys[1]], args=[seen, "alice", *fields]) == 1  # carol only: bob has it
        assert store.xlen("inbox:bob") == 1 and store.xlen("inbox:carol") == 1 and store.xlen("inbox:alice") == 0
        assert join(keys=keys, args=["dave"]) == 1  # after the reply: nothing from before
        assert store.xlen("inbox:dave") == 0
        store.close()
    finally:
        server.stop()
