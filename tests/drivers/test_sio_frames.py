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


def test_read_ahead_reads_frames_that_arrived_together_in_one_call() -> None:
    import socket

    import websocket

    from harness.drivers.sio_frames import READ_AHEAD, read_ahead

    ours, theirs = socket.socketpair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # all frames fit before anyone reads
    try:
        ws = websocket.WebSocket(skip_utf8_validation=True)
        ws.sock, ws.connected = ours, True
        ws.settimeout(10)
        asked: list[int] = []
        plain = ws.frame_buffer.recv
        ws.frame_buffer.recv = lambda n: (asked.append(n), plain(n))[1]
        read_ahead(ws)
        texts = ["42" + "x" * n for n in (1, 124, 126, 300, 70_000)]  # 7-bit, 16-bit and 64-bit lengths
        frames = b""
        for text in texts:
            data = text.encode()
            n = len(data)
            length = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big") if n < 65536 else \
                bytes([127]) + n.to_bytes(8, "big")
            frames += b"\x81" + length + data
        theirs.sendall(frames[:3])  # a frame split across segments, then the rest in one go
        theirs.sendall(frames[3:])
        assert [ws.recv() for _ in texts] == texts
        assert all(n >= READ_AHEAD for n in asked)
        assert len(asked) < 2 * len(texts)  # websocket-client alone asks twice per frame
    finally:
        ours.close()
        theirs.close()
