# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The documented `Dispatcher` examples, run against the local service.

The code is read at test time from the fenced ```python blocks of the
`Dispatcher` class docstring (the documented API's examples, verbatim) and runs
unchanged. Only its environment differs from a production run:

* `DISPATCH_API_URL` / `DISPATCH_API_KEY` point at a `LocalDispatchService` on
  loopback (real gRPC, real event loop, real clock);
* names the examples use without importing them are put into the namespace they
  run in (see `_NAMESPACE`);
* after the example's own imports ran, three names in its namespace are replaced
  by stand-ins that behave the same but also tell the test what happened, so that
  the test can await the effects instead of sleeping: `Dispatcher` is a subclass
  that signals when the example has subscribed (made its receiver, or called
  `start_managing`), `MagicMock` makes real `MagicMock`s that also report calls to
  `start`/`stop`/`reconfigure`, and `print` prints and counts the lines;
* the examples that loop forever run as a task, which is cancelled once their
  effects were checked.

Dispatches are created through a separate `DispatchApiClient`.
"""

from __future__ import annotations

import asyncio
import builtins
import linecache
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest.mock import DEFAULT, MagicMock

import pytest
from frequenz.channels import Receiver
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory as ComponentCategory,
)
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.types import TargetCategories, TargetIds
from frequenz.sdk.actor import Actor

from frequenz.dispatch import Dispatcher, DispatchInfo
from frequenz.dispatch.local_service import LocalDispatchService

from .conftest import MICROGRID, TIMEOUT, create, in_seconds, receive

SECOND = timedelta(seconds=1)

EXPECTED_TITLES = {
    "Managing an actor",
    "Processing running state change dispatches",
    "Getting notification about dispatch lifecycle events",
    "Creating a new dispatch and then modifying it.",
}

_NAMESPACE: dict[str, Any] = {
    # The examples use these names without importing them (in annotations, which
    # are evaluated when `create_actor` is defined).
    "DispatchInfo": DispatchInfo,
    "Receiver": Receiver,
    "Actor": Actor,
}


def _dispatcher_docstring() -> str:
    doc = Dispatcher.__doc__
    assert doc is not None, "Dispatcher has no docstring"
    return doc


def documented_examples() -> dict[str, str]:
    """Return the code of the `Dispatcher` docstring examples, by title."""
    examples: dict[str, str] = {}
    title: str | None = None
    lines = _dispatcher_docstring().splitlines()
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        if heading := re.match(r"Example:\s*(.+)$", stripped):
            title = heading.group(1)
        elif stripped == "```python":
            end = next(
                i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"
            )
            assert title is not None, "a code block without an Example title"
            examples[title] = textwrap.dedent("\n".join(lines[index + 1 : end]))
            title = None
            index = end
        index += 1
    return examples


def load(title: str) -> dict[str, Any]:
    """Run an example's module-level code; return the namespace it defined."""
    code = documented_examples()[title]
    filename = f"<Dispatcher example: {title}>"
    # Tracebacks through the example show its lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "dispatcher_example", **_NAMESPACE}
    exec(compile(code, filename, "exec"), namespace)
    return namespace


