# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""Lifecycle receivers: the pending events of one dispatch coalesce.

A lifecycle receiver that is kept but read late holds at most about one event
per dispatch however many changes arrive, so its memory is bounded by the number
of dispatches, not of events; the rules are `merge_lifecycle`'s.
"""

from __future__ import annotations

from typing import Any

from ._delivery import KEEP_BOTH, UnboundedReceiver
from ._event import Created, Deleted, DispatchEvent, Updated


def merge_lifecycle(newer: DispatchEvent, pending: DispatchEvent) -> Any:
    """Coalesce two pending lifecycle events of one dispatch id into what counts.

    A consumer that reads late still ends with the right state, and a receiver
    holds at most two events per id (a `Deleted` of an old incarnation and the
    events of a new one, after the service lost its data):

    * `Created` then `Updated` -> one `Created` of the latest version;
    * `Updated` then `Updated` -> one `Updated` of the latest version;
    * `Created` then `Deleted` (same `create_time`) -> nothing: the dispatch
      came and went before the consumer looked;
    * `Updated` then `Deleted` -> the `Deleted`;
    * anything else (`Deleted` then a `Created` of a reused id) -> both.

    Args:
        newer: The event being queued.
        pending: The last pending event of the same id.

    Returns:
        The one event replacing both, None for none, or `KEEP_BOTH`.
    """
    same = newer.dispatch.create_time == pending.dispatch.create_time
    if not same or isinstance(pending, Deleted):
        return KEEP_BOTH
    if isinstance(newer, Updated):
        return Created(newer.dispatch) if isinstance(pending, Created) else newer
    if isinstance(newer, Deleted):
        return None if isinstance(pending, Created) else newer
    return KEEP_BOTH


def new_lifecycle_receiver(name: str) -> UnboundedReceiver[DispatchEvent]:
    """Return a lifecycle receiver that coalesces by `merge_lifecycle`.

    Args:
        name: The receiver's name.

    Returns:
        A new receiver, attached to nothing yet.
    """
    return UnboundedReceiver[DispatchEvent](
        name=name,
        coalesce_key=lambda event: event.dispatch.id,
        merge=merge_lifecycle,
    )
