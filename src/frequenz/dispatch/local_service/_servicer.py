# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""The `MicrogridDispatchService` RPC handlers.

Status codes, besides OK: INVALID_ARGUMENT for any field the service refuses
(the message starts with the field's name, see `_validation`), NOT_FOUND for a
dispatch id that is not in the microgrid (ids above `MAX_ID` included),
UNAVAILABLE for streams when the service stops. The interceptors add
UNAUTHENTICATED (`_auth`) and INVALID_ARGUMENT for undecodable requests
(`_guard`); gRPC itself answers RESOURCE_EXHAUSTED for requests over 4 MiB.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
import grpc.aio
from frequenz.api.common.v1alpha8.streaming.event_pb2 import Event
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    CreateMicrogridDispatchRequest,
    CreateMicrogridDispatchResponse,
    DeleteMicrogridDispatchRequest,
    DeleteMicrogridDispatchResponse,
    DispatchData,
    GetMicrogridDispatchRequest,
    GetMicrogridDispatchResponse,
    ListMicrogridDispatchesRequest,
    ListMicrogridDispatchesResponse,
    StreamMicrogridDispatchesRequest,
    StreamMicrogridDispatchesResponse,
    UpdateMicrogridDispatchRequest,
    UpdateMicrogridDispatchResponse,
)

from ._convert import (
    StoredDispatch,
    micros_to_timestamp,
    round_to_second,
    timestamp_to_micros,
    wall_clock_micros,
)
from ._events import EventBroker
from ._filters import check_filter, matches
from ._mask import apply_update, check_paths
from ._pagination import paginate
from ._storage import AsyncDispatchStorage
from ._validation import (
    MAX_ID,
    InvalidArgumentError,
    validate_dispatch_data,
    validate_microgrid_id,
    validate_start_time,
    validate_timestamp,
)

Context = grpc.aio.ServicerContext[Any, Any]
"""The servicer context type of all handlers."""


async def _invalid_argument(context: Context, error: InvalidArgumentError) -> NoReturn:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


async def _check_microgrid(context: Context, microgrid_id: int) -> None:
    try:
        validate_microgrid_id(microgrid_id)
    except InvalidArgumentError as error:
        await _invalid_argument(context, error)


async def _check_ids(context: Context, microgrid_id: int, dispatch_id: int) -> None:
    """Refuse ids that cannot be stored; such a dispatch cannot exist."""
    await _check_microgrid(context, microgrid_id)
    if dispatch_id > MAX_ID:
        await _not_found(context, microgrid_id, dispatch_id)


async def _not_found(context: Context, microgrid_id: int, dispatch_id: int) -> NoReturn:
    await context.abort(
        grpc.StatusCode.NOT_FOUND,
        f"dispatch_id: no dispatch {dispatch_id} in microgrid {microgrid_id}",
    )


