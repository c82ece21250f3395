# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""The `serve` command: the local service run from a shell until Ctrl-C.

`frequenz-dispatch serve` (see `frequenz.dispatch.cli`) and
`python -m frequenz.dispatch.local_service` both run `run_serve` with the
options `add_serve_arguments` registers. Nothing here imports the rest of the
library, so serving never loads the dispatcher, the SDK or the demo.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from ._auth import DEFAULT_SIGNATURE_WINDOW
from ._service import LocalDispatchService
from ._storage import StorageError
from .signals import stop_on_signals

KEY_ENV_VAR = "DISPATCH_API_KEY"
"""Environment variable with the API key (safer than `--key`, which `ps` shows)."""


SIGN_SECRET_ENV_VAR = "DISPATCH_API_SIGN_SECRET"
"""Environment variable with the signing secret."""

SECRETS_ADVICE = (
    f"Pass the secrets in ${KEY_ENV_VAR} and ${SIGN_SECRET_ENV_VAR}, or in files "
    "(--key-file, --sign-secret-file): --key and --sign-secret are visible to "
    "every local user in the process list."
)
"""Where secrets belong, for `--help` and the warning about `--key`."""

SERVE_HELP = "run the local Dispatch API service"
"""One-line summary of `serve`, for the list of subcommands."""

SERVE_DESCRIPTION = (
    "Serve the Dispatch API over plain-text gRPC, storing dispatches in "
    "SQLite. Connect with DispatchApiClient(server_url="
    "'grpc://HOST:PORT?ssl=false', auth_key=KEY). Stop with Ctrl-C. " + SECRETS_ADVICE
)
"""What `serve --help` says about the command."""


def parse_address(address: str) -> tuple[str, int]:
    """Split `HOST:PORT` (or `[IPv6]:PORT`) into host and port.

    Args:
        address: The address.

    Returns:
        Host (without brackets) and port.

    Raises:
        argparse.ArgumentTypeError: If the address is malformed.
    """
    host, separator, port_text = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port_text.isdigit():
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT, e.g. 127.0.0.1:50051, got {address!r}"
        )
    port = int(port_text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range")
    return host, port


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `serve` on a parser.

    Args:
        parser: The parser of the `serve` command.
    """
    parser.add_argument(
        "--address",
        type=parse_address,
        default=("127.0.0.1", 50051),
        metavar="HOST:PORT",
        help="address to listen on; port 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--database",
        default="dispatches.sqlite3",
        metavar="PATH",
        help="SQLite file, created if missing; ':memory:' keeps nothing "
        "(default: %(default)s)",
    )
    key = parser.add_mutually_exclusive_group()
    key.add_argument(
        "--key-file",
        metavar="PATH",
        help="file holding the API key clients must send (recommended; "
        f"default: ${KEY_ENV_VAR})",
    )
    key.add_argument(
        "--key", help="the API key itself (discouraged: visible in the process list)"
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--sign-secret-file",
        metavar="PATH",
        help="file holding the secret requests must be signed with (recommended; "
        f"default: ${SIGN_SECRET_ENV_VAR}, else unsigned requests are accepted)",
    )
    secret.add_argument(
        "--sign-secret",
        help="the signing secret itself (discouraged: visible in the process list)",
    )
    parser.add_argument(
        "--signature-window",
        type=float,
        default=DEFAULT_SIGNATURE_WINDOW,
        metavar="SECONDS",
        help="accepted clock difference of signed requests (default: %(default)s)",
    )


class _SecretError(ValueError):
    """A secret file cannot be used."""


def _secret(
    given: str | None, path: str | None, env_var: str, option: str
) -> str | None:
    """Find a secret: on the command line, in a file, or in the environment."""
    if given is not None:
        print(
            f"warning: {option} is visible to every local user in the process list. "
            + SECRETS_ADVICE,
            file=sys.stderr,
        )
        return given or None
    if path is not None:
        try:
            # Only the line end an editor adds is dropped: a secret may contain
            # anything else.
            text = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise _SecretError(
                f"cannot read {option}-file {path!r}: {error}"
            ) from error
        if not text:
            raise _SecretError(f"{option}-file {path!r} is empty")
        return text
    return os.environ.get(env_var) or None


async def _serve_until_signalled(service: LocalDispatchService) -> None:
    """Run the service until SIGINT (Ctrl-C) or SIGTERM."""
    # Without signal handlers (Windows) Ctrl-C cancels this task, and
    # `async with` still stops the service.
    with stop_on_signals() as stop:
        async with service:
            print(f"Serving the Dispatch API at {service.url}", flush=True)
            await stop.wait()
            print("Stopping...", flush=True)


def run_serve(args: argparse.Namespace) -> int:
    """Run the service with the options parsed by `add_serve_arguments`.

    Args:
        args: The parsed options.

    Returns:
        The exit status: 0 after a clean stop, 1 if the service could not
            start, 2 for missing options.
    """
    try:
        key = _secret(args.key, args.key_file, KEY_ENV_VAR, "--key")
        sign_secret = _secret(
            args.sign_secret,
            args.sign_secret_file,
            SIGN_SECRET_ENV_VAR,
            "--sign-secret",
        )
    except _SecretError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not key:
        print(
            f"error: an API key is required: set {KEY_ENV_VAR} or pass --key-file",
            file=sys.stderr,
        )
        return 2
    host, port = args.address
    service = LocalDispatchService(
        database=args.database,
        key=key,
        sign_secret=sign_secret,
        host=host,
        port=port,
        signature_window=args.signature_window,
    )
    try:
        asyncio.run(_serve_until_signalled(service))
    except KeyboardInterrupt:
        pass  # Only without signal handlers; the service has stopped anyway.
    except (OSError, sqlite3.Error, StorageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print("Stopped.", flush=True)
    return 0


def add_log_level_argument(parser: argparse.ArgumentParser) -> None:
    """Register `--log-level`, shared by every command line of the project.

    Args:
        parser: The top-level parser.
    """
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging threshold (default: %(default)s)",
    )


def configure_logging(level: str) -> None:
    """Set up logging the way every command of the project logs.

    Args:
        level: The threshold, e.g. `INFO`.
    """
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run `python -m frequenz.dispatch.local_service [serve] [OPTIONS]`.

    The same as `frequenz-dispatch serve`; the word `serve` is optional.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` if `None`.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m frequenz.dispatch.local_service",
        description=SERVE_DESCRIPTION,
    )
    # Optional, so that the same arguments as for `frequenz-dispatch` work; the
    # demo is not offered here because it needs the whole library.
    parser.add_argument(
        "command", nargs="?", choices=("serve",), help="optional, the only command"
    )
    add_log_level_argument(parser)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    return run_serve(args)
