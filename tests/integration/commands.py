# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Run `watch` / `timeline` as subprocesses (the runner of their tests)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

from .conftest import KEY

RUNNER = (sys.executable, "-m", "frequenz.dispatch._commands")


@dataclass
class Result:
    """What a command did."""

    code: int
    stdout: str
    stderr: str


def environment(key: str | None = KEY) -> dict[str, str]:
    """The environment for a command, with the API key (or none)."""
    env = {k: v for k, v in os.environ.items() if k != "DISPATCH_API_KEY"}
    if key is not None:
        env["DISPATCH_API_KEY"] = key
    env["COLUMNS"] = "120"
    return env


async def run_command(
    *args: str, key: str | None = KEY, timeout: float = 30.0
) -> Result:
    """Run a command to its end, its output piped (so: not a terminal)."""
    process = await asyncio.create_subprocess_exec(
        *RUNNER,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(key),
    )
    async with asyncio.timeout(timeout):
        out, err = await process.communicate()
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), _without_noise(err.decode()))


def _without_noise(stderr: str) -> str:
    # A dependency prints this on import; it is not the command's output.
    return "\n".join(
        line for line in stderr.splitlines() if "ID prefixes must be unique" not in line
    )
