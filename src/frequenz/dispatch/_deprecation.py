# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The one way every deprecated shim of this package warns."""

from __future__ import annotations

import warnings


def warn_deprecated(old: str, new: str, *, stacklevel: int = 2) -> None:
    """Warn that a deprecated name was used, and say what replaces it.

    Args:
        old: The deprecated name, as the user wrote it (e.g. `Dispatch.running(type)`).
        new: What to use instead, as a phrase (e.g. `read dispatch.started`).
        stacklevel: Frames between the user's call and this function, counted as
            `warnings.warn` does, plus one for this function (2: the shim's caller).
    """
    warnings.warn(
        f"{old} is deprecated: {new}.",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )
