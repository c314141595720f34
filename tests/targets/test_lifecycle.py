"""Every target's start and stop contract with the harness.

- The token secret comes only from ``HARNESS_TARGET_SECRET``: missing or empty, the target exits at once
  with status 1 and a one-line message naming the variable (no traceback, never the secret).
- SIGTERM with a client connected: the target closes its connections and exits with status 0 within
  ``EXIT_BUDGET_S``. The test allows ``TEST_ALLOWANCE_S`` (a busy 2-core machine shares its CPU with
  other test runs) and prints the measured figure.
- A Socket.IO client sees that close as a dropped transport, so it reconnects (a Socket.IO DISCONNECT
  or Engine.IO CLOSE packet would tell it not to).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import socketio

from harness.run.process import free_port
from targets.auth import sign
from tests.targets.helpers import COMMANDS, NEEDS_REDIS, SECRET, SECRET_ENV, Running, started

pytestmark = pytest.mark.integration

EXIT_BUDGET_S = 1.0
TEST_ALLOWANCE_S = 3.0
SOCKETIO = ["naive", "ackmap", "memory-resume", "redis-store", "node-socketio-csr"]
HTTP = ["sse", "polling"]


@pytest.mark.parametrize("secret", [None, ""], ids=["unset", "empty"])
@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_missing_secret_is_a_clear_error(name: str, secret: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    if secret is not None:
        env[SECRET_ENV] = secret
    argv = [*COMMANDS[name], "--port", "1", *(["--redis-url", "redis://127.0.0.1:1/0"] if name in NEEDS_REDIS else [])]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 1, done.stderr
    assert SECRET_ENV in done.stderr and "not set or empty" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_secret_is_not_taken_from_the_command_line(tmp_path: Path) -> None:
    argv = [*COMMANDS["naive"], "--port", "1", "--secret", SECRET]
    env = {**os.environ, SECRET_ENV: SECRET}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and "unrecognized arguments: --secret" in done.stderr


def terminate(target: Running) -> tuple[float, int]:
    """SIGTERM, then (seconds until the process exited, its exit status)."""
    popen = target.proc.popen
    assert popen is not None and popen.poll() is None
    sent = time.monotonic()
    popen.send_signal(signal.SIGTERM)
    try:
        status = popen.wait(TEST_ALLOWANCE_S + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target.name} still running {TEST_ALLOWANCE_S + 5:.0f} s after SIGTERM; its log ends:\n"
                    f"{target.log()[-6000:]}")
    return time.monotonic() - sent, status


def check_exit(name: str, took: float, status: int, log: str = "") -> None:
    print(f"\n{name}: exited {took * 1000:.0f} ms after SIGTERM, status {status}")
    assert status == 0, f"{name} exited with status {status}; its log ends:\n{log[-6000:]}"
    assert took < TEST_ALLOWANCE_S, f"{name} took {took:.2f} s to exit (budget {EXIT_BUDGET_S} s)"


@pytest.mark.parametrize("name", SOCKETIO)
async def test_sigterm_closes_socketio_clients_and_exits_promptly(name: str, tmp_path: Path) -> None:
    with started(name, tmp_path) as target:
        reasons: list[str] = []
        client = socketio.AsyncClient(reconnection=False)
        client.on("disconnect", lambda *reason: reasons.append(str(reason[0]) if reason else "?"))
        await client.connect(target.url, auth={"token": sign("alice", SECRET)}, transports=["websocket"],
                             wait_timeout=5)
        took, status = await asyncio.get_running_loop().run_in_executor(None, terminate, target)
        await client.wait() if client.connected else None
        log = target.log()
    check_exit(name, took, status, log)
    assert reasons and reasons[0] != client.reason.SERVER_DISCONNECT, (reasons, log[-2000:])


@pytest.mark.parametrize("name", HTTP)
def test_sigterm_ends_open_http_requests_and_exits_promptly(name: str, tmp_path: Path) -> None:
    with started(name, tmp_path) as target:
        headers = {"Authorization": f"Bearer {sign('alice', SECRET)}"}
        path = "/events" if name == "sse" else "/poll"
        opened = threading.Event()

        def hold_open() -> None:  # an SSE stream, or long polls one after another
            try:
                with httpx.Client(base_url=target.url, timeout=10, headers=headers) as http:
                    while True:
                        with http.stream("GET", path) as response:
                            opened.set()
                            for _ in response.iter_bytes():
                                pass
            except httpx.HTTPError:
                return

        reader = threading.Thread(target=hold_open, daemon=True)
        reader.start()
        assert opened.wait(5)
        time.sleep(0.2)
        took, status = terminate(target)
        reader.join(5)
        assert not reader.is_alive()
    check_exit(name, took, status)


STUCK_TARGET = """
import asyncio
from targets.common import make_server, parse_args, serve

async def never_done() -> None:
    await asyncio.Event().wait()  # a shutdown step that never finishes

args = parse_args("stuck")
serve(make_server(args), args, before_exit=never_done)
"""


def test_a_stop_that_hangs_says_where_and_exits_with_status_1(tmp_path: Path) -> None:
    """A graceful stop stuck past SHUTDOWN_DEADLINE_S prints the pending tasks and every thread, then exits 1:
    a target never hangs until SIGKILL, and the log says what it waited for."""
    from targets.common import SHUTDOWN_DEADLINE_S

    script = tmp_path / "stuck.py"
    script.write_text(STUCK_TARGET)
    env = {**os.environ, SECRET_ENV: SECRET, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("the stuck target never answered /healthz")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=SHUTDOWN_DEADLINE_S + 20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert took >= SHUTDOWN_DEADLINE_S - 0.5
    assert f"shutdown stuck {SHUTDOWN_DEADLINE_S:g} s after SIGTERM; pending tasks:" in err
    assert "never_done" in err  # the stuck task's stack
    assert "Current thread" in err or "Thread 0x" in err  # every thread's stack (faulthandler)
