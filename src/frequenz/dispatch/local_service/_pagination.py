# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""Sorting and keyset pagination of list results.

A page token records the sort key `(value, id)` of the last dispatch returned.
The next page starts strictly after that key, so dispatches created or deleted
between two pages never shift the pages: nothing already listed repeats, and
nothing that existed all along is skipped. Tokens stay valid forever.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from frequenz.api.common.v1alpha8.pagination.pagination_info_pb2 import PaginationInfo
from frequenz.api.dispatch.v1.dispatch_pb2 import (
    Dispatch,
    ListMicrogridDispatchesRequest,
    SortField,
    SortOrder,
)

from ._convert import StoredDispatch
from ._validation import InvalidArgumentError

DEFAULT_PAGE_SIZE = 100
"""Page size used when the first request does not set one."""

MAX_PAGE_SIZE = 1000
"""Larger requested page sizes are reduced to this."""

MAX_PAGE_BYTES = 3 * 1024 * 1024
"""Most bytes of dispatches on one page; a page is cut by count and by size.

gRPC clients accept messages of at most 4 MiB by default. A single dispatch
within the limits of `_validation` is below 200 kB, so one always fits, and
the margin covers the pagination info and framing.
"""

MAX_PAGE_TOKEN_LENGTH = 1024
"""Longest accepted page token; the service's own tokens are about 120 characters."""

_FRAMING_BYTES = 6
"""Upper bound of the tag and length prefix of one dispatch on a page."""

_TOKEN_VERSION = 1
_TOKEN_FIELD = "pagination_params.page_token"


@dataclass(frozen=True)
class SortSpec:
    """How to order the results of one list request."""

    field: SortField.ValueType
    """The field to sort by (never UNSPECIFIED)."""

    descending: bool
    """Whether the order is descending."""

    def key(self, dispatch: StoredDispatch) -> tuple[int, int]:
        """Compute the sort key of a dispatch; the id breaks ties.

        Args:
            dispatch: The dispatch.

        Returns:
            The key `(value, id)`.
        """
        match self.field:
            case SortField.SORT_FIELD_START_TIME:
                value = dispatch.start_time_us
            case SortField.SORT_FIELD_LAST_UPDATE_TIME:
                value = dispatch.update_time_us
            case _:
                value = dispatch.create_time_us
        return (value, dispatch.dispatch_id)


def sort_spec(request: ListMicrogridDispatchesRequest) -> SortSpec:
    """Read the sort options of a request.

    Without options the API documents "by create time, descending"; an
    unspecified field or order takes that default too.

    Args:
        request: The list request.

    Returns:
        The sort specification.

    Raises:
        InvalidArgumentError: If a sort option has an unknown value.
    """
    options = request.sort_options
    if options.sort_field not in SortField.DESCRIPTOR.values_by_number:
        raise InvalidArgumentError("sort_options.sort_field", "unknown sort field")
    if options.sort_order not in SortOrder.DESCRIPTOR.values_by_number:
        raise InvalidArgumentError("sort_options.sort_order", "unknown sort order")
    field = options.sort_field or SortField.SORT_FIELD_CREATE_TIME
    return SortSpec(
        field=field, descending=options.sort_order != SortOrder.SORT_ORDER_ASCENDING
    )


def _query_digest(request: ListMicrogridDispatchesRequest, spec: SortSpec) -> str:
    """Fingerprint what a token's position is relative to: query and order."""
    digest = hashlib.sha256()
    digest.update(str(request.microgrid_id).encode())
    digest.update(request.filter.SerializeToString(deterministic=True))
    digest.update(f"{spec.field}:{spec.descending}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Page:
    """One page of results."""

    dispatches: list[StoredDispatch]
    """The dispatches on this page."""

    messages: list[Dispatch]
    """The same dispatches, as sent to the client."""

    info: PaginationInfo
    """Total count and the token for the next page, if any."""


def _encode_token(after: tuple[int, int], page_size: int, digest: str) -> str:
    payload = {
        "v": _TOKEN_VERSION,
        "after": list(after),
        "size": page_size,
        "query": digest,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, digest: str) -> tuple[tuple[int, int], int]:
    if len(token) > MAX_PAGE_TOKEN_LENGTH:
        raise InvalidArgumentError(_TOKEN_FIELD, "is not a valid page token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        after_value, after_id = payload["after"]
        page_size = payload["size"]
        valid = (
            payload["v"] == _TOKEN_VERSION
            and all(type(n) is int for n in (after_value, after_id, page_size))
            and isinstance(payload["query"], str)
        )
    # RecursionError: JSON nested deeper than the parser goes.
    except (binascii.Error, ValueError, TypeError, KeyError, RecursionError):
        valid = False
    if not valid:
        raise InvalidArgumentError(_TOKEN_FIELD, "is not a valid page token")
    if payload["query"] != digest:
        raise InvalidArgumentError(
            _TOKEN_FIELD, "was issued for a different microgrid, filter or sort order"
        )
    return (after_value, after_id), page_size


def _page_size(requested: int) -> int:
    return min(requested, MAX_PAGE_SIZE) if requested > 0 else DEFAULT_PAGE_SIZE


def paginate(
    request: ListMicrogridDispatchesRequest, matching: Sequence[StoredDispatch]
) -> Page:
    """Sort the matching dispatches and cut out the requested page.

    Args:
        request: The list request (for sort options and pagination params).
        matching: Every dispatch that passes the request's filter.

    Returns:
        The page: at most the page size of dispatches, and at most
            `MAX_PAGE_BYTES` of them (but always one, if any is left).

    Raises:
        InvalidArgumentError: If the sort options or page token are invalid.
    """
    spec = sort_spec(request)
    digest = _query_digest(request, spec)
    params = request.pagination_params
    page_size = _page_size(params.page_size)
    ordered = sorted(matching, key=spec.key, reverse=spec.descending)
    if params.page_token:
        after, token_page_size = _decode_token(params.page_token, digest)
        # The client only sends the size with the first request; later requests
        # carry just the token, which remembers it.
        page_size = _page_size(token_page_size)
        if spec.descending:
            ordered = [d for d in ordered if spec.key(d) < after]
        else:
            ordered = [d for d in ordered if spec.key(d) > after]
    page: list[StoredDispatch] = []
    messages: list[Dispatch] = []
    page_bytes = 0
    for dispatch in ordered[:page_size]:
        message = dispatch.to_protobuf()
        # A repeated field adds a tag and a length prefix per entry.
        page_bytes += message.ByteSize() + _FRAMING_BYTES
        if page and page_bytes > MAX_PAGE_BYTES:
            break
        page.append(dispatch)
        messages.append(message)
    next_token = (
        _encode_token(spec.key(page[-1]), page_size, digest)
        if len(ordered) > len(page)
        else None
    )
    return Page(
        dispatches=page,
        messages=messages,
        info=PaginationInfo(total_items=len(matching), next_page_token=next_token),
    )
