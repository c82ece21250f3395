# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The recurrence engine: when a dispatch's runs start, at any age of the dispatch.

`Occurrences` is all the rest of the library uses. Inside, one module per job,
each importing only the ones listed after it:

* `_occurrences`: the queries (latest, next, iterate) and the rule's validation;
  rules without by-fields on a fixed-length frequency are pure arithmetic there.
* `_counting`: the instant a `count` end criterion stops at, by counting whole
  cycles of the rule's pattern rather than every run.
* `_grid`: a rule's pattern as a day filter plus times of day, dateutil's
  defaults taken from the start, and the run nearest to an instant.
* `_day_filter`: which days pass the by-month, by-monthday, by-weekday filters
  and the interval grid, found by jumping over months and periods.
* `_times_of_day`: at which seconds of the day a run day has its runs.
* `_calendar`: integer day and instant numbering, month lengths and starts.
"""

from ._occurrences import Occurrences

__all__ = ["Occurrences"]
