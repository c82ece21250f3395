# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Back-off and the outage log: full jitter everywhere, a summary a minute.

Time is the fake event loop's (the sync's sleeps and its log read the loop's
clock), and the jitter comes from a stub, so every delay is exact.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from frequenz.dispatch._sync import Backoff
from frequenz.dispatch.testing import FakeClock

from .conftest import START
from .fake_service import ControllableClient
from .test_sync import advance_until, elapse, observed


class StubRandom:
    """Returns a fixed fraction of the range asked for, and records the ranges."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction
        self.ranges: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float, /) -> float:
        """Return `a + fraction * (b - a)`."""
        self.ranges.append((a, b))
        return a + self.fraction * (b - a)


class LoopTimeLog(logging.Handler):
    """Collects the sync's log lines with the (fake) loop time they were made at."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[tuple[float, int, str]] = []
        self.start = asyncio.get_running_loop().time()

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the line."""
        now = asyncio.get_running_loop().time() - self.start
        self.lines.append((now, record.levelno, record.getMessage()))

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        """Return the lines (time, text) matching a regular expression."""
        return [(t, m) for t, _, m in self.lines if re.search(pattern, m)]


@pytest.fixture
async def sync_log() -> AsyncIterator[LoopTimeLog]:
    """Capture `frequenz.dispatch._sync`'s log with loop times."""
    handler = LoopTimeLog()
    logger = logging.getLogger("frequenz.dispatch._sync")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


# Full jitter


def test_every_delay_is_drawn_uniformly_below_an_exponential_cap() -> None:
    stub = StubRandom(0.25)
    backoff = Backoff(
        initial=timedelta(seconds=0.5), maximum=timedelta(seconds=30), rng=stub
    )
    delays = [backoff.delay(failures) for failures in range(12)]
    caps = [0.5, 0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert stub.ranges == [(0.0, cap) for cap in caps]
    assert delays == [cap * 0.25 for cap in caps]
    # A huge count of failures stays capped (and does not overflow).
    assert backoff.delay(10**6) == 30 * 0.25


def test_jittered_delays_are_spread_over_the_whole_range() -> None:
    backoff = Backoff(
        initial=timedelta(seconds=1),
        maximum=timedelta(seconds=30),
        rng=random.Random(20260105),
    )
    delays = [backoff.delay(3) for _ in range(10_000)]  # cap 4 s
    assert min(delays) >= 0 and max(delays) <= 4
    # Uniform on [0, 4]: a quarter in each second, mean 2 (seeded: exact runs).
    per_second = [sum(1 for d in delays if s <= d < s + 1) for s in range(4)]
    assert all(2300 < count < 2700 for count in per_second), per_second
    assert abs(sum(delays) / len(delays) - 2) < 0.05
    assert min(delays) < 0.01 and max(delays) > 3.99  # down to 0, up to the cap


async def test_failed_attempts_wait_jittered_delays(clock: FakeClock) -> None:
    stub = StubRandom(0.5)
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=8), rng=stub
    )
    client = ControllableClient()
    client.service.fail_lists(5)
    async with observed(client, backoff=backoff):
        lists = [c.at - START for c in client.service.calls if c.kind == "list"]
        # Half of 1, 2, 4, 8, 8 s after each failure.
        assert lists == [timedelta(seconds=s) for s in (0, 0.5, 1.5, 3.5, 7.5, 11.5)]
        assert stub.ranges == [(0.0, cap) for cap in (1, 2, 4, 8, 8)]


@pytest.mark.parametrize(
    "end_stream",
    [
        pytest.param(lambda service: service.close_streams(), id="clean-close"),
        pytest.param(
            lambda service: service.break_streams_with(_exhausted()),
            id="message-too-large",
        ),
        pytest.param(
            lambda service: service.break_streams_with(RuntimeError("bug")),
            id="crash-restart",
        ),
        pytest.param(
            lambda service: service.break_streams_with(_internal()),
            id="service-error",
        ),
    ],
)
async def test_every_reconnect_waits_a_jittered_delay(
    clock: FakeClock, end_stream: Any
) -> None:
    stub = StubRandom(0.5)
    backoff = Backoff(
        initial=timedelta(seconds=2), maximum=timedelta(seconds=8), rng=stub
    )
    async with observed(backoff=backoff) as watched:
        await elapse(clock, timedelta(minutes=1))
        assert stub.ranges == []
        ended_at = clock.now()
        end_stream(watched.service)
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        relisted = [c.at for c in watched.service.calls if c.kind == "list"][-1]
        assert stub.ranges == [(0.0, 2.0)]
        assert relisted - ended_at == timedelta(seconds=1)  # half of the cap


async def test_crash_restarts_back_off_until_a_run_lasts(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    stub = StubRandom(1.0)
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=8), rng=stub
    )
    client = ControllableClient()
    fail_streams(client, 4, RuntimeError("bug"))
    async with observed(client, backoff=backoff, initialize=False) as watched:
        await advance_until(clock, lambda: watched.scheduler.resyncs == 1)
        streams = [c.at - START for c in client.service.calls if c.kind == "stream"]
        # 1, 2, 4, 8 s after each crash (the fraction 1 gives the caps).
        assert streams == [timedelta(seconds=s) for s in (0, 1, 3, 7, 15)]
        assert caplog.text.count("restarting it") == 4
        # After a long healthy run a crash starts over at the initial delay.
        await elapse(clock, timedelta(minutes=5))
        crashed_at = clock.now()
        watched.service.break_streams_with(RuntimeError("bug"))
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        restarted = [c.at for c in client.service.calls if c.kind == "stream"][-1]
        assert restarted - crashed_at == timedelta(seconds=1)