class Subscribed:
    """Makes the `Dispatcher` stand-in: it signals once the example subscribed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def dispatcher_class(self) -> type[Dispatcher]:
        """Return a `Dispatcher` subclass that sets this event on subscription."""
        event = self._event

        class ObservedDispatcher(Dispatcher):
            """A `Dispatcher` that tells the test when the example subscribed."""

            def new_lifecycle_events_receiver(self, *args: Any, **kwargs: Any) -> Any:
                receiver = super().new_lifecycle_events_receiver(*args, **kwargs)
                event.set()
                return receiver

            def new_running_state_event_receiver(
                self, *args: Any, **kwargs: Any
            ) -> Any:
                receiver = super().new_running_state_event_receiver(*args, **kwargs)
                event.set()
                return receiver

            def start_managing(self, *args: Any, **kwargs: Any) -> Any:
                done = super().start_managing(*args, **kwargs)
                event.set()
                return done

        return ObservedDispatcher

    async def wait(self) -> None:
        """Wait until the example has subscribed."""
        async with asyncio.timeout(TIMEOUT):
            await self._event.wait()


class MockFactory:
    """Stands in for `MagicMock`: real mocks that report some method calls."""

    REPORTED = ("start", "stop", "reconfigure")

    def __init__(self) -> None:
        self.made: list[MagicMock] = []
        self._calls: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    def __call__(self, *args: Any, **kwargs: Any) -> MagicMock:
        mock = MagicMock(*args, **kwargs)
        for name in self.REPORTED:
            getattr(mock, name).side_effect = self._reporter(name)
        self.made.append(mock)
        return mock

    def _reporter(self, name: str) -> Callable[..., Any]:
        def report(*args: Any, **kwargs: Any) -> Any:
            del args
            self._calls.put_nowait((name, kwargs))
            return DEFAULT

        return report

    async def next_call(self, timeout: float = TIMEOUT) -> tuple[str, dict[str, Any]]:
        """Return the next reported call (method name, keyword arguments)."""
        async with asyncio.timeout(timeout):
            return await self._calls.get()

    @property
    def pending_calls(self) -> int:
        """Reported calls not yet taken with `next_call`."""
        return self._calls.qsize()


class PrintHook:
    """Stands in for `print`: prints, and counts the lines for the test to await."""

    def __init__(self) -> None:
        self.count = 0
        self._printed = asyncio.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        builtins.print(*args, **kwargs)
        self.count += 1
        self._printed.set()

    async def wait_for(self, count: int, timeout: float = TIMEOUT) -> None:
        """Wait until `count` lines were printed in total."""
        async with asyncio.timeout(timeout):
            while self.count < count:
                self._printed.clear()
                await self._printed.wait()


@pytest.fixture
def environment(service: LocalDispatchService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the examples' environment variables at the local service."""
    monkeypatch.setenv("DISPATCH_API_URL", service.url)
    monkeypatch.setenv("DISPATCH_API_KEY", service.key)


@pytest.fixture
async def running_example() -> AsyncIterator[Callable[[dict[str, Any]], None]]:
    """Run an example's endless `run()` as a task; cancel it at the end."""
    tasks: list[asyncio.Task[Any]] = []

    def start(namespace: dict[str, Any]) -> None:
        tasks.append(asyncio.create_task(namespace["run"]()))

    yield start
    for task in tasks:
        assert not task.done() or task.cancelled(), task
        task.cancel()
        async with asyncio.timeout(TIMEOUT):
            with pytest.raises(asyncio.CancelledError):
                await task


def _seconds_until(when: datetime) -> float:
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def test_examples_found() -> None:
    assert set(documented_examples()) == EXPECTED_TITLES


@pytest.mark.usefixtures("environment")
async def test_managing_an_actor(
    client: DispatchApiClient,
    running_example: Callable[[dict[str, Any]], None],
) -> None:
    example = load("Managing an actor")
    mocks = MockFactory()
    example["MagicMock"] = mocks
    subscribed = Subscribed()
    example["Dispatcher"] = subscribed.dispatcher_class()
    running_example(example)
    await subscribed.wait()

    start = in_seconds(1)
    first = await create(
        client,
        type="DISPATCH_TYPE",
        start_time=start,
        duration=None,
        payload={"id": 1},
    )
    # The start time is reached: the factory makes the actor, which is started.
    assert await mocks.next_call(_seconds_until(start) + TIMEOUT) == ("start", {})
    assert datetime.now(timezone.utc) >= start
    [actor] = mocks.made
    assert actor.dispatch == DispatchInfo(
        components=TargetIds(1, 2), dry_run=False, options={"id": 1}
    )
    assert isinstance(actor.receiver, Receiver)

    # MergeByType: a second running dispatch of the type reconfigures that actor.
    second = await create(
        client, type="DISPATCH_TYPE", start_time="NOW", duration=None, payload={"id": 2}
    )
    update = await receive(actor.receiver)
    assert update.options == {"id": 2}
    # When it goes, the actor gets the configuration of the one still running,
    # and is not stopped.
    await client.delete(microgrid_id=MICROGRID, dispatch_id=second.id)
    update = await receive(actor.receiver)
    assert update.options == {"id": 1}
    assert len(mocks.made) == 1
    assert mocks.pending_calls == 0

    # The last one goes: the actor is stopped.
    await client.delete(microgrid_id=MICROGRID, dispatch_id=first.id)
    name, _ = await mocks.next_call()
    assert name == "stop"
    assert actor.stop.call_count == 1


