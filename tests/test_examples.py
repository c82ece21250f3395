# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The documented examples of `Dispatcher` and `ActorDispatcher` run.

The example code is read at test time from the fenced ```python blocks of the two
class docstrings (the documented API's examples, carried verbatim), so a changed example
is what gets tested, and a new or renamed example makes `test_examples_found`
fail. Each example runs unchanged, except for what a real server would need:

* `DispatchApiClient` is replaced in `frequenz.dispatch._dispatcher` by a factory
  returning a `FakeClient`, preloaded with the dispatches the example reacts to;
* the examples that loop forever run as a task that is cancelled once the expected
  effects were seen;
* names the examples use without importing them are injected into the namespace
  they run in (see `NAMESPACE`); on Python 3.11, `typing.override` (3.12+) is
  provided by `typing_extensions.override`;
* `MagicMock` and `ActorDispatcher` are, after the example's own imports ran,
  replaced in its namespace by recording stand-ins, so the test can look at the
  mocks the example makes and stop the `ActorDispatcher` it starts.
"""

from __future__ import annotations

import asyncio
import gc
import linecache
import logging
import re
import sys
import textwrap
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self
from unittest.mock import MagicMock

import pytest
import typing_extensions
from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory as ComponentCategory,
)
from frequenz.client.dispatch.types import TargetCategories, TargetIds
from frequenz.sdk.actor import Actor

from frequenz.dispatch import ActorDispatcher, Dispatcher, DispatchInfo
from frequenz.dispatch.testing import FakeClock

from .helpers import ApiClientFactory, create, make_dispatch

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)

EXPECTED_EXAMPLES = {
    ("Dispatcher", "Managing an actor"),
    ("Dispatcher", "Processing running state change dispatches"),
    ("Dispatcher", "Getting notification about dispatch lifecycle events"),
    ("Dispatcher", "Creating a new dispatch and then modifying it."),
    ("ActorDispatcher", "usage"),
}

NAMESPACE: dict[str, Any] = {
    # The examples use these names without importing them.
    "DispatchInfo": DispatchInfo,
    "Receiver": Receiver,
    "Actor": Actor,
    "Any": Any,
    "Self": Self,
}


@dataclass(frozen=True)
class Example:
    """A documented example."""

    owner: str
    """The class whose docstring it is in."""

    title: str
    """Its title, from the `Example...:` line before it."""

    code: str
    """Its code, dedented."""


def _class_docstring(owner: type) -> str:
    doc = owner.__doc__
    assert doc is not None, f"{owner.__name__} has no docstring"
    return doc


def _examples(docstring: str, owner: str) -> Iterator[Example]:
    title: str | None = None
    lines = docstring.splitlines()
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if heading := re.match(r"Example(?::\s*(.+)|\s+(\w+):)$", stripped):
            title = heading.group(1) or heading.group(2)
        elif stripped == "```python":
            end = next(
                i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"
            )
            assert title is not None, f"a code block in {owner} has no Example title"
            yield Example(
                owner, title, textwrap.dedent("\n".join(lines[index + 1 : end]))
            )
            title = None
            index = end
        index += 1


def documented_examples() -> dict[tuple[str, str], Example]:
    """Return the examples of `Dispatcher` and `ActorDispatcher`, by (class, title)."""
    found: dict[tuple[str, str], Example] = {}
    for owner in (Dispatcher, ActorDispatcher):
        for example in _examples(_class_docstring(owner), owner.__name__):
            found[(example.owner, example.title)] = example
    return found


class Recorder:
    """Replaces a callable in the example's namespace, keeping what it returns."""

    def __init__(self, wrapped: Any) -> None:
        self._wrapped = wrapped
        self.made: list[Any] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        made = self._wrapped(*args, **kwargs)
        self.made.append(made)
        return made


def load(owner: str, title: str) -> dict[str, Any]:
    """Run an example's module-level code; return the namespace it defined."""
    example = documented_examples()[(owner, title)]
    namespace = {"__name__": f"seed_example_{owner}", **NAMESPACE}
    filename = f"<example {owner}: {title}>"
    # Tracebacks through the example show its lines.
    lines = example.code.splitlines(keepends=True)
    linecache.cache[filename] = (len(example.code), None, lines, filename)
    exec(compile(example.code, filename, "exec"), namespace)
    return namespace


