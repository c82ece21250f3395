# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""What the commands share: connection options, the key, one-line errors."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import grpc
from frequenz.client.base.exception import ApiClientError, GrpcError
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch

KEY_ENV_VAR = "DISPATCH_API_KEY"
"""Environment variable with the API key."""


class CommandError(Exception):
    """A reason to exit with status 1, printed as one line."""


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add `--url`, `--microgrid`, `--key-file` and `--timeout`.

    Args:
        parser: The subcommand's parser.
    """
    parser.add_argument(
        "--url",
        required=True,
        help="the Dispatch API, e.g. grpc://127.0.0.1:50051?ssl=false",
    )
    parser.add_argument(
        "--microgrid", type=_microgrid, required=True, metavar="ID", help="microgrid id"
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="PATH",
        help=f"file holding the API key (default: ${KEY_ENV_VAR})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=5.0,
        metavar="SECONDS",
        help="give up reaching the service after this long (default: %(default)s)",
    )


def read_key(args: argparse.Namespace) -> str:
    """Return the API key from `--key-file` or the environment.

    Args:
        args: The parsed arguments.

    Returns:
        The key.

    Raises:
        CommandError: If there is none or the file cannot be read.
    """
    if args.key_file is not None:
        try:
            path: Path = args.key_file
            key = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CommandError(
                f"cannot read --key-file {args.key_file}: {error.strerror}"
            ) from error
        if not key:
            raise CommandError(f"--key-file {args.key_file} is empty")
        return key
    key = os.environ.get(KEY_ENV_VAR, "").strip()
    if not key:
        raise CommandError(f"an API key is required: set ${KEY_ENV_VAR} or --key-file")
    return key


def make_client(args: argparse.Namespace, key: str) -> DispatchApiClient:
    """Build the client for `--url`.

    Args:
        args: The parsed arguments.
        key: The API key.

    Returns:
        The client.

    Raises:
        CommandError: If the URL is not usable.
    """
    try:
        return DispatchApiClient(
            server_url=args.url,
            auth_key=key,
            call_timeout=timedelta(seconds=args.timeout),
        )
    except Exception as error:
        raise CommandError(f"invalid --url {args.url!r}: {error}") from error


async def list_dispatches(
    client: DispatchApiClient, args: argparse.Namespace
) -> list[ClientDispatch]:
    """List every dispatch of `--microgrid` (of `--type`, if given).

    Args:
        client: The client.
        args: The parsed arguments.

    Returns:
        The dispatches.

    Raises:
        CommandError: If the service cannot be reached or refuses the request.
    """
    wanted = getattr(args, "type", None)
    try:
        async with asyncio.timeout(args.timeout * 2):
            listed = [
                dispatch
                async for page in client.list(MicrogridId(args.microgrid))
                for dispatch in page
            ]
    except TimeoutError as error:
        raise CommandError(
            f"cannot reach {args.url}: no answer within {args.timeout:g} s"
        ) from error
    except (ApiClientError, grpc.RpcError) as error:
        raise CommandError(describe(error, args.url)) from error
    return [d for d in listed if wanted is None or d.type == wanted]


def describe(error: ApiClientError | grpc.RpcError, url: str) -> str:
    """Say in one line why a call failed.

    Args:
        error: What the client raised.
        url: The service's URL.

    Returns:
        The reason.
    """
    grpc_error = error.grpc_error if isinstance(error, GrpcError) else error
    if isinstance(grpc_error, grpc.aio.AioRpcError):
        code = grpc_error.code().name
        details = (grpc_error.details() or "").splitlines()
        reason = details[0] if details else ""
        if code == "UNAUTHENTICATED":
            return f"{url} rejected the API key ({code}: {reason})"
        if code == "PERMISSION_DENIED":
            return f"{url} denied access ({code}: {reason})"
        if code in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
            return f"cannot reach {url} ({code}: {reason})"
        return f"{url} answered {code}: {reason}"
    return (
        f"{url}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    )


def fail(error: CommandError) -> int:
    """Print the one-line reason to stderr.

    Args:
        error: The reason.

    Returns:
        The exit status, 1.
    """
    print(f"error: {error}", file=sys.stderr)
    return 1


def _microgrid(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


positive = _positive
"""Parse a positive number of seconds or hours (for argparse)."""
