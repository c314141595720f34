"""Run the embedded Toxiproxy stand-in on its own (``harness proxy``)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path

from aiohttp import web

from harness.faults.api import ApiError, ProxyCollection, create_app

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def _serve(host: str, port: int, config: Path | None, ready_file: Path | None, seed: int | None,
                 metrics: bool) -> None:
    collection = ProxyCollection(seed, metrics)
    if config is not None:
        await _load(collection, config)
    app = create_app(collection)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()  # type: ignore[union-attr]
    url = f"http://{bound[0]}:{bound[1]}"
    print(f"fault proxy API listening on {url}", flush=True)
    if ready_file is not None:
        ready_file.write_text(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch = loop.create_task(_watch_parent(stop))
    await stop.wait()
    watch.cancel()
    for proxy in list(collection.proxies.values()):
        await proxy.stop()
    await runner.cleanup()


async def _load(collection: ProxyCollection, config: Path) -> None:
    """Create the proxies of a /populate-style file; a bad file ends the process with one line naming the
    file, the entry and the API's reason (not a traceback)."""
    try:
        specs = json.loads(config.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{config}: {exc}") from None
    if not isinstance(specs, list):
        raise SystemExit(f"{config}: expected a JSON array of proxies, as POST /populate takes")
    for number, spec in enumerate(specs, start=1):
        try:
            await collection.create(spec)
        except ApiError as exc:
            for proxy in collection.proxies.values():
                await proxy.stop()
            raise SystemExit(f"{config}: proxy {number}: {exc.message}") from None


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when the harness process that started us is gone (no orphan proxy after a crash)."""
    parent = os.environ.get("HARNESS_PARENT_PID")
    if not parent:
        return
    while not stop.is_set():
        await asyncio.sleep(1.0)
        try:
            os.kill(int(parent), 0)
        except OSError:
            log.warning("parent %s gone; stopping", parent)
            stop.set()


def serve(host: str = "127.0.0.1", port: int = 8474, config: Path | None = None,
          ready_file: Path | None = None, seed: int | None = None, metrics: bool = False) -> None:
    """Serve the Toxiproxy API until SIGTERM/SIGINT; writes the API URL to ``ready_file`` once bound."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(host, port, config, ready_file, seed, metrics))