@pytest.fixture(autouse=True)
def _no_dispatch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the real service's settings out; let the examples' imports work."""
    monkeypatch.delenv("DISPATCH_API_URL", raising=False)
    monkeypatch.delenv("DISPATCH_API_KEY", raising=False)
    # The ActorDispatcher example imports `override` from typing (3.12+).
    if sys.version_info < (3, 12):
        monkeypatch.setattr(
            typing, "override", typing_extensions.override, raising=False
        )


def collect_garbage() -> None:
    """Collect what an example left behind, while still inside the test.

    Otherwise the finalizers of the example's objects may run in the middle of
    pytest's own `ast.parse` of a failure report, and CPython 3.11 (whose AST
    conversion keeps its recursion depth in per-interpreter state) then fails
    the whole session with "SystemError: AST constructor recursion depth
    mismatch".
    """
    gc.collect()


async def cancel(task: asyncio.Task[Any]) -> None:
    """Cancel an example's endless loop and wait until it has cleaned up."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    collect_garbage()


def test_examples_found() -> None:
    examples = documented_examples()
    assert set(examples) == EXPECTED_EXAMPLES
    for example in examples.values():
        compile(example.code, example.title, "exec")


async def test_managing_an_actor(clock: FakeClock, api: ApiClientFactory) -> None:
    t0 = clock.now()
    first = make_dispatch(
        1, start_time=t0 - MINUTE, type="DISPATCH_TYPE", payload={"id": 1}
    )
    api.client.set_dispatches(MicrogridId(1), [first])
    example = load("Dispatcher", "Managing an actor")
    mocks = Recorder(MagicMock)
    example["MagicMock"] = mocks

    task = asyncio.create_task(example["run"]())
    await clock.advance(SECOND)

    [actor] = mocks.made
    assert actor.dispatch == DispatchInfo(
        components=first.target, dry_run=False, options={"id": 1}
    )
    assert isinstance(actor.receiver, Receiver)
    actor.start.assert_called_once_with()

    # MergeByType: a second dispatch of the type updates the same actor.
    await create(
        api.client, type="DISPATCH_TYPE", start_time=t0 + MINUTE, payload={"id": 2}
    )
    await clock.advance(2 * MINUTE)
    assert len(mocks.made) == 1
    update = await asyncio.wait_for(actor.receiver.receive(), timeout=1)
    assert update.options == {"id": 2}
    assert not task.done()  # `await dispatcher` waits while the type is managed

    await cancel(task)
    actor.stop.assert_called_once()


