"""The run's own redis-server: a real process, killed and restarted, with and without persistence."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.run.store import RedisServer


def _command(port: int, *parts: str) -> bytes:
    payload = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(payload.encode())
        return sock.recv(256)


@pytest.mark.parametrize(("persistence", "survives"), [("none", False), ("always", True)])
def test_data_survives_a_kill_only_with_persistence(tmp_path: Path, persistence: str, survives: bool) -> None:
    server = RedisServer(tmp_path, persistence)
    server.start()
    try:
        assert _command(server.port, "SET", "k", "v") == b"+OK\r\n"
        pid = server.process.pid if server.process else None
        server.kill()
        assert server.process is not None and not server.process.alive()
        server.start()
        assert server.process.pid != pid
        assert _command(server.port, "GET", "k") == (b"$1\r\nv\r\n" if survives else b"$-1\r\n")
    finally:
        server.stop()
    assert not server.process.alive()
