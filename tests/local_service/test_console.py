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


async def test_serve_reads_secrets_from_files(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret\n")
    process = await _spawn(
        "serve",
        "--address",
        "127.0.0.1:0",
        "--database",
        str(tmp_path / "db.sqlite3"),
        "--key-file",
        str(key_file),
        "--sign-secret-file",
        str(secret_file),
        env={},
    )
    try:
        url = await _wait_until_serving(process)
        async with DispatchApiClient(
            server_url=url,
            auth_key=KEY,
            sign_secret="file-secret",
            call_timeout=timedelta(seconds=TIMEOUT),
        ) as client:
            assert [d async for page in client.list(MICROGRID) for d in page] == []
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(TIMEOUT):
                _, stderr = await process.communicate()
    assert process.returncode == 0
    assert "warning" not in stderr.decode()


async def test_secrets_on_the_command_line_are_warned_about(tmp_path: Path) -> None:
    process = await _spawn(
        "serve",
        "--address",
        "127.0.0.1:0",
        "--database",
        str(tmp_path / "db.sqlite3"),
        "--key",
        KEY,
        env={},
    )
    try:
        await _wait_until_serving(process)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT):
            _, stderr = await process.communicate()
    errors = stderr.decode()
    assert "warning: --key is visible to every local user" in errors
    assert "DISPATCH_API_KEY" in errors
    assert KEY not in errors


async def test_a_second_serve_on_one_database_refuses_to_start(tmp_path: Path) -> None:
    database = str(tmp_path / "db.sqlite3")
    env = {"DISPATCH_API_KEY": KEY}
    first = await _spawn(
        "serve", "--address", "127.0.0.1:0", "--database", database, env=env
    )
    try:
        await _wait_until_serving(first)
        second = await _spawn(
            "serve", "--address", "127.0.0.1:0", "--database", database, env=env
        )
        async with asyncio.timeout(STARTUP_TIMEOUT):
            stdout, stderr = await second.communicate()
        assert second.returncode == 1
        assert "already served by another service" in stderr.decode()
        assert "Serving" not in stdout.decode()
    finally:
        await _stop(first, signal.SIGTERM)


def test_help_recommends_the_environment_and_files(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "DISPATCH_API_KEY" in text
    assert "DISPATCH_API_SIGN_SECRET" in text
    assert "--key-file" in text
    assert "--sign-secret-file" in text
    assert "visible to every local user in the process list" in text


@pytest.mark.parametrize("content", ["", "\n"])
def test_an_empty_key_file_is_an_error(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content)
    assert main(["serve", "--database", ":memory:", "--key-file", str(key_file)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_a_missing_key_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "nope")
    assert main(["serve", "--database", ":memory:", "--key-file", missing]) == 2
    assert "cannot read --key-file" in capsys.readouterr().err
