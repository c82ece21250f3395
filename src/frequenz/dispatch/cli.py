# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""The `frequenz-dispatch` command (also `python -m frequenz.dispatch.cli`).

Every subcommand is one function in `COMMANDS`: it registers the parser of
its subcommand and sets that parser's `handler`, which receives the parsed
arguments and returns the exit status. Adding a subcommand means writing one
such function and listing it. Handlers import what they need when they run,
so that `serve` never loads the demo (nor rich, nor the SDK).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .local_service.command import (
    SERVE_DESCRIPTION,
    SERVE_HELP,
    add_log_level_argument,
    add_serve_arguments,
    configure_logging,
    run_serve,
)

Subparsers = argparse._SubParsersAction
"""The registry a subcommand's parser is added to."""


def serve_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Register `serve`: the local Dispatch API service.

    Args:
        subparsers: The subcommand registry.
    """
    parser = subparsers.add_parser(
        "serve", help=SERVE_HELP, description=SERVE_DESCRIPTION
    )
    add_serve_arguments(parser)
    parser.set_defaults(handler=run_serve)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def demo_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Register `demo`: the library at work on a timeline of dispatches.

    Args:
        subparsers: The subcommand registry.
    """
    parser = subparsers.add_parser(
        "demo",
        help="watch the library handle a timeline of dispatches, live",
        description=(
            "Start a local Dispatch API service in this process, open a Dispatcher "
            "on it and play a timeline of dispatches (one-shot, recurring, "
            "overlapping, updated and deleted while running), showing lifecycle "
            "events, running-state events and the managed actors as they happen. "
            "Ends by itself after --duration seconds, or on Ctrl-C."
        ),
    )
    parser.add_argument(
        "--duration",
        type=_positive,
        metavar="SECONDS",
        help="stop after this long (default: the whole timeline at speed 1)",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="FACTOR",
        help="play the timeline this much faster, e.g. 3 with --duration 15 "
        "(default: %(default)s)",
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--live",
        dest="live",
        action="store_const",
        const=True,
        default=None,
        help="live table view (default when stdout is a terminal)",
    )
    view.add_argument(
        "--plain",
        dest="live",
        action="store_const",
        const=False,
        help="plain timestamped lines (default when stdout is not a terminal)",
    )
    parser.add_argument(
        "--show-logs",
        action="store_true",
        help="also show the library's INFO logs (on stderr)",
    )
    parser.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from .demo.runner import DemoOptions, run_demo_command

    fields: dict[str, Any] = {
        "speed": args.speed,
        "live": args.live,
        "show_logs": args.show_logs,
    }
    if args.duration is not None:
        fields["duration"] = args.duration
    options = DemoOptions(**fields)
    return run_demo_command(options)


def watch_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Register `watch`: a live view of any Dispatch API's dispatches.

    Args:
        subparsers: The subcommand registry.
    """
    from ._commands import add_command

    add_command(subparsers, "watch")


def timeline_command(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Register `timeline`: a chart of a microgrid's upcoming windows.

    Args:
        subparsers: The subcommand registry.
    """
    from ._commands import add_command

    add_command(subparsers, "timeline")


COMMANDS: Sequence[Callable[[Subparsers[argparse.ArgumentParser]], None]] = (
    serve_command,
    demo_command,
    watch_command,
    timeline_command,
)
"""Functions that register one subcommand each, in `--help` order."""


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser.

    Returns:
        The parser, with every subcommand of `COMMANDS` registered.
    """
    parser = argparse.ArgumentParser(
        prog="frequenz-dispatch", description="Frequenz dispatch tools."
    )
    add_log_level_argument(parser)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
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
    configure_logging(args.log_level)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
