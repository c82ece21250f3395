# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Run every ```python block of `docs/*.md` and of every docstring in `src/`.

Sybil collects the blocks; a new page or docstring is picked up without any
change here. Each document's blocks run in order, in one namespace, as a user
would paste them. The conventions (also in CONTRIBUTING.md):

* Only ```python blocks run; other languages (shell, text, toml) are not Python.
* A python block that must not run is preceded by an explicit marker with a
  reason, invisible in the rendered page: `<!-- skip: next "why" -->`. A skip
  without a reason fails the collection.
* Code that only prepares what a real deployment would have (a server, its URL
  and key, an actor factory) goes in an invisible block before the example:
  `<!-- invisible-code-block: python ... -->`. It can use `example`, a
  `DocExample` on a local Dispatch API service (see below).
* A block with top-level `await` runs on the document's event loop. A block that
  waits forever (for example `await dispatcher`) ends once its setup called
  `example.done()`: it is then cancelled and must end by that cancellation.
* Names the documented examples use without importing them (`NAMESPACE`) are
  present; on Python 3.11, `typing.override` (3.12+) is `typing_extensions`'.
* Every document runs in its own empty temporary directory, so an example that
  names a database file leaves nothing behind.

How the docstring examples behave (not only that they run) is checked by
`tests/test_examples.py` and `tests/integration/test_documented_examples.py`.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import sys
import tempfile
import typing
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Self

import typing_extensions
from frequenz.channels import Receiver
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import Dispatch as ClientDispatch
from frequenz.client.dispatch.types import TargetIds
from frequenz.sdk.actor import Actor
from sybil import Document, Example, Region, Sybil
from sybil.document import PythonDocStringDocument
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.typing import Parser

from frequenz.dispatch import DispatchInfo
from frequenz.dispatch.local_service import LocalDispatchService

TIMEOUT = 30.0
"""Upper bound for one block; only reached if an example is broken."""

NAMESPACE: dict[str, Any] = {
    # The documented examples use these names without importing them.
    "DispatchInfo": DispatchInfo,
    "DispatchApiClient": DispatchApiClient,
    "Receiver": Receiver,
    "Actor": Actor,
    "Any": Any,
    "Self": Self,
}


class _IdleActor(Actor):
    """An actor that does nothing until stopped."""

    async def _run(self) -> None:
        await asyncio.Event().wait()


class DocExample:
    """What an invisible setup block gets as `example`: a local service and helpers.

    The service is started on first use, on the document's event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._service: LocalDispatchService | None = None
        self._client: DispatchApiClient | None = None
        self._done = asyncio.Event()
        self.actors: list[Actor] = []
        """The actors `actor_factory` made."""

    async def _running(self) -> LocalDispatchService:
        if self._service is None:
            self._service = LocalDispatchService(database=":memory:")
            await self._service.start()
        return self._service

    async def service(self) -> LocalDispatchService:
        """Return the local service (started)."""
        return await self._running()

    async def create(self, **fields: Any) -> ClientDispatch:
        """Create a dispatch of microgrid 1 running from now (fields override)."""
        service = await self._running()
        if self._client is None:
            self._client = DispatchApiClient(
                server_url=service.url, auth_key=service.key
            )
        arguments: dict[str, Any] = {
            "microgrid_id": 1,
            "type": "TEST",
            "start_time": "NOW",
            "duration": timedelta(minutes=10),
            "target": TargetIds(1),
        }
        arguments.update(fields)
        return await self._client.create(**arguments)

    def actor_factory(self) -> Any:
        """Return an actor factory whose first actor ends the example."""

        async def make_actor(
            info: DispatchInfo, receiver: Receiver[DispatchInfo]
        ) -> Actor:
            del info, receiver
            actor = _IdleActor()
            self.actors.append(actor)
            self.done()
            return actor

        return make_actor

    def done(self) -> None:
        """Mark the example's documented effect as reached; see the module doc."""
        self._done.set()

    async def wait_done(self) -> None:
        """Wait until `done()` was called."""
        await self._done.wait()

    async def aclose(self) -> None:
        """Stop what was started."""
        if self._client is not None:
            await self._client.disconnect()
        if self._service is not None:
            await self._service.stop()


def _setup(namespace: dict[str, Any]) -> None:
    loop = asyncio.new_event_loop()
    namespace.update(NAMESPACE)
    namespace["__name__"] = "documented_example"
    namespace["__loop__"] = loop
    namespace["__cwd__"] = os.getcwd()
    namespace["__tmp__"] = tmp = tempfile.TemporaryDirectory()
    namespace["__override__"] = getattr(typing, "override", None)
    namespace["example"] = DocExample(loop)
    os.chdir(tmp.name)
    if sys.version_info < (3, 12):
        typing.override = typing_extensions.override  # type: ignore[attr-defined]


def _teardown(namespace: dict[str, Any]) -> None:
    loop: asyncio.AbstractEventLoop = namespace["__loop__"]
    try:
        loop.run_until_complete(namespace["example"].aclose())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        os.chdir(namespace["__cwd__"])
        namespace["__tmp__"].cleanup()
        if sys.version_info < (3, 12):
            if namespace["__override__"] is None:
                del typing.override  # type: ignore[attr-defined]


async def _run_until_done(code: Any, namespace: dict[str, Any]) -> None:
    example: DocExample = namespace["example"]
    block = asyncio.ensure_future(eval(code, namespace))
    done = asyncio.ensure_future(example.wait_done())
    try:
        async with asyncio.timeout(TIMEOUT):
            await asyncio.wait({block, done}, return_when=asyncio.FIRST_COMPLETED)
        if not block.done():
            # The example waits forever by design; its documented effect was seen.
            block.cancel()
            try:
                await block
            except asyncio.CancelledError:
                return
        block.result()
    finally:
        done.cancel()
        if not block.done():
            block.cancel()


def evaluate_python(example: Example) -> None:
    """Run one python block in its document's namespace."""
    source = "\n" * example.line + str(example.parsed)
    code = compile(
        ast.parse(source, example.path, "exec"),
        example.path,
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    namespace = example.namespace
    if code.co_flags & inspect.CO_COROUTINE:
        namespace["__loop__"].run_until_complete(_run_until_done(code, namespace))
    else:
        exec(code, namespace)


class ReasonedSkipParser(SkipParser):
    """`skip:` markers, each of which must give its reason."""

    def __call__(self, document: Document) -> Iterable[Region]:
        """Yield the document's skip regions; fail on one without a reason."""
        for region in super().__call__(document):
            action, reason = region.parsed
            if action in ("next", "start") and not (reason or "").strip():
                raise ValueError(
                    f"{document.path}: 'skip: {action}' needs a reason, "
                    f'as in <!-- skip: {action} "why it cannot run" -->'
                )
            yield region


_PARSERS: list[Parser] = [
    CodeBlockParser("python", evaluate_python),
    ReasonedSkipParser(),
]

pytest_collect_file = (
    Sybil(
        parsers=_PARSERS,
        path="./docs",
        patterns=["*.md"],
        setup=_setup,
        teardown=_teardown,
        name="docs",
    )
    + Sybil(
        parsers=_PARSERS,
        path="./src",
        patterns=["*.py"],
        document_types={".py": PythonDocStringDocument},
        setup=_setup,
        teardown=_teardown,
        name="docstrings",
    )
).pytest()
