# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Run `watch` or `timeline` alone: `python -m frequenz.dispatch._commands watch ...`.

The same subcommands as `frequenz-dispatch watch` / `timeline`; tests run them
this way as subprocesses.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from . import COMMANDS, add_command


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the subcommand.

    Args:
        argv: Arguments without the program name; `sys.argv[1:]` if None.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="frequenz-dispatch")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        add_command(subparsers, name)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
