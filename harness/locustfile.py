"""Locustfile: ``locust -f harness/locustfile.py --scenario scenarios/heartbeat-timeout.toml --target ackmap``.

Defines one User class per built-in driver; at init the harness keeps only the target's driver.
"""

from harness.drivers.socketio import SocketIOUser as _SocketIO
from harness.drivers.socketio_csr import SocketIOCSRUser as _SocketIOCSR
from harness.drivers.sse import SSEUser as _SSE
from harness.locust_ext import plugin as _plugin  # noqa: F401  (registers the delivery listeners and flags)


class SocketIOUser(_SocketIO):
    """The scenario's users over Socket.IO."""


class SocketIOCSRUser(_SocketIOCSR):
    """The scenario's users against a socket.io server with connection state recovery."""


class SSEUser(_SSE):
    """The scenario's users over SSE (receive) + HTTP POST (send)."""
