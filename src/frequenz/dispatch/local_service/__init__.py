# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""A local implementation of the Frequenz Dispatch API service.

It serves `MicrogridDispatchService` over real gRPC, stores dispatches in
SQLite and checks the same credentials the cloud service does, so that
`frequenz.client.dispatch.DispatchApiClient` (and this library) can run
without cloud credentials:

```python
from frequenz.client.dispatch import DispatchApiClient
from frequenz.dispatch.local_service import LocalDispatchService

async with LocalDispatchService(database="dispatches.sqlite3") as service:
    client = DispatchApiClient(server_url=service.url, auth_key=service.key)
```

From a shell: `frequenz-dispatch serve --database dispatches.sqlite3` (or
`python -m frequenz.dispatch.local_service`), with the key in `DISPATCH_API_KEY`.

`DispatchStorage` opens the database file directly, e.g. to store dispatches
the API refuses (a start in the past) before a service is started on it.

The service is at least as strict as the cloud service and never stores what
its client could not read back. Status codes: INVALID_ARGUMENT (the message
starts with the offending field; limits in `_validation`), NOT_FOUND,
UNAUTHENTICATED, UNAVAILABLE (streams of a stopping service) and, from gRPC,
RESOURCE_EXHAUSTED for requests over 4 MiB; never UNKNOWN or INTERNAL. One
service serves a database file at a time, new files are private (0600), and
nonces of signed requests are kept with the data.

The package imports nothing else of `frequenz.dispatch`: it is the server only.

This package needs the `local-service` extra (`frequenz-api-dispatch`,
`protobuf`).
"""

from ._service import LocalDispatchService, format_url
from ._storage import DispatchStorage, StorageError

__all__ = ["DispatchStorage", "LocalDispatchService", "StorageError", "format_url"]
