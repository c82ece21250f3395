# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""`frequenz-dispatch demo`: the library at work, live, on a local service.

| module    | what it does                                                       |
| --------- | ------------------------------------------------------------------ |
| `runner`  | runs it all: service, `Dispatcher`, managed actors, script, view   |
| `script`  | the scenario: the demo actor, the timeline and playing it          |
| `outage`  | the outage scene: service down, restart from the cache, reconnect  |
| `stage`   | the service and the (restartable) `Dispatcher` with its watchers   |
| `journal` | what the demo saw: event log, actor states, counts                 |
| `view`    | showing it: the live rich view and the final summary               |

This package imports nothing until one of its modules is imported, so that
the command line can offer `demo` without loading it for other commands.
"""
