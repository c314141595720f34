"""The base driver sends a user's join/leave requests for one room one at a time, in the order asked.

Two requests on the same room in flight at once would leave their order at the server unknown and share one
answer slot (a ``leave`` answered while a ``join`` waits would settle the wrong one). The driver imports Locust,
so the check runs in a child process (Locust must never be imported inside pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    import json, types
    from harness.drivers.base import DeliveryUser

    rows, sent = [], []

    class Writer:
        def append(self, **row):
            rows.append({k: row.get(k) for k in ("type", "f", "room", "error")})

    class Probe(DeliveryUser):
        abstract = True
        def transmit_membership(self, action, room):
            sent.append((action, room))

    user = object.__new__(Probe)
    user.ctx = types.SimpleNamespace(writer=Writer(),
                                     scenario=types.SimpleNamespace(load=types.SimpleNamespace(ack_timeout_s=60.0)))
    user.slot = types.SimpleNamespace(user_id="u1")
    user.epoch, user.rooms = 1, {"r"}
    user.membership_pending, user.membership_queued = {}, {}

    user.ask_membership("leave", "r")
    user.ask_membership("join", "r")      # waits: the leave is in flight
    user.ask_membership("join", "other")  # another room: not held back
    after_asks = list(sent)
    user.membership_replied("join", "r", {"ok": True})   # not the request in flight on r: ignored
    ignored = list(sent)
    user.membership_replied("leave", "r", {"ok": True})  # answers the leave, then sends the join
    user.membership_replied("join", "r", {"ok": True})
    print(json.dumps({"after_asks": after_asks, "ignored": ignored, "sent": sent, "rows": rows,
                      "rooms": sorted(user.rooms), "pending": sorted(user.membership_pending)}))
''')


def test_requests_on_one_room_go_one_at_a_time_in_order() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["after_asks"] == [["leave", "r"], ["join", "other"]]
    assert result["ignored"] == result["after_asks"]
    assert result["sent"] == [["leave", "r"], ["join", "other"], ["join", "r"]]
    assert [(r["type"], r["f"], r["room"]) for r in result["rows"]] == [
        ("invoke", "leave", "r"), ("invoke", "join", "other"), ("ok", "leave", "r"), ("invoke", "join", "r"),
        ("ok", "join", "r")]
    assert result["rooms"] == ["other", "r"]
    assert result["pending"] == ["other"]
