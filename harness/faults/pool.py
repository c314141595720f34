"""Several embedded proxy processes behind one client, so one run holds more links than one process can.

One link is two open files (the client's socket and the upstream one), and a process may hold at most
``RLIMIT_NOFILE`` of them (20,000 here, not raisable): about 9,990 links per proxy process. A run that
needs more spreads its listeners over several processes, **whole cohorts at a time** (``plan_members``),
so every listener and all of its toxics live in exactly one process and a fault on a cohort means what it
means with one process. ``ProxyPool`` is a ``ToxiproxyClient`` that sends each call about a proxy to the
process holding it, so the stack, the fault timeline and the byte counts do not know there are several.

::

    controller / timeline ──► ProxyPool ──► member 0: harness proxy (API 127.0.0.1:a)  listeners of u1, u3
                              (by name)  └► member 1: harness proxy (API 127.0.0.1:b)  listeners of u2
"""

from __future__ import annotations

import resource
from collections.abc import Mapping, Sequence
from typing import Any

from harness.faults.client import ProxyInfo, ToxiproxyClient

__all__ = ["FILES_PER_LINK", "RESERVED_FILES", "HEADROOM", "link_budget", "plan_members", "ProxyPool"]

FILES_PER_LINK = 2
"""A link holds the accepted client socket and its upstream socket."""

RESERVED_FILES = 100
"""Open files a proxy process needs besides its links: the API server, listeners, logs, the interpreter."""

HEADROOM = 0.75
"""Share of a process's link capacity a plan fills: a cohort that reconnects while its old links are still
open (a blackhole holds them until it heals) briefly needs more than one link per user."""


def link_budget(open_files: int | None = None) -> int:
    """Links one proxy process is planned to hold: its open-file limit (a child inherits the soft limit of
    this process, default) less what it needs otherwise, halved, times ``HEADROOM``."""
    limit = open_files if open_files is not None else resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    return max(1, int((limit - RESERVED_FILES) // FILES_PER_LINK * HEADROOM))


def plan_members(links: Mapping[str, int], budget: int) -> dict[str, int]:
    """Cohort → proxy process index: as few processes as hold every cohort within ``budget`` links each.

    First fit, largest cohort first (ties in the given order); a cohort above the budget gets a process of
    its own (it cannot be split: its listener lives in one process). Everything fits in process 0 when the
    total does, so a small run has one proxy process, as before."""
    loads: list[int] = []
    placed: dict[str, int] = {}
    for cohort in sorted(links, key=lambda name: -links[name]):
        size = links[cohort]
        member = next((i for i, load in enumerate(loads) if load + size <= budget), len(loads))
        if member == len(loads):
            loads.append(0)
        loads[member] += size
        placed[cohort] = member
    return {cohort: placed[cohort] for cohort in links}


class ProxyPool(ToxiproxyClient):
    """The members' APIs as one: a proxy is created on the member the caller names and every later call
    about it goes there; ``proxies()`` merges, ``reset()`` resets all. Member 0 answers ``version()``."""

    def __init__(self, members: Sequence[ToxiproxyClient]) -> None:
        if not members:
            raise ValueError("a proxy pool needs at least one member")
        super().__init__(members[0].url)
        self.members = list(members)
        self._home: dict[str, int] = {}

    @property
    def urls(self) -> list[str]:
        return [member.url for member in self.members]

    def _at(self, proxy: str) -> ToxiproxyClient:
        return self.members[self._home.get(proxy, 0)]

    def close(self) -> None:
        super().close()
        for member in self.members:
            member.close()

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True,
                     member: int = 0) -> ProxyInfo:
        info = self.members[member].create_proxy(name, upstream, listen, enabled)
        self._home[name] = member
        return info

    def proxies(self) -> dict[str, ProxyInfo]:
        merged: dict[str, ProxyInfo] = {}
        for member in self.members:
            merged.update(member.proxies())
        return merged

    def get_proxy(self, name: str) -> ProxyInfo:
        return self._at(name).get_proxy(name)

    def update_proxy(self, name: str, **fields: Any) -> ProxyInfo:
        return self._at(name).update_proxy(name, **fields)

    def delete_proxy(self, name: str) -> None:
        self._at(name).delete_proxy(name)
        self._home.pop(name, None)

    def byte_counts(self, proxy: str) -> dict[str, tuple[int, int]] | None:
        return self._at(proxy).byte_counts(proxy)

    def add_toxic(self, proxy: str, type: str, *, stream: str = "downstream", name: str | None = None,
                  toxicity: float = 1.0, attributes: dict[str, int] | None = None) -> dict[str, Any]:
        return self._at(proxy).add_toxic(proxy, type, stream=stream, name=name, toxicity=toxicity,
                                         attributes=attributes)

    def update_toxic(self, proxy: str, name: str, *, attributes: dict[str, int] | None = None,
                     toxicity: float | None = None) -> dict[str, Any]:
        return self._at(proxy).update_toxic(proxy, name, attributes=attributes, toxicity=toxicity)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._at(proxy).remove_toxic(proxy, name)

    def reset(self) -> None:
        for member in self.members:
            member.reset()