def fail_streams(client: ControllableClient, count: int, error: Exception) -> None:
    """Make the next `count` streams fail with `error` when first read."""
    service = client.service
    open_stream = service.StreamMicrogridDispatches
    left = [count]

    def stream(request: Any, timeout: Any = None) -> Any:
        if left[0] > 0:
            left[0] -= 1
            service.fail_next_stream(error)
        return open_stream(request, timeout)

    service.StreamMicrogridDispatches = stream  # type: ignore[method-assign]


# The log of a long outage


async def test_a_long_outage_logs_its_first_attempts_then_a_summary_a_minute(
    clock: FakeClock, sync_log: LoopTimeLog
) -> None:
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=4), jitter=False
    )
    client = ControllableClient()
    client.service.fail_lists(10**6)
    async with observed(client, backoff=backoff, initialize=False) as watched:
        await elapse(clock, timedelta(minutes=10))
        client.service.fail_lists(0)
        await advance_until(clock, lambda: watched.scheduler.resyncs == 1)
    failed = client.service.call_kinds.count("list") - 1

    detailed = sync_log.matching(r"\(attempt \d+\)")
    assert [(t, m.split(" from ")[0]) for t, m in detailed] == [
        (0, "Cannot sync dispatches"),
        (1, "Cannot sync dispatches"),
        (3, "Cannot sync dispatches"),
    ]
    for (_, text), attempt, next_try in zip(
        detailed, (1, 2, 3), (1, 2, 4), strict=True
    ):
        assert f"microgrid 1 at mock (attempt {attempt})" in text
        assert "UNAVAILABLE: list failed" in text  # the cause
        assert f"next try in {next_try}.0 s" in text

    summaries = sync_log.matching("Still cannot sync")
    times = [t for t, _ in summaries]
    assert times[0] >= 60  # a minute after the last detailed line
    assert all(b - a >= 60 for a, b in itertools.pairwise(times))
    assert len(summaries) == 9  # 10 minutes: about one a minute, no more
    counted = 3
    for t, text in summaries:
        found = re.search(r"after (\d+) s: (\d+) attempts \((\d+) since", text)
        assert found is not None, text
        assert abs(int(found[1]) - t) <= 1
        attempts, since = int(found[2]), int(found[3])
        assert attempts == counted + since  # nothing counted twice or lost
        counted = attempts
        assert "last cause UNAVAILABLE: list failed; next try in 4.0 s" in text

    assert len(sync_log.lines) == 3 + 9 + 1  # and not one line per retry
    recovered = sync_log.matching("re-synced")
    assert len(recovered) == 1
    assert recovered[0][0] >= 600
    assert f"and {failed} failed attempts" in recovered[0][1]
    assert sync_log.lines[-1][1] == logging.INFO


class FakeChannel:
    """A channel that reconnects every second while the service is down."""

    def __init__(self, client: ControllableClient) -> None:
        self._service = client.service
        self.attempts = 0

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """Return READY while the service is up, else connecting / failing."""
        del try_to_connect
        if self._service.connected:
            return grpc.ChannelConnectivity.READY
        second = int(asyncio.get_running_loop().time())
        return (
            grpc.ChannelConnectivity.TRANSIENT_FAILURE
            if second % 2
            else grpc.ChannelConnectivity.CONNECTING
        )

    async def wait_for_state_change(
        self, last_observed_state: grpc.ChannelConnectivity
    ) -> None:
        """Return once the state differs from `last_observed_state`."""
        # The state follows the (fake) clock and a flag: poll it, 10 times a second.
        while self.get_state() == last_observed_state:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


class ChannelClient(ControllableClient):
    """A controllable client with a gRPC-like channel."""

    def __init__(self) -> None:
        super().__init__()
        self.fake_channel = FakeChannel(self)

    @property
    def channel(self) -> Any:
        """The fake channel."""
        return self.fake_channel


async def test_waiting_for_the_channel_logs_a_summary_a_minute(
    clock: FakeClock, sync_log: LoopTimeLog
) -> None:
    client = ChannelClient()
    async with observed(client) as watched:
        await elapse(clock, timedelta(minutes=1))
        sync_log.lines.clear()
        sync_log.start = asyncio.get_running_loop().time()

        watched.service.break_streams()
        await elapse(clock, timedelta(minutes=5, seconds=30))
        watched.service.reconnect()
        back_at = clock.now()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)
        relisted = [c.at for c in watched.service.calls if c.kind == "list"][-1]
        assert relisted - back_at <= timedelta(seconds=0.2)  # the channel's pace

    first = sync_log.matching(r"\(attempt 1\)")
    assert len(first) == 1
    assert "UNAVAILABLE: connection lost" in first[0][1]
    assert "next try as soon as the channel connects" in first[0][1]
    assert first[0][1].startswith("Cannot sync dispatches from microgrid 1")

    waiting = sync_log.matching("Still waiting")
    times = [t for t, _ in waiting]
    assert len(waiting) == 5  # 5.5 minutes, the channel changing every second
    assert all(b - a >= 60 for a, b in itertools.pairwise([0.0, *times]))
    assert all(
        "(1 attempts): the channel is" in m and "retries the connection" in m
        for _, m in waiting
    )

    recovered = sync_log.matching("re-synced")
    assert len(recovered) == 1 and "after 330" in recovered[0][1]
    assert len(sync_log.lines) == 1 + 5 + 1


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None
    )


def _exhausted() -> grpc.aio.AioRpcError:
    return _rpc_error(
        grpc.StatusCode.RESOURCE_EXHAUSTED, "Received message larger than max"
    )


def _internal() -> grpc.aio.AioRpcError:
    return _rpc_error(grpc.StatusCode.INTERNAL, "the service failed")