class DispatchServicer(dispatch_pb2_grpc.MicrogridDispatchServiceServicer):
    """Implements every RPC of the Dispatch API on top of the storage."""

    def __init__(
        self,
        storage: AsyncDispatchStorage,
        broker: EventBroker,
        *,
        clock: Callable[[], int] = wall_clock_micros,
    ) -> None:
        """Create the servicer.

        Args:
            storage: The (open) storage.
            broker: Where change events are published.
            clock: Returns the current time in microseconds since the epoch.
        """
        self._storage = storage
        self._broker = broker
        self._clock = clock
        # Writes are serialized so that events are published in commit order.
        self._write_lock = asyncio.Lock()

    async def _write(
        self,
        write: Callable[[], Awaitable[StoredDispatch | None]],
        microgrid_id: int,
        event: Event.ValueType,
    ) -> StoredDispatch | None:
        """Run a write and publish its event, even if the caller is cancelled.

        A write that was committed must reach subscribers, or they would be out
        of sync with the database; hence the shield around write and publish.
        """

        async def write_and_publish() -> StoredDispatch | None:
            async with self._write_lock:
                stored = await write()
                if stored is not None:
                    self._broker.publish(
                        microgrid_id,
                        StreamMicrogridDispatchesResponse(
                            dispatch=stored.to_protobuf(), event=event
                        ),
                    )
                return stored

        return await asyncio.shield(write_and_publish())

    async def ListMicrogridDispatches(
        self, request: ListMicrogridDispatchesRequest, context: Context
    ) -> ListMicrogridDispatchesResponse:
        """List the dispatches of a microgrid, filtered, sorted and paginated.

        Args:
            request: The request.
            context: The call context.

        Returns:
            One page of dispatches.
        """
        await _check_microgrid(context, request.microgrid_id)
        try:
            check_filter(request.filter)
            dispatches = await self._storage.run(lambda s: s.list(request.microgrid_id))
            matching = [d for d in dispatches if matches(d, request.filter)]
            page = paginate(request, matching)
        except InvalidArgumentError as error:
            await _invalid_argument(context, error)
        return ListMicrogridDispatchesResponse(
            dispatches=page.messages,
            pagination_info=page.info,
        )

    async def StreamMicrogridDispatches(
        self, request: StreamMicrogridDispatchesRequest, context: Context
    ) -> AsyncIterator[StreamMicrogridDispatchesResponse]:
        """Stream the create, update and delete events of a microgrid.

        The subscription is registered before the initial metadata is sent, so
        a client that awaits the initial metadata knows that every change made
        from then on will reach it.

        Args:
            request: The request.
            context: The call context.

        Yields:
            The events, until the service stops.
        """
        await _check_microgrid(context, request.microgrid_id)
        subscription = self._broker.subscribe(request.microgrid_id)
        try:
            await context.send_initial_metadata(())
            async for event in subscription:
                yield event
        finally:
            subscription.close()
        # Only a stopping service ends the subscription. UNAVAILABLE (not OK)
        # makes clients retry instead of treating the stream as finished.
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the service is stopping")

    async def CreateMicrogridDispatch(
        self, request: CreateMicrogridDispatchRequest, context: Context
    ) -> CreateMicrogridDispatchResponse:
        """Create a dispatch.

        Args:
            request: The request.
            context: The call context.

        Returns:
            The created dispatch.
        """
        await _check_microgrid(context, request.microgrid_id)
        data = DispatchData()
        data.CopyFrom(request.dispatch_data)
        now_us = self._clock()
        try:
            if request.start_immediately:
                data.start_time.CopyFrom(micros_to_timestamp(now_us))
            else:
                if not data.HasField("start_time"):
                    raise InvalidArgumentError(
                        "dispatch_data.start_time",
                        "must be set unless start_immediately is set",
                    )
                validate_timestamp(data.start_time, "dispatch_data.start_time")
                start_us = timestamp_to_micros(data.start_time)
                validate_start_time(start_us, now_us, "dispatch_data.start_time")
                data.start_time.CopyFrom(micros_to_timestamp(round_to_second(start_us)))
            validate_dispatch_data(data, "dispatch_data.")
        except InvalidArgumentError as error:
            await _invalid_argument(context, error)
        # The creation and update times are read on the storage thread while
        # the write lock is held, so they increase in commit (and id) order.
        stored = await self._write(
            lambda: self._storage.run(
                lambda s: s.insert(request.microgrid_id, data, self._clock())
            ),
            request.microgrid_id,
            Event.EVENT_CREATED,
        )
        assert stored is not None
        return CreateMicrogridDispatchResponse(dispatch=stored.to_protobuf())

    async def UpdateMicrogridDispatch(
        self, request: UpdateMicrogridDispatchRequest, context: Context
    ) -> UpdateMicrogridDispatchResponse:
        """Change the fields of a dispatch named in the update mask.

        Args:
            request: The request.
            context: The call context.

        Returns:
            The updated dispatch.
        """
        await _check_ids(context, request.microgrid_id, request.dispatch_id)
        paths = list(request.update_mask.paths)
        now_us = self._clock()

        def change(current: DispatchData) -> DispatchData:
            # Runs inside the storage transaction: raising here leaves the
            # stored dispatch untouched.
            new_data = apply_update(current, request.update, paths)
            if "start_time" in paths:
                validate_timestamp(new_data.start_time, "update.start_time")
                start_us = timestamp_to_micros(new_data.start_time)
                validate_start_time(start_us, now_us, "update.start_time")
                new_data.start_time.CopyFrom(
                    micros_to_timestamp(round_to_second(start_us))
                )
            validate_dispatch_data(new_data, "update.")
            return new_data

        try:
            check_paths(paths)
            stored = await self._write(
                lambda: self._storage.run(
                    lambda s: s.update(
                        request.microgrid_id, request.dispatch_id, change, self._clock()
                    )
                ),
                request.microgrid_id,
                Event.EVENT_UPDATED,
            )
        except InvalidArgumentError as error:
            await _invalid_argument(context, error)
        if stored is None:
            await _not_found(context, request.microgrid_id, request.dispatch_id)
        return UpdateMicrogridDispatchResponse(dispatch=stored.to_protobuf())

    async def GetMicrogridDispatch(
        self, request: GetMicrogridDispatchRequest, context: Context
    ) -> GetMicrogridDispatchResponse:
        """Get one dispatch.

        Args:
            request: The request.
            context: The call context.

        Returns:
            The dispatch.
        """
        await _check_ids(context, request.microgrid_id, request.dispatch_id)
        stored = await self._storage.run(
            lambda s: s.get(request.microgrid_id, request.dispatch_id)
        )
        if stored is None:
            await _not_found(context, request.microgrid_id, request.dispatch_id)
        return GetMicrogridDispatchResponse(
            microgrid_id=request.microgrid_id, dispatch=stored.to_protobuf()
        )

    async def DeleteMicrogridDispatch(
        self, request: DeleteMicrogridDispatchRequest, context: Context
    ) -> DeleteMicrogridDispatchResponse:
        """Delete a dispatch.

        Args:
            request: The request.
            context: The call context.

        Returns:
            The ids of the deleted dispatch.
        """
        await _check_ids(context, request.microgrid_id, request.dispatch_id)
        stored = await self._write(
            lambda: self._storage.run(
                lambda s: s.delete(request.microgrid_id, request.dispatch_id)
            ),
            request.microgrid_id,
            Event.EVENT_DELETED,
        )
        if stored is None:
            await _not_found(context, request.microgrid_id, request.dispatch_id)
        return DeleteMicrogridDispatchResponse(
            microgrid_id=request.microgrid_id, dispatch_id=request.dispatch_id
        )
