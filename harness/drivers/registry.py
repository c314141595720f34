"""Client drivers by name: a driver is a Locust User class speaking one protocol (see docs/custom-target.md).

Names map to "module:Class" strings, imported only inside the Locust process (never in pytest, where
importing Locust breaks collection).
"""

from __future__ import annotations

import importlib

__all__ = ["BUILTIN_DRIVERS", "driver_path", "load_driver"]

BUILTIN_DRIVERS: dict[str, str] = {
    "socketio": "harness.drivers.socketio:SocketIOUser",
    "sse": "harness.drivers.sse:SSEUser",
    "socketio-csr": "harness.drivers.socketio_csr:SocketIOCSRUser",
    "socketio-lean": "harness.drivers.socketio_lean:SocketIOLeanUser",
}


def driver_path(name: str) -> str:
    """ "module:Class" for a built-in driver name, or the name itself when it already is one."""
    if name in BUILTIN_DRIVERS:
        return BUILTIN_DRIVERS[name]
    if ":" not in name:
        raise ValueError(f"unknown driver '{name}'; built in: {', '.join(sorted(BUILTIN_DRIVERS))}, "
                         "or give 'package.module:UserClass'")
    return name


def load_driver(name: str) -> type:
    """Import a driver's User class (Locust process only)."""
    module_name, _, class_name = driver_path(name).partition(":")
    module = importlib.import_module(module_name)
    cls: type = getattr(module, class_name)
    return cls
