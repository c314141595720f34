"""Socket.IO packet text as the lean driver reads and writes it."""

from __future__ import annotations

from harness.drivers.sio_frames import event, parse_packet


def test_event_ack_and_connect_packets_are_parsed() -> None:
    assert parse_packet('2["msg",{"id":"a","offset":"7"}]') == ("2", None, ["msg", {"id": "a", "offset": "7"}])
    assert parse_packet('212["msg",1]') == ("2", 12, ["msg", 1])
    assert parse_packet('37[{"ok":true}]') == ("3", 7, [{"ok": True}])
    assert parse_packet('0{"sid":"x"}') == ("0", None, {"sid": "x"})
    assert parse_packet("1") == ("1", None, None)
    assert parse_packet('4{"message":"invalid token"}') == ("4", None, {"message": "invalid token"})


def test_a_namespace_prefix_is_skipped() -> None:
    assert parse_packet('2/chat,5["msg",2]') == ("2", 5, ["msg", 2])


def test_events_are_encoded_with_and_without_ack_ids() -> None:
    assert event("send", {"id": "m", "seq": 1}, 3) == '423["send",{"id":"m","seq":1}]'
    assert event("ack", {"offset": "9"}) == '42["ack",{"offset":"9"}]'
    kind, ack, body = parse_packet(event("send", {"x": "é"}, 41)[1:])
    assert (kind, ack, body) == ("2", 41, ["send", {"x": "é"}])
