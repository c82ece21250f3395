# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The package layout: the server stands alone, the CLI loads the demo lazily."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import frequenz.dispatch.local_service as local_service

PACKAGE = Path(local_service.__file__).parent


def _imports(path: Path) -> list[str]:
    """Every module a file imports, relative imports resolved."""
    package = "frequenz.dispatch.local_service"
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(node.module or "")
            else:
                base = package.rsplit(".", node.level - 1)[0]
                found.append(f"{base}.{node.module}" if node.module else base)
    return found


def test_the_local_service_imports_nothing_of_the_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for name in _imports(path):
            if name.startswith("frequenz.dispatch"):
                assert name.startswith("frequenz.dispatch.local_service"), (
                    path.name,
                    name,
                )


def _loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_serve_does_not_load_the_demo() -> None:
    loaded = _loaded_after(
        "from frequenz.dispatch.cli import build_parser\n"
        "build_parser().parse_args(['serve', '--database', ':memory:'])"
    )
    assert "frequenz.dispatch.cli" in loaded
    assert "frequenz.dispatch.local_service.command" in loaded
    assert not {m for m in loaded if m.startswith("frequenz.dispatch.demo.")}
    assert "rich" not in loaded


def test_the_demo_is_loaded_for_demo_only() -> None:
    # The handler imports it when it runs; `--help` of the subcommand needs
    # nothing of it either.
    loaded = _loaded_after(
        "from frequenz.dispatch import cli\n"
        "args = cli.build_parser().parse_args(['demo', '--speed', '2'])\n"
        "assert args.handler.__name__ == '_run_demo'"
    )
    assert "frequenz.dispatch.demo.runner" not in loaded
