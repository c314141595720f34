"""A late replay of an older connection never routes a user back to a dead socket (targets.routing)."""

from __future__ import annotations

from typing import Any

from targets.routing import Routes


class _Manager:
    def __init__(self, connected: set[str]) -> None:
        self.connected = connected

    def is_connected(self, sid: str, namespace: str) -> bool:
        return sid in self.connected


class _Server:
    def __init__(self, *connected: str) -> None:
        self.manager = _Manager(set(connected))


def test_the_newest_connection_wins_even_if_an_older_replay_ends_last() -> None:
    server: Any = _Server("s1", "s2")
    routes = Routes()
    routes.connecting("bob", "s1")
    routes.connecting("bob", "s2")  # bob came back on a new socket while s1's replay was still running
    assert routes.route(server, "bob", "s2") is True
    server.manager.connected.discard("s1")
    assert routes.route(server, "bob", "s1") is False  # s1's replay ends last: it must not take bob back
    assert routes.sid_of_user == {"bob": "s2"}


def test_a_connection_gone_before_its_replay_ended_is_not_routed() -> None:
    server: Any = _Server()
    routes = Routes()
    routes.connecting("bob", "s1")
    assert routes.route(server, "bob", "s1") is False and routes.sid_of_user == {}
