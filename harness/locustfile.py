"""Locustfile: ``locust -f harness/locustfile.py --scenario scenarios/heartbeat-timeout.toml --target ackmap``."""

from harness import locust_plugin  # noqa: F401  (registers the delivery listeners and flags)
from harness.drivers.socketio import SocketIODeliveryUser


class SocketIOUser(SocketIODeliveryUser):
    """The scenario's users over Socket.IO."""
