# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Message size: list pages adapt, a dispatch or stream message too large is skipped.

A list page over the receive limit shrinks; a dispatch too large alone is logged
and skipped. A stream message too large ends the stream (gRPC fails the call): it
is logged as lost and a re-list recovers it, while the other events keep coming.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence, Set
from datetime import timedelta
from typing import Any

import grpc
import pytest
from frequenz.api.common.v1alpha8.pagination.pagination_info_pb2 import PaginationInfo
from frequenz.api.dispatch.v1.dispatch_pb2 import ListMicrogridDispatchesResponse
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatch
from frequenz.dispatch._sync import Backoff, DispatchSync
from frequenz.dispatch.testing import FakeClock, settle

from .conftest import START
from .fake_service import ControllableClient
from .helpers import MICROGRID, create, make_dispatch
from .test_sync import FAST_RETRY, advance_until, elapse, lifecycle, observed

LIMIT = 3
"""The fake channel 'receives' pages of at most this many dispatches."""


def _exhausted() -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        "Received message larger than max",
        None,
    )


class _Stub:
    def __init__(self, count: int, too_big: int | None) -> None:
        self.pb = [
            make_dispatch(i, start_time=START + timedelta(days=1)).to_protobuf()
            for i in range(1, count + 1)
        ]
        self.too_big = too_big
        self.sizes: list[int] = []

    async def ListMicrogridDispatches(self, request: Any, timeout: Any) -> Any:
        del timeout
        # Like the real API: a token carries the page size it was made with.
        token = request.pagination_params.page_token
        offset, size = (
            map(int, token.split(":"))
            if token
            else (0, request.pagination_params.page_size)
        )
        self.sizes.append(size)
        page = self.pb[offset : offset + size]
        ids = [p.metadata.dispatch_id for p in page]
        if len(page) > LIMIT or self.too_big in ids:
            raise _exhausted()
        end = offset + size
        return ListMicrogridDispatchesResponse(
            dispatches=page,
            pagination_info=PaginationInfo(
                next_page_token=f"{end}:{size}" if end < len(self.pb) else ""
            ),
        )


class _Client:
    """Just what the sync uses of the raw client."""

    def __init__(self, stub: _Stub) -> None:
        self.stub: Any = stub
        self.call_timeout = timedelta(seconds=5)
        self.server_url = "grpc://fake"


class _Target:
    def __init__(self) -> None:
        self.calls: list[tuple[list[int], bool]] = []

    def reconcile(
        self,
        dispatches: Sequence[Dispatch],
        unreadable: Set[DispatchId],
        complete: bool = True,
    ) -> None:
        del unreadable
        self.calls.append(([int(d.id) for d in dispatches], complete))

    def apply(self, event: Any, dispatch: Dispatch) -> None:
        del event, dispatch

    def apply_unreadable(self, event: Any, dispatch_id: DispatchId, when: Any) -> None:
        del event, dispatch_id, when


async def test_pages_shrink_and_grow_back() -> None:
    stub = _Stub(20, None)
    sync = DispatchSync(MICROGRID, _Client(stub), _Target())
    dispatches, _, complete = await sync._list_all()
    assert [int(d.id) for d in dispatches] == list(range(1, 21))
    assert complete
    assert stub.sizes[0] == DispatchSync.LIST_PAGE_SIZE
    assert set(stub.sizes) == {1000, 500, 250, 125, 62, 31, 15, 7, 3}
    # The next sync starts from twice the size that worked.
    stub.sizes.clear()
    await sync._list_all()
    assert stub.sizes[0] == 6


async def test_a_dispatch_too_large_alone_is_logged_and_the_list_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stub = _Stub(10, too_big=5)
    sync = DispatchSync(MICROGRID, _Client(stub), _Target())
    dispatches, _, complete = await sync._list_all()
    # Shrunk to 1 while dispatch 5 came up: 1..4 listed, then 5 skipped.
    assert [int(d.id) for d in dispatches] == [1, 2, 3, 4]
    assert not complete  # held dispatches beyond it are kept, not deleted
    assert "listed after dispatch 4" in caplog.text


