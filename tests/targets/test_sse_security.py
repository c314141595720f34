"""The SSE target against hostile and malformed clients over real HTTP (same rules as the Socket.IO ones)."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import httpx_sse
import pytest

from targets.auth import sign
from tests.targets.helpers import SECRET, Running, started

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("test_sse_security")]  # one module fixture, one worker


@pytest.fixture(scope="module")
def sse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with started("sse", tmp_path_factory.mktemp("sse"), "--ping-interval", "1") as target:
        yield target
        alive = target.proc.alive()
        log = target.log()
    assert alive, "the target crashed:\n" + log[-3000:]


@pytest.fixture(scope="module")
def url(sse: Running) -> str:
    return sse.url


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
    assert big.status_code == 413 and "over 65536" in big.json()["error"]
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


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def raw_post(url: str, headers: dict[str, str], body_chunks: list[bytes], wait_s: float = 3) -> bytes:
    """POST /send over a bare socket: headers, then ``body_chunks`` (the body is never finished); the reply."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /send HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
        for chunk in body_chunks:
            sock.sendall(chunk)
        reply = b""
        try:
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
        except TimeoutError:
            pass
        return reply


def test_an_announced_oversized_body_is_refused_before_it_is_read(sse: Running) -> None:
    # 300 MB announced, none sent: the 413 comes at once (the server does not wait for, or read, the body)
    headers = auth("alice") | {"Content-Type": "application/json", "Content-Length": str(300_000_000)}
    started_at = time.monotonic()
    reply = raw_post(sse.url, headers, [b'{"id": "m", "to": "bob", "body": "'])
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"300000000 bytes over 65536" in reply
    assert time.monotonic() - started_at < 2.5


def test_an_unannounced_body_is_read_only_up_to_the_limit(sse: Running) -> None:
    # chunked, no length: the server stops at the limit and answers 413 although the body never ends
    headers = auth("alice") | {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    chunk = b"x" * 16_384
    before = rss_kib(sse.proc.pid or 0)
    reply = raw_post(sse.url, headers, [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 6)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"body over 65536 bytes" in reply
    grown = rss_kib(sse.proc.pid or 0) - before
    print(f"sse target RSS change after a refused unbounded body: {grown} KiB")
    assert grown < 8 * 1024
    assert send(sse.url, "carol", "dave", 1).json() == {"ok": True}  # and it still serves
