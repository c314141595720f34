"""Child processes: private logs, the token secret only where it is given, and no child outliving its parent."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.run.process import SECRET_ENV, ManagedProcess
from harness.run.targets import builtin_targets


def test_no_builtin_target_command_carries_a_secret() -> None:
    for spec in builtin_targets().values():
        argv = spec.argv(1234, 1.0, 1.0, "redis://127.0.0.1:1/0") if spec.command else []
        assert not [part for part in argv if "secret" in part.lower()], (spec.name, argv)


def test_logs_are_private_and_only_a_child_given_the_secret_sees_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, "inherited-secret")
    log = tmp_path / "child.log"
    log.write_text("")
    log.chmod(0o644)  # a log left by an older run is made private too
    show = [sys.executable, "-c", f"import os; print('env=' + os.environ.get('{SECRET_ENV}', '-'))"]
    plain = ManagedProcess("plain", show, log)
    plain.start()
    assert plain.popen is not None and plain.popen.wait(10) == 0
    given = ManagedProcess("target", show, log, env={SECRET_ENV: "given-secret"})
    given.start()
    assert given.popen is not None and given.popen.wait(10) == 0
    text = log.read_text()
    assert "env=-" in text and "env=given-secret" in text and "inherited-secret" not in text
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_child_dies_with_its_sigkilled_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(f"""
        import pathlib, time
        from harness.run.process import ManagedProcess
        child = ManagedProcess("sleeper", ["sleep", "60"], pathlib.Path({str(tmp_path / 'sleeper.log')!r}))
        child.start()
        pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    child = 0
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)  # no cleanup code runs in the parent
        parent.wait(10)
        began = time.monotonic()
        while time.monotonic() - began < 5 and _alive(child):
            time.sleep(0.02)
        print(f"child gone {time.monotonic() - began:.3f} s after its parent's SIGKILL")
        assert not _alive(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child and _alive(child):  # the sleeper this test started, by PID
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its new parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
