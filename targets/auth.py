"""Identity from a signed token given at connect; never from the socket id or from event fields.

Token format: ``<user_id>.<hex HMAC-SHA256(secret, user_id)>``. The harness mints tokens with the same
secret it passes to the target on its command line.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

__all__ = ["sign", "verify"]


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
