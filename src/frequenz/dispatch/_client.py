# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The dispatch API client as `Dispatcher.client` exposes it."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from enum import Enum
from types import EllipsisType
from typing import Any, Final, Literal, TypeVar

import frequenz.client.base.channel as _base_channel
from frequenz.channels import Receiver
from frequenz.client.common.microgrid import MicrogridId
from frequenz.client.common.microgrid.electrical_components import (
    ElectricalComponentCategory,
)
from frequenz.client.dispatch import DispatchApiClient
from frequenz.client.dispatch.recurrence import RecurrenceRule
from frequenz.client.dispatch.types import (
    BatteryType,
    Dispatch,
    DispatchEvent,
    DispatchId,
    EvChargerType,
    InverterType,
    TargetCategories,
    TargetCategory,
    TargetComponents,
    TargetIds,
)

_LEGACY_CATEGORY = getattr(
    sys.modules.get("frequenz.client.common.microgrid.components"),
    "ComponentCategory",
    None,
)
"""The deprecated `ComponentCategory` of frequenz-client-common < 0.4, if loaded.

The client still accepts it as a target, so we do too; 0.4 removes it, so we
never import it ourselves: a caller can only hold one once its module is loaded.
"""

_CATEGORY_TYPES: tuple[type, ...] = (
    TargetCategory,
    ElectricalComponentCategory,
    BatteryType,
    EvChargerType,
    InverterType,
    *((_LEGACY_CATEGORY,) if isinstance(_LEGACY_CATEGORY, type) else ()),
)

TargetLike = (
    TargetComponents
    | int
    | ElectricalComponentCategory
    | BatteryType
    | EvChargerType
    | InverterType
    | TargetCategory
    | Enum  # client-common < 0.4: the deprecated ComponentCategory
    | Iterable[Any]
)
"""What `target` accepts: the client's types, one id or category, or a list."""


IdT = TypeVar("IdT", MicrogridId, DispatchId)

MAX_RECEIVE_MESSAGE_BYTES: Final = 64 * 1024 * 1024
"""The channel's receive limit: above any single dispatch the API lets a client
create (a create request is itself limited by the server's receive limit, 4 MiB by
default), so one dispatch always fits in one message; pages adapt (see `_sync`)."""

CHANNEL_OPTIONS: Final[Sequence[tuple[str, int]]] = (
    ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
    # Reconnect back-off of the channel itself (it adds +-20 % jitter): the sync
    # waits for the channel to be READY instead of stacking its own back-off, so
    # these bound how soon after the service is back the re-sync starts.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # Also the connect timeout of one attempt: a connection attempt that hangs
    # on a network that drops packets is given up and retried after this.
    ("grpc.min_reconnect_backoff_ms", 2000),
)
"""gRPC channel options of the Dispatcher's client."""


_CHANNEL_CONSTRUCTORS: Final = {"insecure_channel": 1, "secure_channel": 2}
"""frequenz-client-base's channel constructors, with the index of `options`."""


@contextlib.contextmanager
def _extra_channel_options(options: Sequence[tuple[str, int]]) -> Iterator[None]:
    # No supported way to pass channel options exists in the allowed versions:
    # client-base 0.11's `ChannelOptions` has only port, ssl and keep-alive, and
    # `parse_grpc_uri` builds the option list itself (keep-alive only, also from
    # the URL's `keep_alive*` parameters); client-dispatch 1.1's
    # `DispatchApiClient.__init__` takes no `channel_defaults` at all. So wrap
    # client-base's channel constructors for the (synchronous) connect call,
    # keeping its options; tests/integration/test_channel_options.py fails if
    # client-base stops building its channel through them.
    names = {name for name, _ in options}
    originals: dict[str, Any] = {}

    def wrap(original: Any, index: int) -> Any:
        def constructor(*args: Any, **kwargs: Any) -> Any:
            arguments = list(args)
            given = arguments[index] if len(arguments) > index else None
            merged = [o for o in (given or []) if o[0] not in names] + list(options)
            if len(arguments) > index:
                arguments[index] = merged
            else:
                kwargs["options"] = merged
            return original(*arguments, **kwargs)

        return constructor

    for name, index in _CHANNEL_CONSTRUCTORS.items():
        originals[name] = getattr(_base_channel, name)
        setattr(_base_channel, name, wrap(originals[name], index))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(_base_channel, name, original)