# Stream messages: gRPC fails the whole call on one it cannot receive


async def test_a_stream_message_too_large_is_logged_and_recovered_by_a_relist(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = ControllableClient()
    one = await create(client, start_time=clock.now() + timedelta(hours=1))
    two = await create(client, start_time=clock.now() + timedelta(hours=2))
    async with observed(client) as watched:
        service = watched.service
        assert len(watched.lifecycle_events()) == 2
        await elapse(clock, timedelta(minutes=1))

        # One event arrives; the next one (an update of `two`) is too large:
        # gRPC ends the stream with RESOURCE_EXHAUSTED and it is never decoded.
        await client.update(
            microgrid_id=MICROGRID, dispatch_id=one.id, new_fields={"payload": {"a": 1}}
        )
        service.break_streams_with(_exhausted())
        await client.update(
            microgrid_id=MICROGRID, dispatch_id=two.id, new_fields={"payload": {"b": 2}}
        )
        broke_at = clock.now()
        await advance_until(clock, lambda: watched.scheduler.resyncs == 2)

        relisted = [c.at for c in service.calls if c.kind == "list"][-1]
        assert relisted - broke_at <= FAST_RETRY.initial  # at once, not an outage
        events = watched.lifecycle_events()
        assert [(lifecycle(e), dict(e.dispatch.payload)) for e in events] == [
            (("Updated", int(one.id)), {"a": 1.0}),  # received before the loss
            (("Updated", int(two.id)), {"b": 2.0}),  # recovered by the re-list
        ]
        lost = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.ERROR and r.name.startswith("frequenz.dispatch")
        ]
        assert len(lost) == 1
        assert "microgrid 1" in lost[0]
        assert "RESOURCE_EXHAUSTED" in lost[0]
        assert "one dispatch event is lost" in lost[0]
        assert "re-listing every dispatch" in lost[0]
        # Not reported as an outage: the service and the network work.
        assert "Cannot sync" not in caplog.text
        assert "RESOURCE_EXHAUSTED" in (watched.scheduler.status.last_error or "")

        # The other events keep coming, on the new stream.
        three = await create(client, start_time=clock.now() + timedelta(hours=3))
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(three.id))
        ]


async def test_a_stream_message_too_large_at_subscription_still_syncs(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    client = ControllableClient()
    client.service.fail_next_stream(_exhausted())
    existing = await create(client, start_time=clock.now() + timedelta(hours=1))
    async with observed(client) as watched:
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(existing.id))
        ]
        assert clock.now() - START <= FAST_RETRY.initial
        assert "one dispatch event is lost" in caplog.text
        later = await create(client, start_time=clock.now() + timedelta(hours=1))
        await settle()
        assert [lifecycle(e) for e in watched.lifecycle_events()] == [
            ("Created", int(later.id))
        ]


async def test_stream_messages_too_large_over_and_over_back_off(
    clock: FakeClock,
) -> None:
    # A stream that fails at once every time never lets a sync through: the
    # retries back off instead of hitting the service at the initial delay.
    client = ControllableClient()
    service = client.service
    open_stream = service.StreamMicrogridDispatches

    def always_too_large(request: Any, timeout: Any = None) -> Any:
        service.fail_next_stream(_exhausted())
        return open_stream(request, timeout)

    service.StreamMicrogridDispatches = always_too_large  # type: ignore[method-assign]
    backoff = Backoff(
        initial=timedelta(seconds=1), maximum=timedelta(seconds=8), jitter=False
    )
    async with observed(client, backoff=backoff, initialize=False):
        await elapse(clock, timedelta(seconds=30))
    streams = [c.at - START for c in service.calls if c.kind == "stream"]
    assert streams == [timedelta(seconds=s) for s in (0, 1, 3, 7, 15, 23)]
