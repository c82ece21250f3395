# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Draw the upcoming windows of a microgrid's dispatches.

A terminal chart (one lane per actor identity under the chosen merge strategy,
dry-run windows marked) and, with --png / --svg, a picture (the `timeline`
extra, matplotlib).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime, timezone

from ..timeline import MERGE_CHOICES, MIN_WIDTH, render_timeline, save_timeline_image
from ._common import (
    CommandError,
    add_connection_arguments,
    fail,
    list_dispatches,
    make_client,
    positive,
    read_key,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments.

    Args:
        parser: The subcommand's parser.
    """
    add_connection_arguments(parser)
    parser.add_argument("--type", help="only dispatches of this type")
    parser.add_argument(
        "--hours",
        type=positive,
        default=48.0,
        help="the horizon from now (default: %(default)g)",
    )
    parser.add_argument(
        "--merge",
        choices=MERGE_CHOICES,
        default="type",
        help="how dispatches share actors, one lane each (default: %(default)s)",
    )
    parser.add_argument("--png", metavar="FILE", help="also draw a PNG picture")
    parser.add_argument("--svg", metavar="FILE", help="also draw an SVG picture")
    parser.add_argument(
        "--width",
        type=int,
        default=None,
        help="chart columns (default: the terminal's width)",
    )
    parser.add_argument(
        "--ascii", action="store_true", help="draw with ASCII characters only"
    )


async def run(args: argparse.Namespace) -> int:
    """List the dispatches and draw them.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 0, or 1 with a one-line reason on stderr.
    """
    width = args.width or shutil.get_terminal_size((100, 24)).columns
    if width < MIN_WIDTH:
        return fail(CommandError(f"--width must be at least {MIN_WIDTH}, got {width}"))
    try:
        client = make_client(args, read_key(args))
        try:
            dispatches = await list_dispatches(client, args)
        finally:
            await client.disconnect()
        now = datetime.now(timezone.utc)
        ascii_only = args.ascii or not _encodes(sys.stdout, "█▒◆┬─")
        print(
            render_timeline(
                dispatches,
                now=now,
                hours=args.hours,
                merge=args.merge,
                width=width,
                ascii=ascii_only,
            )
        )
        for path, image_format in ((args.png, "png"), (args.svg, "svg")):
            if path is None:
                continue
            try:
                save_timeline_image(
                    dispatches,
                    path,
                    now=now,
                    hours=args.hours,
                    merge=args.merge,
                    image_format=image_format,
                )
            except ImportError as error:
                raise CommandError(str(error).splitlines()[0]) from error
            except OSError as error:
                raise CommandError(f"cannot write {path}: {error.strerror}") from error
            print(f"wrote {path}")
    except CommandError as error:
        return fail(error)
    except ValueError as error:
        return fail(CommandError(str(error).splitlines()[0]))
    return 0


def _encodes(stream: object, text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True