class TunedDispatchApiClient(DispatchApiClient):
    """`DispatchApiClient` whose channel has `CHANNEL_OPTIONS`."""

    def connect(
        self,
        server_url: str | None = None,
        *,
        auth_key: str | EllipsisType | None = ...,
        sign_secret: str | EllipsisType | None = ...,
    ) -> None:
        """Connect to the server, with this library's channel options.

        Args:
            server_url: The URL of the server, None for the previous one.
            auth_key: The API key; Ellipsis keeps the previous one.
            sign_secret: The signing secret; Ellipsis keeps the previous one.
        """
        with _extra_channel_options(CHANNEL_OPTIONS):
            super().connect(server_url, auth_key=auth_key, sign_secret=sign_secret)


def _to_id(value: object, id_type: type[IdT], name: str) -> IdT:
    if isinstance(value, id_type):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return id_type(value)
    raise TypeError(f"{name} must be an int or {id_type.__name__}, got {value!r}")


def to_microgrid_id(
    value: MicrogridId | int, name: str = "microgrid_id"
) -> MicrogridId:
    """Return a `MicrogridId` from a plain int or a `MicrogridId`.

    Args:
        value: The id.
        name: The argument name, for the error message.

    Returns:
        The id as `MicrogridId`.

    Raises:
        TypeError: If `value` is neither.
    """
    return _to_id(value, MicrogridId, name)


def to_dispatch_id(value: DispatchId | int, name: str = "dispatch_id") -> DispatchId:
    """Return a `DispatchId` from a plain int or a `DispatchId`.

    Args:
        value: The id.
        name: The argument name, for the error message.

    Returns:
        The id as `DispatchId`.

    Raises:
        TypeError: If `value` is neither.
    """
    return _to_id(value, DispatchId, name)


def to_target(value: TargetLike, name: str = "target") -> TargetComponents:
    """Return the client's target type from anything the seeds' examples pass.

    Args:
        value: A `TargetIds`/`TargetCategories`, one component id or category, or
            a list of ids or of categories (not mixed). An empty list means all
            components.
        name: The argument name, for the error message.

    Returns:
        The target as `TargetIds` or `TargetCategories`.

    Raises:
        TypeError: If `value` is none of these, or mixes ids and categories.
    """
    if isinstance(value, TargetIds | TargetCategories):
        return value
    if isinstance(value, bool):
        raise TypeError(f"{name} must be component ids or categories, got {value!r}")
    if isinstance(value, int) and not isinstance(value, _CATEGORY_TYPES):
        return TargetIds(value)
    if isinstance(value, _CATEGORY_TYPES):
        return TargetCategories(value)  # type: ignore[arg-type]  # the legacy enum
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be component ids or categories, got {value!r}")
    items = list(value)
    if all(isinstance(item, _CATEGORY_TYPES) for item in items) and items:
        return TargetCategories(*items)
    if all(
        isinstance(item, int) and not isinstance(item, (bool, *_CATEGORY_TYPES))
        for item in items
    ):
        return TargetIds(*items)
    raise TypeError(
        f"{name} must be a list of component ids or a list of component categories,"
        f" not a mix, got {value!r}"
    )


