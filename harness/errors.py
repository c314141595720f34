"""Every error the harness raises on purpose.

    HarnessError                     root; the CLI maps it to exit code 2 unless stated
    ├── ScenarioError                a scenario file is malformed (names file, field, reason)
    ├── TargetStartError             a target process failed to start (carries its log tail)
    ├── ProxyError                   the fault proxy refused a request (carries HTTP status)
    └── LedgerError                  a ledger file cannot be read at all (usage: no such file; exit 2)
        └── LedgerDamaged            it exists but is unreadable (truncated parquet…): verdict unknown, exit 3

Control signals are not errors: the run controller stops itself by phase, never by raising.
"""

from __future__ import annotations

__all__ = ["HarnessError", "ScenarioError", "TargetStartError", "ProxyError", "LedgerError", "LedgerDamaged"]


class HarnessError(Exception):
    """Root of every error the harness raises deliberately."""


class ScenarioError(HarnessError):
    """A scenario file is malformed; the message names the file, the field and the reason."""

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path = path
        self.field = field
        self.reason = reason
        super().__init__(f"{path}: field '{field}': {reason}")


class TargetStartError(HarnessError):
    """A target did not become healthy; `log_tail` holds the last lines it printed."""

    def __init__(self, name: str, reason: str, log_tail: str = "") -> None:
        self.name = name
        self.reason = reason
        self.log_tail = log_tail
        text = f"target '{name}' failed to start: {reason}"
        if log_tail:
            text += "\n--- last lines of its log ---\n" + log_tail
        super().__init__(text)


class ProxyError(HarnessError):
    """The fault proxy answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"fault proxy error {status}: {message}")


class LedgerError(HarnessError):
    """A ledger cannot be read at all (missing file, unknown format)."""


class LedgerDamaged(LedgerError):
    """A ledger file exists but cannot be read at all: the run cannot be judged (exit 3, never 1)."""
