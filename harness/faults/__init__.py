"""Faults: the embedded Toxiproxy-compatible proxy, its toxics, its HTTP API, and the client for it.

- ``base``: the toxic plug-in interface (``Toxic``, ``Stub``, ``register``);
- ``toxics``: the built-in toxics (Toxiproxy's names and JSON fields);
- ``proxy``: listeners, links and the toxic chain per direction;
- ``api`` / ``server``: the Toxiproxy HTTP API and the standalone ``harness proxy`` process;
- ``client``: the harness's client for it (or for a real Toxiproxy at ``TOXIPROXY_URL``);
- ``pool``: several proxy processes behind one client (more links than one process may hold).

May import: ``harness.errors`` and the standard library, aiohttp, requests. Never the checker, the
drivers, the run machinery or Locust.
"""
