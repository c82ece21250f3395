# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""The `frequenz-dispatch` command line, and its `serve` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import TargetIds

from frequenz.dispatch.cli import main
from frequenz.dispatch.local_service.command import main as service_main
from frequenz.dispatch.local_service.command import parse_address

from .conftest import KEY, MICROGRID, TIMEOUT

STARTUP_TIMEOUT = 30.0
"""Generous: the subprocess imports grpc, protobuf and the SDK first."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _command() -> list[str]:
    """The installed console script, or the module if it is not installed."""
    script = Path(sys.executable).with_name("frequenz-dispatch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "frequenz.dispatch.cli"]


async def _spawn(
    *args: str, env: dict[str, str], command: list[str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(_command() if command is None else command),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )


async def _wait_until_serving(process: asyncio.subprocess.Process) -> str:
    """Read stdout until the service says it serves; return its URL."""
    assert process.stdout is not None
    async with asyncio.timeout(STARTUP_TIMEOUT):
        while line := (await process.stdout.readline()).decode():
            if line.startswith("Serving the Dispatch API at "):
                return line.split(" at ", 1)[1].strip()
    assert process.stderr is not None
    raise AssertionError((await process.stderr.read()).decode())


async def _stop(process: asyncio.subprocess.Process, signum: int) -> str:
    process.send_signal(signum)
    async with asyncio.timeout(TIMEOUT):
        stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    assert KEY not in stderr.decode() + stdout.decode()
    return stdout.decode()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_serve_and_stop(tmp_path: Path, signum: int) -> None:
    port = _free_port()
    database = tmp_path / "dispatches.sqlite3"
    process = await _spawn(
        "serve",
        "--address",
        f"127.0.0.1:{port}",
        "--database",
        str(database),
        # The key comes from the environment, so it is not visible in `ps`.
        env={"DISPATCH_API_KEY": KEY},
    )
    try:
        url = await _wait_until_serving(process)
        assert url == f"grpc://127.0.0.1:{port}?ssl=false"
        async with DispatchApiClient(
            server_url=url, auth_key=KEY, call_timeout=timedelta(seconds=TIMEOUT)
        ) as client:
            created = await client.create(
                MICROGRID, "CONSOLE", "NOW", timedelta(minutes=5), TargetIds(1)
            )
            listed = [d async for page in client.list(MICROGRID) for d in page]
        assert listed == [created]
    finally:
        if process.returncode is None:
            output = await _stop(process, signum)
    assert "Stopped." in output
    assert database.exists()


async def test_serve_with_signing_and_port_zero(tmp_path: Path) -> None:
    process = await _spawn(
        "serve",
        "--address",
        "127.0.0.1:0",
        "--database",
        str(tmp_path / "db.sqlite3"),
        "--key",
        KEY,
        env={"DISPATCH_API_SIGN_SECRET": "console-secret"},
    )
    try:
        url = await _wait_until_serving(process)
        async with DispatchApiClient(
            server_url=url,
            auth_key=KEY,
            sign_secret="console-secret",
            call_timeout=timedelta(seconds=TIMEOUT),
        ) as client:
            assert [d async for page in client.list(MICROGRID) for d in page] == []
    finally:
        if process.returncode is None:
            await _stop(process, signal.SIGTERM)


async def test_serve_reports_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await _spawn(
            "serve",
            "--address",
            f"127.0.0.1:{port}",
            "--database",
            str(tmp_path / "db.sqlite3"),
            "--key",
            KEY,
            env={},
        )
        async with asyncio.timeout(STARTUP_TIMEOUT):
            _, stderr = await process.communicate()
    assert process.returncode == 1
    assert "cannot listen" in stderr.decode()


@pytest.mark.parametrize("word", [[], ["serve"]])
async def test_the_module_of_the_service_serves(
    tmp_path: Path, word: list[str]
) -> None:
    # `python -m frequenz.dispatch.local_service` is `frequenz-dispatch serve`;
    # the word `serve` may be left out.
    process = await _spawn(
        *word,
        "--address",
        "127.0.0.1:0",
        "--database",
        str(tmp_path / "db.sqlite3"),
        env={"DISPATCH_API_KEY": KEY},
        command=[sys.executable, "-m", "frequenz.dispatch.local_service"],
    )
    try:
        url = await _wait_until_serving(process)
        async with DispatchApiClient(
            server_url=url, auth_key=KEY, call_timeout=timedelta(seconds=TIMEOUT)
        ) as client:
            assert [d async for page in client.list(MICROGRID) for d in page] == []
    finally:
        if process.returncode is None:
            output = await _stop(process, signal.SIGTERM)
    assert "Stopped." in output


def test_the_module_of_the_service_offers_no_demo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        service_main(["demo"])
    assert info.value.code == 2
    assert "invalid choice: 'demo'" in capsys.readouterr().err


def test_serve_requires_a_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPATCH_API_KEY", raising=False)
    assert main(["serve", "--database", ":memory:"]) == 2
    assert "DISPATCH_API_KEY" in capsys.readouterr().err


def test_a_subcommand_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "serve" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8080", ("::1", 8080)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize(
    "address", ["50051", "127.0.0.1:", ":50051", "host:http", "h:70000"]
)
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_address(address)
