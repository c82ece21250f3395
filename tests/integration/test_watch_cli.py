# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz-dispatch watch` against the local service, as a subprocess.

Plain mode (output piped) is asserted line by line; the live view runs under a
pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta

from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch.local_service import LocalDispatchService

from .commands import RUNNER, environment, run_command
from .conftest import create, in_seconds

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"


async def test_plain_lines_follow_the_dispatches(
    service: LocalDispatchService, client: DispatchApiClient
) -> None:
    running = await create(
        client,
        type="CHARGE",
        start_time="NOW",
        duration=timedelta(hours=1),
        payload={"power_kw": 50},
    )
    await create(client, type="CHARGE", start_time=in_seconds(3600), dry_run=True)
    short = await create(
        client,
        type="CURTAIL",
        start_time=in_seconds(2),
        duration=timedelta(seconds=1),
        target=TargetIds(7),
    )
    result = await run_command(
        "watch",
        "--url",
        service.url,
        "--microgrid",
        "1",
        "--duration",
        "6",
        "--refresh",
        "0.5",
    )
    assert result.code == 0, result.stderr
    print(result.stdout)
    lines = result.stdout.splitlines()
    assert all(re.match(STAMP + " ", line) for line in lines), lines
    texts = [line.split(" ", 1)[1] for line in lines]
    assert re.fullmatch(
        r"microgrid 1 \| connected \| last sync .*Z \(\d+ s ago\) \| 3 dispatches"
        r" \| 1 running",
        texts[0],
    )
    until = running.start_time + timedelta(hours=1)
    assert (
        f"dispatch {int(running.id)} CHARGE: running until "
        f'{until:%Y-%m-%d %H:%M:%S}Z; next run -; payload {{"power_kw":50.0}}'
    ) in texts
    assert any(
        t.startswith(
            f"dispatch {int(running.id) + 1} CHARGE (dry run): waiting; next run"
        )
        for t in texts
    )
    # The short one is seen waiting, running, then finished, in that order.
    states = [
        t.split(": ", 1)[1].split(";")[0]
        for t in texts
        if t.startswith(f"dispatch {int(short.id)} ")
    ]
    assert states[0] == "waiting"
    assert states[1].startswith("running until")
    assert states[-1] == "finished"


async def test_wrong_key_and_unreachable(service: LocalDispatchService) -> None:
    wrong = await run_command(
        "watch", "--url", service.url, "--microgrid", "1", key="wrong"
    )
    assert wrong.code == 1
    assert wrong.stderr.strip().splitlines() == [
        f"error: {service.url} rejected the API key (UNAUTHENTICATED: invalid API key)"
    ]
    gone = await run_command(
        "watch",
        "--url",
        "grpc://127.0.0.1:1?ssl=false",
        "--microgrid",
        "1",
        "--timeout",
        "2",
    )
    assert gone.code == 1
    [line] = gone.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach grpc://127.0.0.1:1?ssl=false")
    bad = await run_command(
        "watch", "--url", service.url, "--microgrid", "1", "--duration", "-1"
    )
    assert bad.code == 2
    assert bad.stderr.splitlines()[-1].endswith(
        "argument --duration: must be positive: -1"
    )


async def test_live_view_on_a_terminal(
    service: LocalDispatchService, client: DispatchApiClient
) -> None:
    await create(
        client, type="CHARGE", start_time="NOW", duration=None, payload={"a": 1}
    )
    main, terminal = os.openpty()
    env = environment()
    env["TERM"] = "xterm-256color"
    process = await asyncio.create_subprocess_exec(
        *RUNNER,
        "watch",
        "--url",
        service.url,
        "--microgrid",
        "1",
        "--duration",
        "3",
        stdout=terminal,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    os.close(terminal)
    chunks: list[bytes] = []

    def read_all() -> None:
        while True:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            chunks.append(chunk)

    try:
        async with asyncio.timeout(30):
            reader = asyncio.ensure_future(asyncio.to_thread(read_all))
            code = await process.wait()
            await reader
    finally:
        os.close(main)
    screen = b"".join(chunks).decode(errors="replace")
    print(screen)
    assert code == 0
    assert "\x1b[" in screen  # drawn with terminal control sequences
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert f"frequenz-dispatch watch — {service.url}" in plain
    assert "microgrid 1 | connected | last sync" in plain
    assert "running, no end" in plain and '{"a":1.0}' in plain
    for column in ("id", "type", "state", "next run", "payload"):
        assert column in plain
