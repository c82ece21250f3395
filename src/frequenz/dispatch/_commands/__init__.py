# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The `watch` and `timeline` subcommands of `frequenz-dispatch`.

Each module exposes `add_arguments(parser)` and `async def run(args) -> int`; the
command line registers them with `add_command(subparsers, module)`. They use only
the public API (the `Dispatcher`, its client, `frequenz.dispatch.timeline`), so
they work against the local service and the real one alike.
"""

from __future__ import annotations

import argparse
import asyncio
from types import ModuleType

from . import timeline, watch

__all__ = ["COMMANDS", "add_command", "timeline", "watch"]

COMMANDS: dict[str, tuple[ModuleType, str]] = {
    "watch": (watch, "live view of a microgrid's dispatches and the sync status"),
    "timeline": (timeline, "chart of a microgrid's upcoming dispatch windows"),
}
"""The subcommands: name, module and one-line help."""


def add_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str
) -> argparse.ArgumentParser:
    """Register one subcommand; its handler runs it and returns the exit status.

    Args:
        subparsers: Where to register it.
        name: `watch` or `timeline`.

    Returns:
        The subcommand's parser.
    """
    module, help_text = COMMANDS[name]
    parser = subparsers.add_parser(name, help=help_text, description=module.__doc__)
    module.add_arguments(parser)

    def handler(args: argparse.Namespace) -> int:
        code: int = asyncio.run(module.run(args))
        return code

    parser.set_defaults(handler=handler)
    return parser
