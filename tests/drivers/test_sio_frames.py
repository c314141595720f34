"""Socket.IO packet text as the lean driver reads and writes it."""

from __future__ import annotations

from typing import Any

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


def _frame(opcode: int, data: bytes, fin: bool = True, mask: bytes | None = None) -> bytes:
    n = len(data)
    bit = 0x80 if mask else 0
    length = bytes([bit | n]) if n < 126 else bytes([bit | 126]) + n.to_bytes(2, "big") if n < 65536 else \
        bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        length += mask
    return bytes([(0x80 if fin else 0) | opcode]) + length + data


def _reading_ahead(sock: Any) -> Any:
    """A websocket-client socket over one end of a socket pair, reading ahead as the drivers' do."""
    import websocket

    from harness.drivers.sio_frames import read_ahead

    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = sock, True
    ws.settimeout(10)
    read_ahead(ws)
    return ws


def test_frame_reader_returns_what_websocket_client_returns() -> None:
    """Text frames of every length class, a ping (answered by websocket-client), a binary frame, a fragmented
    text message and a masked frame, in segments cut at awkward places."""
    import random
    import socket
    import threading

    from harness.drivers.sio_frames import FrameReader

    texts = ["42" + "é" * n for n in (0, 1, 61, 62, 100, 40_000)] + ["3", "x" * 70_000]
    wire = b"".join(_frame(1, t.encode()) for t in texts[:3])
    wire += _frame(9, b"ping!") + _frame(2, b"\x00\x01binary")
    wire += _frame(1, b"frag", fin=False) + _frame(0, b"mented")
    wire += _frame(1, b"masked", mask=b"\x01\x02\x03\x04")
    wire += b"".join(_frame(1, t.encode()) for t in texts[3:])
    expected = texts[:3] + [b"\x00\x01binary", "fragmented", "masked"] + texts[3:]
    ours, theirs = socket.socketpair()
    try:
        ws = _reading_ahead(ours)
        reader = FrameReader(ws)
        rng = random.Random(7)

        def feed() -> None:
            at = 0
            while at < len(wire):
                step = rng.choice([1, 2, 3, 5, 150, 4096, 20_000])
                theirs.sendall(wire[at:at + step])
                at += step

        feeder = threading.Thread(target=feed)
        feeder.start()
        got = [reader.recv() for _ in expected]
        feeder.join(timeout=10)
        assert got == expected
        theirs.settimeout(10)
        assert theirs.recv(64)[:1] == b"\x8a"  # websocket-client answered the ping with a pong
    finally:
        ours.close()
        theirs.close()


def test_frame_reader_raises_websocket_clients_errors() -> None:
    import socket

    import pytest
    import websocket

    from harness.drivers.sio_frames import FrameReader

    ours, theirs = socket.socketpair()
    ws = websocket.WebSocket(skip_utf8_validation=True)
    ws.sock, ws.connected = ours, True
    ws.settimeout(0.2)
    reader = FrameReader(ws)
    theirs.sendall(_frame(1, b"42[1]")[:3])  # a frame cut short, then silence
    with pytest.raises(websocket.WebSocketTimeoutException):
        reader.recv()
    theirs.sendall(_frame(1, b"42[1]")[3:])
    assert reader.recv() == "42[1]"  # nothing read before the timeout was lost
    theirs.close()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        reader.recv()
    assert not ws.connected


def test_frame_writer_frames_are_read_back_as_sent() -> None:
    import socket

    import websocket
    from websocket import ABNF

    from harness.drivers.sio_frames import FrameWriter

    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    try:
        ws = websocket.WebSocket()
        ws.sock, ws.connected = ours, True
        ws.settimeout(10)
        writer = FrameWriter(ws)
        texts = ["42" + "é" * n for n in (0, 61, 62, 40_000)] + ["y" * 70_000]
        for text in texts:
            writer.send(text)
        writer.send(b"\x00bin", ABNF.OPCODE_BINARY)  # websocket-client's own path
        server = websocket.WebSocket(skip_utf8_validation=True)  # reads masked frames as a server would
        server.sock, server.connected = theirs, True
        server.settimeout(10)
        frames = [server.recv_frame() for _ in range(len(texts) + 1)]
        assert [f.data.decode() for f in frames[:-1]] == texts
        assert all(f.mask_value and f.fin and f.opcode == ABNF.OPCODE_TEXT for f in frames[:-1])
        assert frames[-1].opcode == ABNF.OPCODE_BINARY and frames[-1].data == b"\x00bin"
    finally:
        ours.close()
        theirs.close()


def test_frame_reader_takes_over_what_websocket_clients_own_recv_read_ahead() -> None:
    import socket

    from harness.drivers.sio_frames import FrameReader

    ours, theirs = socket.socketpair()
    try:
        ws = _reading_ahead(ours)
        reader = FrameReader(ws)
        texts = [f'42["msg",{{"n":{n},"pad":"{"x" * 150}"}}]' for n in range(20)]
        theirs.sendall(b"".join(_frame(1, t.encode()) for t in texts))
        assert ws.recv() == texts[0]  # websocket-client itself, reading ahead into its frame buffer
        assert [reader.recv() for _ in texts[1:]] == texts[1:]
    finally:
        ours.close()
        theirs.close()


def test_a_drained_gevent_socket_is_waited_on_before_it_is_read_and_times_out_as_websocket_client_does() -> None:
    import socket

    import gevent
    import pytest
    import websocket
    from gevent import socket as gsocket

    from harness.drivers.sio_frames import FrameReader

    calls: list[str] = []

    class Recording(gsocket.socket):  # type: ignore[misc]  # gevent's socket, recording its reads and waits
        def recv(self, *args: Any) -> Any:
            calls.append("recv")
            return super().recv(*args)

        def _wait(self, *args: Any, **kwargs: Any) -> Any:
            calls.append("wait")
            return super()._wait(*args, **kwargs)

    plain_ours, theirs = socket.socketpair()
    ours = Recording(fileno=plain_ours.detach())
    try:
        ws = _reading_ahead(ours)
        ws.settimeout(10)
        reader = FrameReader(ws)
        theirs.sendall(_frame(1, b"42first"))
        assert reader.recv() == "42first"
        assert reader._drained  # a short read: the next one waits first

        def later() -> None:
            gevent.sleep(0.05)
            theirs.sendall(_frame(1, b"42second"))

        calls.clear()
        sender = gevent.spawn(later)
        assert reader.recv() == "42second"
        sender.join()
        assert calls == ["wait", "recv"]  # gevent alone reads first, takes EAGAIN, then waits: recv, wait, recv
        ws.settimeout(0.2)
        with pytest.raises(websocket.WebSocketTimeoutException):
            reader.recv()
        ws.settimeout(10)
        theirs.sendall(_frame(1, b"42third"))  # the connection goes on after a timeout, as before
        assert reader.recv() == "42third"
        theirs.close()
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            reader.recv()
    finally:
        ours.close()
        theirs.close()


def test_a_tls_socket_is_never_waited_on_its_tls_layer_may_hold_bytes_the_wire_does_not_show() -> None:
    import time

    from gevent import socket as gsocket
    from gevent import ssl

    from harness.drivers.sio_frames import _wait_readable

    ours, theirs = gsocket.socketpair()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    tls = context.wrap_socket(ours, do_handshake_on_connect=False)  # gevent's SSLSocket, nothing on the wire
    try:
        tls.settimeout(3)
        began = time.monotonic()
        _wait_readable(tls)  # a wait on the empty wire would raise WebSocketTimeoutException after 3 s
        assert time.monotonic() - began < 2.5
    finally:
        tls.close()
        theirs.close()
