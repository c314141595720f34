"""Identity from a signed token given at connect; never from the socket id or from event fields.

Token format: ``<user_id>.<hex HMAC-SHA256(secret, user_id)>``. The harness mints tokens with the same
secret it passes to the target in the environment variable ``HARNESS_TARGET_SECRET`` (never on the command
line: argv is world-readable through ``ps`` and ``/proc/PID/cmdline``, and the harness logs it).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any

__all__ = ["sign", "verify", "secret_from_env", "SECRET_ENV"]

SECRET_ENV = "HARNESS_TARGET_SECRET"
"""The environment variable that carries the token secret to a target."""


def secret_from_env() -> str:
    """The token secret from ``HARNESS_TARGET_SECRET``; exits with a one-line message (no traceback) if unset or empty.

    The secret itself is never printed or logged.
    """
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise SystemExit(f"error: the environment variable {SECRET_ENV} (the token secret) is not set or empty")
    return secret


def sign(user_id: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{digest}"


def verify(auth: Any, secret: str) -> str | None:
    """The user id if ``auth`` is ``{"token": <valid token>}``, else None."""
    if not isinstance(auth, dict) or not isinstance(auth.get("token"), str):
        return None
    token: str = auth["token"]
    user_id, _, _digest = token.rpartition(".")
    if not user_id or not hmac.compare_digest(sign(user_id, secret), token):
        return None
    return user_id