async def test_processing_running_state_changes(
    clock: FakeClock, api: ApiClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = clock.now()
    dispatch = make_dispatch(
        1,
        start_time=t0 - MINUTE,
        type="DISPATCH_TYPE",
        payload={"power": 5},
        target=TargetIds(3),
    )
    other = make_dispatch(2, start_time=t0 - MINUTE, type="OTHER_TYPE")
    api.client.set_dispatches(MicrogridId(1), [dispatch, other])
    example = load("Dispatcher", "Processing running state change dispatches")
    mocks = Recorder(MagicMock)
    example["MagicMock"] = mocks

    task = asyncio.create_task(example["run"]())
    await clock.advance(SECOND)

    [actor] = mocks.made
    assert capsys.readouterr().out.splitlines() == [
        f"Executing dispatch {dispatch.id}, due on {dispatch.start_time}"
    ]
    # `actor.is_running` is a (truthy) mock attribute: it reconfigures.
    actor.reconfigure.assert_called_once_with(
        components=TargetIds(3),
        run_parameters={"power": 5},
        dry_run=False,
        until=t0 + 9 * MINUTE,
    )
    actor.stop.assert_not_called()

    await clock.advance_to(t0 + 10 * MINUTE)
    actor.stop.assert_called_once_with()
    assert capsys.readouterr().out == ""

    await cancel(task)


async def test_lifecycle_events(
    clock: FakeClock, api: ApiClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    example = load("Dispatcher", "Getting notification about dispatch lifecycle events")
    task = asyncio.create_task(example["run"]())
    await clock.advance(SECOND)

    start = clock.now() + timedelta(hours=1)
    # One change per second, as a real service's stream delivers them: changes
    # to one dispatch that arrive before the consumer reads coalesce.
    created = await create(api.client, type="DISPATCH_TYPE", start_time=start)
    await clock.advance(SECOND)
    await create(api.client, type="OTHER_TYPE", start_time=start)
    await clock.advance(SECOND)
    await api.client.update(
        microgrid_id=MicrogridId(1),
        dispatch_id=created.id,
        new_fields={"payload": {"x": 1}},
    )
    await clock.advance(SECOND)
    await api.client.delete(microgrid_id=MicrogridId(1), dispatch_id=created.id)
    await clock.advance(SECOND)

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "A dispatch was created",
        "A dispatch was updated",
        "A dispatch was deleted",
    ]
    assert all(f"id={created.id!r}" in line for line in lines)
    assert "'x': 1" in lines[1]  # the update carries the new payload
    assert "OTHER_TYPE" not in "".join(lines)

    await cancel(task)


async def test_creating_and_modifying_a_dispatch(
    clock: FakeClock, api: ApiClientFactory
) -> None:
    t0 = clock.now()
    example = load("Dispatcher", "Creating a new dispatch and then modifying it.")
    await example["run"]()  # it asserts the modification itself

    [stored] = api.client.dispatches(MicrogridId(1))
    assert stored.type == "ECHO_FREQUENCY"
    assert stored.start_time == t0 + 10 * MINUTE
    assert stored.duration == 10 * MINUTE
    assert stored.target == TargetCategories(ComponentCategory.INVERTER)
    assert stored.payload == {"font": "Times New Roman"}


class ActorDispatcherExample:
    """The ActorDispatcher example, with a dispatch of its type running."""

    def __init__(self, clock: FakeClock, api: ApiClientFactory) -> None:
        self.dispatch = make_dispatch(
            1,
            start_time=clock.now() - MINUTE,
            type="EXAMPLE_TYPE",
            payload={"mode": "eco"},
        )
        api.client.set_dispatches(MicrogridId(1), [self.dispatch])
        self.namespace = load("ActorDispatcher", "usage")
        self.services = Recorder(ActorDispatcher)
        self.namespace["ActorDispatcher"] = self.services
        self.task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        """Run the example's `main()`."""
        self.task = asyncio.create_task(self.namespace["main"]())

    async def stop(self) -> None:
        """End `main()` and the `ActorDispatcher` it runs (nothing else stops it)."""
        assert self.task is not None
        await cancel(self.task)
        for service in self.services.made:
            await service.stop()
        collect_garbage()


async def test_actor_dispatcher_example_creates_actor(
    clock: FakeClock, api: ApiClientFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    example = ActorDispatcherExample(clock, api)
    example.start()
    await clock.advance(SECOND)
    try:
        [service] = example.services.made
        assert service.is_running
        out = capsys.readouterr().out
        expected = DispatchInfo(
            components=example.dispatch.target, dry_run=False, options={"mode": "eco"}
        )
        # `new_with_dispatch` got the DispatchInfo and handed it to the actor.
        assert f"Received update: {expected}" in out.splitlines()
    finally:
        await example.stop()


async def test_actor_dispatcher_example_starts_actor(
    clock: FakeClock, api: ApiClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: the example's synchronous factory (MyActor.new_with_dispatch)
    # was awaited, which awaited the actor itself, so it was never started.
    caplog.set_level(logging.INFO, logger="frequenz.sdk.actor")
    example = ActorDispatcherExample(clock, api)
    example.start()
    await clock.advance(SECOND)
    try:
        # The SDK logs when an actor's task starts. The example's `_run` then
        # fails on its placeholder `other_recv = ...`, which is fine here.
        started = [
            r
            for r in caplog.records
            if r.name.startswith("frequenz.sdk.actor")
            and r.getMessage().startswith("Actor MyActor")
            and r.getMessage().endswith("Started.")
        ]
        assert started, "the example's MyActor was never started"
    finally:
        await example.stop()