@pytest.mark.usefixtures("environment")
async def test_processing_running_state_changes(
    client: DispatchApiClient,
    running_example: Callable[[dict[str, Any]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load("Processing running state change dispatches")
    mocks = MockFactory()
    printed = PrintHook()
    example["MagicMock"] = mocks
    example["print"] = printed
    subscribed = Subscribed()
    example["Dispatcher"] = subscribed.dispatcher_class()
    running_example(example)
    await subscribed.wait()

    start = in_seconds(1)
    dispatch = await create(
        client,
        type="DISPATCH_TYPE",
        start_time=start,
        duration=2 * SECOND,
        target=TargetIds(3),
        payload={"power": 5},
    )
    await create(client, type="OTHER_TYPE", start_time=start, duration=2 * SECOND)

    # The window starts: it says so, and (the mock actor "is running")
    # reconfigures the actor.
    name, arguments = await mocks.next_call(_seconds_until(start) + TIMEOUT)
    assert (name, arguments) == (
        "reconfigure",
        {
            "components": TargetIds(3),
            "run_parameters": {"power": 5},
            "dry_run": False,
            "until": start + 2 * SECOND,
        },
    )
    await printed.wait_for(1)
    assert capsys.readouterr().out.splitlines() == [
        f"Executing dispatch {dispatch.id}, due on {dispatch.start_time}"
    ]

    # The window ends: the actor is stopped.
    name, arguments = await mocks.next_call(_seconds_until(start) + 2 + TIMEOUT)
    assert (name, arguments) == ("stop", {})
    assert datetime.now(timezone.utc) >= start + 2 * SECOND
    assert printed.count == 1
    assert mocks.pending_calls == 0
    assert len(mocks.made) == 1


@pytest.mark.usefixtures("environment")
async def test_lifecycle_events(
    client: DispatchApiClient,
    running_example: Callable[[dict[str, Any]], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = load("Getting notification about dispatch lifecycle events")
    printed = PrintHook()
    example["print"] = printed
    subscribed = Subscribed()
    example["Dispatcher"] = subscribed.dispatcher_class()
    running_example(example)
    await subscribed.wait()

    created = await create(client, type="DISPATCH_TYPE")
    await create(client, type="OTHER_TYPE")
    await client.update(
        microgrid_id=MICROGRID,
        dispatch_id=created.id,
        new_fields={"payload": {"x": "changed"}},
    )
    await client.delete(microgrid_id=MICROGRID, dispatch_id=created.id)
    await printed.wait_for(3)

    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "A dispatch was created",
        "A dispatch was updated",
        "A dispatch was deleted",
    ]
    assert all(f"id={created.id!r}" in line for line in lines), lines
    assert "{'x': 'changed'}" in lines[1]
    assert "OTHER_TYPE" not in "\n".join(lines)


@pytest.mark.usefixtures("environment")
async def test_creating_and_modifying_a_dispatch(client: DispatchApiClient) -> None:
    example = load("Creating a new dispatch and then modifying it.")
    before = datetime.now(timezone.utc)
    async with asyncio.timeout(TIMEOUT):
        await example["run"]()  # it asserts the modification itself

    [stored] = [d async for page in client.list(MICROGRID) for d in page]
    assert stored.type == "ECHO_FREQUENCY"
    assert before + 9 * 60 * SECOND <= stored.start_time
    assert stored.start_time <= datetime.now(timezone.utc) + 10 * 60 * SECOND
    assert stored.duration == 10 * 60 * SECOND
    assert stored.target == TargetCategories(ComponentCategory.INVERTER)
    assert stored.payload == {"font": "Times New Roman"}
