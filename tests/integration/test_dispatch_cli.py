# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`dispatch-cli`, frequenz-client-dispatch's own tool, works against the service."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import DispatchId, TargetIds

from frequenz.dispatch.local_service import LocalDispatchService

CLI = Path(sys.executable).with_name("dispatch-cli")
MICROGRID = MicrogridId(1)


async def _cli(
    service: LocalDispatchService, *args: str, sign_secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    options = ["--url", service.url, "--auth-key", service.key, "--raw"]
    if sign_secret is not None:
        options += ["--sign-secret", sign_secret]
    command = [str(CLI), *options, *args]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result


def _about(duration: timedelta | None, expected: timedelta) -> bool:
    # The CLI turns "20m" into (now + 20 min, in whole seconds) - now, rounded:
    # 1199 or 1200 s depending on the sub-second clock. Not the service's doing.
    return duration is not None and abs(duration - expected) <= timedelta(seconds=1)


@pytest.mark.parametrize("sign_secret", [None, "a-signing-secret-0123456789"])
async def test_create_list_update_get_delete(sign_secret: str | None) -> None:
    async with LocalDispatchService(
        database=":memory:", key="cli-key-0123456789", sign_secret=sign_secret
    ) as service:
        client = DispatchApiClient(
            server_url=service.url, auth_key=service.key, sign_secret=sign_secret
        )
        created = await _cli(
            service,
            "create",
            "1",
            "BATTERY_CHARGE",
            "1,2",
            "in 1 hour",
            "10m",
            "-p",
            '{"power_kw": 50}',
            sign_secret=sign_secret,
        )
        assert "Dispatch created." in created.stdout
        stored = await client.get(microgrid_id=MICROGRID, dispatch_id=DispatchId(1))
        assert stored.type == "BATTERY_CHARGE"
        assert stored.target == TargetIds(1, 2)
        assert _about(stored.duration, timedelta(minutes=10))
        assert stored.payload == {"power_kw": 50}

        listed = await _cli(service, "list", "1", sign_secret=sign_secret)
        assert "1 dispatches" in listed.stdout

        await _cli(
            service, "update", "1", "1", "--duration", "20m", sign_secret=sign_secret
        )
        updated = await client.get(microgrid_id=MICROGRID, dispatch_id=DispatchId(1))
        assert _about(updated.duration, timedelta(minutes=20))
        assert updated.update_time > stored.update_time

        shown = await _cli(service, "get", "1", "1", sign_secret=sign_secret)
        assert "BATTERY_CHARGE" in shown.stdout

        deleted = await _cli(service, "delete", "1", "1", sign_secret=sign_secret)
        assert "Dispatches deleted: [1]" in deleted.stdout
        pages = [list(page) async for page in client.list(MICROGRID)]
        assert [dispatch for page in pages for dispatch in page] == []