class DispatchClient:
    """frequenz-client-dispatch's `DispatchApiClient`, a little more lenient.

    Accepts what the documented examples pass and the raw client rejects: plain
    `int` microgrid and dispatch ids, and one `ComponentCategory` (or a list of ids
    or of categories) as target. Everything else, including any attribute not
    defined here, goes to the wrapped client unchanged.
    """

    def __init__(self, client: DispatchApiClient) -> None:
        """Wrap a client.

        Args:
            client: The client to wrap.
        """
        self._client = client

    @property
    def wrapped(self) -> DispatchApiClient:
        """The wrapped frequenz-client-dispatch client."""
        return self._client

    def __getattr__(self, name: str) -> Any:
        """Forward any other attribute to the wrapped client.

        Args:
            name: The attribute name.

        Returns:
            The wrapped client's attribute.
        """
        return getattr(self._client, name)

    async def create(
        self,
        microgrid_id: MicrogridId | int,
        type: str,
        start_time: datetime | Literal["NOW"],
        duration: timedelta | None,
        target: TargetLike,
        *,
        active: bool = True,
        dry_run: bool = False,
        payload: dict[str, Any] | None = None,
        recurrence: RecurrenceRule | None = None,
    ) -> Dispatch:
        """Create a dispatch.

        Args:
            microgrid_id: The microgrid to create the dispatch for.
            type: User defined string to identify the dispatch type.
            start_time: The start time (timezone-aware), or "NOW".
            duration: The duration, None for a dispatch that never ends.
            target: Component ids or categories (see `to_target`).
            active: The active status of the dispatch.
            dry_run: The dry_run status of the dispatch.
            payload: The payload of the dispatch.
            recurrence: The recurrence rule of the dispatch.

        Returns:
            The created dispatch.
        """
        return await self._client.create(
            to_microgrid_id(microgrid_id),
            type,
            start_time,
            duration,
            to_target(target),
            active=active,
            dry_run=dry_run,
            payload=payload,
            recurrence=recurrence,
        )

    async def update(
        self,
        *,
        microgrid_id: MicrogridId | int,
        dispatch_id: DispatchId | int,
        new_fields: dict[str, Any],
    ) -> Dispatch:
        """Update a dispatch.

        Args:
            microgrid_id: The microgrid of the dispatch.
            dispatch_id: The dispatch to update.
            new_fields: The fields to update, as the client documents them; a
                `target` may be anything `create` accepts.

        Returns:
            The updated dispatch.
        """
        fields = dict(new_fields)
        if "target" in fields:
            fields["target"] = to_target(fields["target"], "new_fields['target']")
        return await self._client.update(
            microgrid_id=to_microgrid_id(microgrid_id),
            dispatch_id=to_dispatch_id(dispatch_id),
            new_fields=fields,
        )

    async def get(
        self, *, microgrid_id: MicrogridId | int, dispatch_id: DispatchId | int
    ) -> Dispatch:
        """Get a dispatch.

        Args:
            microgrid_id: The microgrid of the dispatch.
            dispatch_id: The dispatch to get.

        Returns:
            The dispatch.
        """
        return await self._client.get(
            microgrid_id=to_microgrid_id(microgrid_id),
            dispatch_id=to_dispatch_id(dispatch_id),
        )

    async def delete(
        self, *, microgrid_id: MicrogridId | int, dispatch_id: DispatchId | int
    ) -> None:
        """Delete a dispatch.

        Args:
            microgrid_id: The microgrid of the dispatch.
            dispatch_id: The dispatch to delete.
        """
        await self._client.delete(
            microgrid_id=to_microgrid_id(microgrid_id),
            dispatch_id=to_dispatch_id(dispatch_id),
        )

    def list(
        self,
        microgrid_id: MicrogridId | int,
        *,
        target_components: Iterable[TargetLike] = (),
        **filters: Any,
    ) -> AsyncIterator[Iterator[Dispatch]]:
        """List dispatches, page by page.

        Args:
            microgrid_id: The microgrid to list the dispatches of.
            target_components: Targets to filter by (each as `create` accepts).
            **filters: The client's other filters (`start_from`, `active`, ...).

        Returns:
            An async iterator over pages of dispatches.
        """
        return self._client.list(
            to_microgrid_id(microgrid_id),
            target_components=[
                to_target(t, "target_components") for t in target_components
            ],
            **filters,
        )

    def stream(self, microgrid_id: MicrogridId | int) -> Receiver[DispatchEvent]:
        """Receive the stream of dispatch events of a microgrid.

        Args:
            microgrid_id: The microgrid.

        Returns:
            A receiver of dispatch events.
        """
        return self._client.stream(to_microgrid_id(microgrid_id))
