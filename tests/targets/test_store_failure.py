"""Only a store command that never reached the store is a refusal; a lost reply is an unknown outcome."""

from __future__ import annotations

import redis.exceptions

from targets.common import store_failure


def test_never_reached_the_store_is_a_refusal() -> None:
    for text in ("Error 111 connecting to 127.0.0.1:6379. Connection refused.", "No connection available.",
                 "Too many connections"):
        assert store_failure(redis.exceptions.ConnectionError(text))[0] is False, text


def test_a_reply_lost_after_the_write_is_unknown() -> None:
    # found by harness explore: XADD persisted, Redis SIGKILLed before replying, the sender told "not stored"
    for exc in (redis.exceptions.ConnectionError("Connection closed by server."),
                redis.exceptions.TimeoutError("Timeout reading from socket"),
                redis.exceptions.ConnectionError("Error while reading from 127.0.0.1:6379 : (104, 'reset')")):
        ok, error = store_failure(exc)
        assert ok is None and "outcome unknown" in error
