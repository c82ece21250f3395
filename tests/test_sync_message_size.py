# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""List pages adapt to the receive limit; a dispatch too large alone is skipped."""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import timedelta
from typing import Any

import grpc
import pytest
from frequenz.api.common.v1alpha8.pagination.pagination_info_pb2 import PaginationInfo
from frequenz.api.dispatch.v1.dispatch_pb2 import ListMicrogridDispatchesResponse
from frequenz.client.dispatch.types import DispatchId

from frequenz.dispatch import Dispatch
from frequenz.dispatch._sync import DispatchSync

from .conftest import START
from .helpers import MICROGRID, make_dispatch

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
