# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz-dispatch timeline` against the local service, as a subprocess."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch.local_service import LocalDispatchService

from .commands import run_command
from .conftest import create, in_seconds


async def test_chart_and_pictures(
    service: LocalDispatchService, client: DispatchApiClient, tmp_path: Path
) -> None:
    await create(client, type="CHARGE", start_time="NOW", duration=timedelta(hours=2))
    await create(
        client,
        type="CHARGE",
        start_time=in_seconds(3 * 3600),
        duration=timedelta(hours=1),
        dry_run=True,
    )
    await create(
        client,
        type="CURTAIL",
        start_time=in_seconds(3600),
        duration=timedelta(hours=1),
        target=TargetIds(7),
    )
    png, svg = tmp_path / "t.png", tmp_path / "t.svg"
    result = await run_command(
        "timeline",
        "--url",
        service.url,
        "--microgrid",
        "1",
        "--hours",
        "24",
        "--width",
        "100",
        "--png",
        str(png),
        "--svg",
        str(svg),
    )
    assert result.code == 0, result.stderr
    print(result.stdout)
    lines = result.stdout.splitlines()
    assert "(24 h, merge: type)" in lines[0]
    lanes = {line.split("  ")[0].strip(): line for line in lines[3:6]}
    assert set(lanes) == {"CHARGE", "CHARGE [dry-run]", "CURTAIL"}
    assert "█" in lanes["CHARGE"] and "▒" in lanes["CHARGE [dry-run]"]
    assert f"wrote {png}" in lines and f"wrote {svg}" in lines
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "<svg" in svg.read_text()

    merged = await run_command(
        "timeline", "--url", service.url, "--microgrid", "1", "--merge", "none"
    )
    assert merged.code == 0
    assert merged.stdout.count("CHARGE") == 2  # one lane per dispatch


async def test_errors_are_one_line(service: LocalDispatchService) -> None:
    wrong_key = await run_command(
        "timeline", "--url", service.url, "--microgrid", "1", key="wrong"
    )
    assert wrong_key.code == 1
    assert wrong_key.stderr.strip().splitlines() == [
        f"error: {service.url} rejected the API key (UNAUTHENTICATED: invalid API key)"
    ]
    no_key = await run_command(
        "timeline", "--url", service.url, "--microgrid", "1", key=None
    )
    assert no_key.code == 1
    assert no_key.stderr.strip() == (
        "error: an API key is required: set $DISPATCH_API_KEY or --key-file"
    )
    unreachable = await run_command(
        "timeline",
        "--url",
        "grpc://127.0.0.1:1?ssl=false",
        "--microgrid",
        "1",
        "--timeout",
        "2",
    )
    assert unreachable.code == 1
    [line] = unreachable.stderr.strip().splitlines()
    assert line.startswith("error: cannot reach grpc://127.0.0.1:1?ssl=false")
    bad = await run_command(
        "timeline", "--url", service.url, "--microgrid", "1", "--merge", "odd"
    )
    assert bad.code == 2
    assert "Traceback" not in bad.stderr
    assert "argument --merge: invalid choice: 'odd'" in bad.stderr.splitlines()[-1]
    bad_url = await run_command("timeline", "--url", "bogus", "--microgrid", "1")
    assert bad_url.code == 1
    assert bad_url.stderr.startswith("error: invalid --url 'bogus'")
