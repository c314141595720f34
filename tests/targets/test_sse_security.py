"""The SSE target against hostile and malformed clients over real HTTP (same rules as the Socket.IO ones)."""

from __future__ import annotations

import json
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx_sse
import pytest

from harness.run.process import ManagedProcess, free_port, http_ok
from harness.run.store import RedisServer
from targets.auth import sign

pytestmark = pytest.mark.integration

SECRET = secrets.token_hex(8)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("sse")
    store = RedisServer(folder)
    store.start()
    port = free_port()
    proc = ManagedProcess("sse", [sys.executable, "-m", "targets.sse_app", "--port", str(port), "--secret", SECRET,
                                  "--ping-interval", "1", "--redis-url", store.url], folder / "target.log")
    proc.start()
    proc.wait_ready(http_ok(f"http://127.0.0.1:{port}/healthz"), 20)
    yield f"http://127.0.0.1:{port}"
    alive = proc.alive()
    proc.stop()
    store.stop()
    assert alive, "the target crashed:\n" + Path(folder / "target.log").read_text()[-3000:]


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign(user, SECRET)}"}


def read_events(url: str, user: str, count: int, last_id: str | None = None, timeout: float = 4) -> list[Any]:
    """Read up to ``count`` msg events from the user's stream (or until ``timeout``)."""
    events: list[Any] = []
    headers = auth(user) | ({"Last-Event-ID": last_id} if last_id else {})

    def run() -> None:
        try:
            with httpx.Client(base_url=url, timeout=httpx.Timeout(5, read=timeout)) as client, \
                    httpx_sse.connect_sse(client, "GET", "/events", headers=headers) as source:
                for event in source.iter_sse():
                    if event.event == "msg":
                        events.append(json.loads(event.data) | {"event_id": event.id})
                        if len(events) >= count:
                            return
        except httpx.HTTPError:
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return events


def send(url: str, sender: str, to: str, seq: int, **extra: Any) -> httpx.Response:
    body = {"id": f"{sender}>{to}#{seq}", "to": to, "seq": seq, **extra}
    return httpx.post(f"{url}/send", json=body, headers=auth(sender), timeout=5)


def test_tokens_are_checked_everywhere(url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer alice"}, {"Authorization": f"Bearer {sign('alice', 'nope')}"}):
        assert httpx.get(f"{url}/events", headers=headers, timeout=5).status_code == 401
        assert httpx.post(f"{url}/send", json={}, headers=headers, timeout=5).status_code == 401
        assert httpx.post(f"{url}/ack", json={}, headers=headers, timeout=5).status_code == 401


def test_messages_arrive_in_order_and_only_to_their_recipient(url: str) -> None:
    tag = secrets.token_hex(3)
    alice, bob, carol = f"alice-{tag}", f"bob-{tag}", f"carol-{tag}"
    for seq in (1, 2, 3):
        assert send(url, alice, bob, seq, **{"from": "mallory"}).json() == {"ok": True}
    got = read_events(url, bob, 3)
    assert [(m["seq"], m["from"]) for m in got] == [(1, alice), (2, alice), (3, alice)]
    assert read_events(url, carol, 1, timeout=1.5) == []


@pytest.mark.parametrize("body", ['"text"', "42", "null", "[]", "{", '{"to": "x", "seq": 1}',
                                  '{"id": "m", "to": "x", "seq": "1"}', '{"id": "m", "to": "x", "seq": 1, "body": 5}'])
def test_malformed_sends_get_a_400_with_the_reason(url: str, body: str) -> None:
    response = httpx.post(f"{url}/send", content=body, headers=auth("alice"), timeout=5)
    assert response.status_code == 400
    assert response.json()["ok"] is False and response.json()["error"]


def test_an_oversized_body_is_refused_and_others_still_flow(url: str) -> None:
    tag = secrets.token_hex(3)
    big = send(url, f"alice-{tag}", f"bob-{tag}", 1, body="x" * 200_000)
    assert big.status_code == 400 and "body over" in big.json()["error"]
    assert send(url, f"carol-{tag}", f"bob-{tag}", 2).json() == {"ok": True}
    assert [m["seq"] for m in read_events(url, f"bob-{tag}", 1)] == [2]


def test_acks_and_cursors_cannot_touch_another_users_stream(url: str) -> None:
    tag = secrets.token_hex(3)
    alice, bob, carol = f"alice-{tag}", f"bob-{tag}", f"carol-{tag}"
    send(url, carol, bob, 1)
    send(url, carol, alice, 1)
    alice_msg = read_events(url, alice, 1)[0]
    # alice acks ids that exist in bob's stream (they share the clock-based id space): only hers are touched
    bob_id = read_events(url, bob, 1)[0]["event_id"]
    reply = httpx.post(f"{url}/ack", json={"offsets": [bob_id, alice_msg["event_id"]]}, headers=auth(alice),
                       timeout=5)
    assert reply.json() == {"ok": True}
    assert [m["seq"] for m in read_events(url, bob, 1)] == [1]  # still there for bob
    assert read_events(url, alice, 1, timeout=1.5) == []  # alice's own ack did trim hers
    # a Last-Event-ID only moves the caller's own cursor
    assert [m["from"] for m in read_events(url, bob, 1, last_id="0-1")] == [carol]
    for bad in ({"offsets": ["nope"]}, {"offsets": []}, {"offset": 5}, {"offsets": ["1-1"] * 1001}):
        assert httpx.post(f"{url}/ack", json=bad, headers=auth(alice), timeout=5).status_code == 400
