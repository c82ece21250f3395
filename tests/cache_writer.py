# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""A cache writer process for the kill -9 test.

Writes generation after generation of the same dispatches, alternating full syncs
(`replace_all`) and a batch of stream changes (`write_changes`, as the
scheduler's writer thread hands them over), and prints each generation's number
once it is committed. The test kills it at a random moment.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frequenz.dispatch._cache import DispatchCache
from tests.cache_helpers import BASE, generation


def main() -> None:
    """Write generations until killed."""
    path, count = Path(sys.argv[1]), int(sys.argv[2])
    cache = DispatchCache.open(path, 1)
    state = cache.load()
    gen = 0 if state is None else int(state.dispatches[0].payload["gen"])
    while True:
        gen += 1
        dispatches = generation(count, gen)
        if gen % 2:
            cache.replace_all(dispatches, BASE + timedelta(seconds=gen))
        else:
            cache.write_changes({int(d.id): d for d in dispatches})
        print(gen, flush=True)


if __name__ == "__main__":
    main()
