"""Run the embedded Toxiproxy stand-in on its own (``harness proxy``)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

from aiohttp import web

from harness.faults.api import ProxyCollection, create_app

__all__ = ["serve"]

log = logging.getLogger(__name__)


async def _serve(host: str, port: int, config: Path | None, ready_file: Path | None) -> None:
    collection = ProxyCollection()
    if config is not None:
        for spec in json.loads(config.read_text()):
            await collection.create(spec)
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
    await stop.wait()
    for proxy in list(collection.proxies.values()):
        await proxy.stop()
    await runner.cleanup()


def serve(host: str = "127.0.0.1", port: int = 8474, config: Path | None = None,
          ready_file: Path | None = None) -> None:
    """Serve the Toxiproxy API until SIGTERM/SIGINT; writes the API URL to ``ready_file`` once bound."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(host, port, config, ready_file))
