# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The metrics example serves real metrics over HTTP on loopback; scrape it."""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from pathlib import Path

from frequenz.client.dispatch import DispatchApiClient

from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import KEY, TIMEOUT, create

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "serve_metrics.py"


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        body: bytes = response.read()
    return body.decode()


async def test_the_example_serves_the_status_metrics(
    service: LocalDispatchService, client: DispatchApiClient
) -> None:
    await create(client, type="CHARGE", start_time="NOW", duration=None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        service.url,
        "1",
        "60",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "DISPATCH_API_KEY": KEY},
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(TIMEOUT):
            line = (await process.stdout.readline()).decode().strip()
        assert line.startswith("metrics at http://127.0.0.1:"), line
        url = line.removeprefix("metrics at ")
        text = await asyncio.to_thread(_scrape, url)
    finally:
        process.terminate()
        await process.wait()
    lines = text.splitlines()
    assert 'frequenz_dispatch_connected{microgrid_id="1"} 1.0' in lines
    assert 'frequenz_dispatch_dispatches{microgrid_id="1"} 1.0' in lines
    assert (
        'frequenz_dispatch_running_dispatches{microgrid_id="1",type="CHARGE"} 1.0'
        in lines
    )
    assert 'frequenz_dispatch_state_source{microgrid_id="1",source="service"} 1.0' in (
        lines
    )
    assert 'frequenz_dispatch_sync_duration_seconds_count{microgrid_id="1"} 1.0' in (
        lines
    )
    assert "# TYPE frequenz_dispatch_missed_runs_total counter" in lines
    print("\n".join(line for line in lines if line.startswith("frequenz_dispatch")))
