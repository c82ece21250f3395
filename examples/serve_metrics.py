# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Serve a Dispatcher's metrics over HTTP on loopback, for Prometheus to scrape.

Usage:
    DISPATCH_API_KEY=... python examples/serve_metrics.py URL MICROGRID_ID [SECONDS]

Prints `metrics at http://127.0.0.1:PORT/metrics` once the first sync is done
(port 0 picks a free port), then runs for SECONDS (default: until Ctrl-C).
"""

from __future__ import annotations

import asyncio
import os
import sys

import prometheus_client

from frequenz.dispatch import Dispatcher, metrics


async def main(url: str, microgrid_id: int, seconds: float | None) -> None:
    """Sync with the service and serve the metrics meanwhile."""
    key = os.environ["DISPATCH_API_KEY"]
    registry = prometheus_client.CollectorRegistry()
    dispatcher = Dispatcher(microgrid_id=microgrid_id, server_url=url, key=key)
    # Registered before starting, so that the first sync is measured too.
    metrics.register(dispatcher, registry)
    async with dispatcher:
        server, thread = prometheus_client.start_http_server(
            0, addr="127.0.0.1", registry=registry
        )
        try:
            print(
                f"metrics at http://127.0.0.1:{server.server_port}/metrics", flush=True
            )
            await asyncio.sleep(1e9 if seconds is None else seconds)
        finally:
            server.shutdown()
            thread.join()


if __name__ == "__main__":
    asyncio.run(
        main(
            sys.argv[1],
            int(sys.argv[2]),
            float(sys.argv[3]) if len(sys.argv) > 3 else None,
        )
    )
