# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""The `frequenz-dispatch` command.

Each subcommand is one `_add_*_command(subparsers)` function that registers its
parser and sets `handler`; adding a subcommand means writing such a function
and listing it in `_COMMANDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence

from ._auth import DEFAULT_SIGNATURE_WINDOW
from ._demo import add_demo_command
from ._service import LocalDispatchService
from ._signals import stop_on_signals
from ._storage import StorageError

KEY_ENV_VAR = "DISPATCH_API_KEY"
"""Environment variable with the API key (safer than `--key`, which `ps` shows)."""

SIGN_SECRET_ENV_VAR = "DISPATCH_API_SIGN_SECRET"
"""Environment variable with the signing secret."""


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


async def _serve_until_signalled(service: LocalDispatchService) -> None:
    """Run the service until SIGINT (Ctrl-C) or SIGTERM."""
    # Without signal handlers (Windows) Ctrl-C cancels this task, and
    # `async with` still stops the service.
    with stop_on_signals() as stop:
        async with service:
            print(f"Serving the Dispatch API at {service.url}", flush=True)
            await stop.wait()
            print("Stopping...", flush=True)


def _run_serve(args: argparse.Namespace) -> int:
    """Handle `serve`."""
    key = args.key or os.environ.get(KEY_ENV_VAR)
    if not key:
        print(
            f"error: an API key is required: pass --key or set {KEY_ENV_VAR}",
            file=sys.stderr,
        )
        return 2
    host, port = args.address
    service = LocalDispatchService(
        database=args.database,
        key=key,
        sign_secret=args.sign_secret or os.environ.get(SIGN_SECRET_ENV_VAR) or None,
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


def _add_serve_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `serve`."""
    parser = subparsers.add_parser(
        "serve",
        help="run the local Dispatch API service",
        description=(
            "Serve the Dispatch API over plain-text gRPC, storing dispatches in "
            "SQLite. Connect with DispatchApiClient(server_url="
            "'grpc://HOST:PORT?ssl=false', auth_key=KEY). Stop with Ctrl-C."
        ),
    )
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
    parser.add_argument(
        "--key", help=f"API key clients must send (default: ${KEY_ENV_VAR})"
    )
    parser.add_argument(
        "--sign-secret",
        help="require requests signed with this secret "
        f"(default: ${SIGN_SECRET_ENV_VAR}, else unsigned requests are accepted)",
    )
    parser.add_argument(
        "--signature-window",
        type=float,
        default=DEFAULT_SIGNATURE_WINDOW,
        metavar="SECONDS",
        help="accepted clock difference of signed requests (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_serve)


# issue 13 (h-status): `watch` and `timeline` live in frequenz.dispatch._commands;
# move these two lines to cli.py when the command line moves there.
def _add_watch_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `watch`."""
    from .._commands import add_command

    add_command(subparsers, "watch")


def _add_timeline_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register `timeline`."""
    from .._commands import add_command

    add_command(subparsers, "timeline")


_COMMANDS: Sequence[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]
] = (_add_serve_command, add_demo_command, _add_watch_command, _add_timeline_command)
"""Functions that register one subcommand each."""


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser, with every subcommand registered.
    """
    parser = argparse.ArgumentParser(
        prog="frequenz-dispatch", description="Frequenz dispatch tools."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging threshold (default: %(default)s)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in _COMMANDS:
        add_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `frequenz-dispatch` command.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` if `None`.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
