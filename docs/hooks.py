# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""mkdocs hooks: draw the scenarios of `docs/diagrams.py` during the build.

Every scenario becomes `diagrams/NAME.svg`, drawn by the project's own
`save_timeline_image`; a page's `<!-- scenario: NAME -->` marker is replaced by
the picture, its caption and, for a managed scenario, the table of what each
actor got when a real `Dispatcher` ran the scenario on fake time.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_MARKER = re.compile(r"<!-- scenario: ([a-z0-9-]+) -->")


def _diagrams() -> ModuleType:
    """Load `docs/diagrams.py` (not a package: docs/ is not on the path)."""
    path = Path(__file__).with_name("diagrams.py")
    spec = importlib.util.spec_from_file_location(
        "frequenz_dispatch_docs_diagrams", path
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add one generated SVG per scenario.

    Args:
        files: The site's files.
        config: The mkdocs configuration.

    Returns:
        The files, with the pictures.
    """
    from frequenz.dispatch.timeline import save_timeline_image

    diagrams = _diagrams()
    with tempfile.TemporaryDirectory() as folder:
        for name, scenario in diagrams.SCENARIOS.items():
            path = Path(folder) / f"{name}.svg"
            save_timeline_image(
                scenario.dispatches(),
                path,
                now=diagrams.NOW,
                hours=scenario.hours,
                merge=scenario.lanes,
            )
            files.append(
                File.generated(
                    config, f"diagrams/{name}.svg", content=path.read_bytes()
                )
            )
    return files


def on_page_markdown(
    markdown: str, *, page: Page, config: MkDocsConfig, files: Files
) -> str:
    """Replace each scenario marker by its picture, caption and actor table.

    Args:
        markdown: The page's markdown.
        page: The page.
        config: The mkdocs configuration.
        files: The site's files.

    Returns:
        The markdown with the scenarios drawn.

    Raises:
        KeyError: If a marker names no scenario.
    """
    del config, files
    if not _MARKER.search(markdown):
        return markdown
    diagrams = _diagrams()
    depth = page.file.src_uri.count("/")
    prefix = "../" * depth

    def draw(match: re.Match[str]) -> str:
        name = match.group(1)
        scenario: Any = diagrams.SCENARIOS[name]
        parts = [
            f"![{scenario.caption}]({prefix}diagrams/{name}.svg)",
            "",
            f"*{scenario.caption}*",
        ]
        if scenario.managed:
            steps = diagrams.managed_steps(scenario)
            parts += ["", diagrams.steps_table(steps)]
        return "\n".join(parts)

    return _MARKER.sub(draw, markdown)
