# License: MIT
# Copyright © 2025 Frequenz Energy-as-a-Service GmbH

"""A local Dispatch API server that runs inside the current event loop."""

from __future__ import annotations

import logging
import secrets
import time
from types import TracebackType
from typing import Self

import grpc.aio
from frequenz.api.dispatch.v1 import dispatch_pb2_grpc

from ._auth import DEFAULT_SIGNATURE_WINDOW, AuthInterceptor
from ._events import EventBroker
from ._guard import RequestGuardInterceptor
from ._lock import DatabaseLock
from ._rejections import DEFAULT_LOG_INTERVAL, RejectionLog
from ._servicer import DispatchServicer
from ._storage import AsyncDispatchStorage, Database

_logger = logging.getLogger(__name__)

_SERVER_OPTIONS = (
    # Fail loudly if the port is taken instead of silently sharing it with
    # another server (gRPC enables SO_REUSEPORT by default on Linux).
    ("grpc.so_reuseport", 0),
    # Clients of frequenz-client-base send keep-alive pings every 60 s, also
    # without active calls. gRPC's default server policy would answer these
    # with GOAWAY and drop idle connections, so accept them.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)


def _host_port(host: str, port: int) -> str:
    """Join host and port; IPv6 addresses get brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def format_url(host: str, port: int) -> str:
    """Build the URL that `DispatchApiClient(server_url=...)` accepts.

    Args:
        host: Host name or IP address; IPv6 addresses get brackets.
        port: Port number.

    Returns:
        A `grpc://HOST:PORT?ssl=false` URL (plain text, the service has no TLS).
    """
    return f"grpc://{_host_port(host, port)}?ssl=false"


class LocalDispatchService:
    """The Dispatch API served locally over gRPC, backed by SQLite.

    Example:
        ```python
        async with LocalDispatchService(database=":memory:") as service:
            client = DispatchApiClient(server_url=service.url, auth_key=service.key)
            ...
        ```

    `stop()` followed by `start()` serves again on the same port (clients keep
    their URL); a new instance can also reuse the database file and port of a
    stopped one. An in-memory database is lost on `stop()`.

    A database file is served by one service at a time: `start()` refuses a
    file another service (in this or another process) is serving. A new file
    (and its `-wal` and `-shm` files) can be read by its owner only.
    """

    def __init__(
        self,
        *,
        database: Database = ":memory:",
        key: str | None = None,
        sign_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        signature_window: float = DEFAULT_SIGNATURE_WINDOW,
        grace: float = 1.0,
        rejection_log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        """Configure the service; nothing runs until `start()`.

        Args:
            database: SQLite file path, or `":memory:"` for a throw-away database.
            key: The API key clients must send; a random one if `None`.
            sign_secret: If set, clients must sign requests with this secret.
            host: Address to listen on; loopback by default.
            port: Port to listen on; 0 picks a free one.
            signature_window: Seconds a signed request's timestamp may differ from
                the server clock; nonces are remembered that long.
            grace: Seconds `stop()` lets running calls finish.
            rejection_log_interval: Seconds between two warnings about calls
                of one client rejected for their credentials; the calls in
                between are counted, and the count logged later.

        Raises:
            ValueError: If `key` is empty.
        """
        if key is not None and not key:
            raise ValueError("key must not be empty")
        self._database = database
        self._key = key if key is not None else secrets.token_urlsafe(24)
        self._sign_secret = sign_secret
        self._host = host
        self._port = port
        self._signature_window = signature_window
        self._grace = grace
        self._rejection_log_interval = rejection_log_interval
        self._lock = DatabaseLock(database)
        self._rejections: RejectionLog | None = None
        self._server: grpc.aio.Server | None = None
        self._storage: AsyncDispatchStorage | None = None
        self._broker: EventBroker | None = None

    def __repr__(self) -> str:
        """Describe the service without revealing credentials.

        Returns:
            The description.
        """
        return (
            f"LocalDispatchService(database={self._database!r}, "
            f"host={self._host!r}, port={self._port}, running={self.is_running})"
        )

    @property
    def key(self) -> str:
        """The API key clients must send."""
        return self._key

    @property
    def sign_secret(self) -> str | None:
        """The signing secret, if requests must be signed."""
        return self._sign_secret

    @property
    def host(self) -> str:
        """The address the service listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port; after the first `start()`, the one actually bound."""
        return self._port

    @property
    def url(self) -> str:
        """The URL for `DispatchApiClient(server_url=...)`.

        Raises:
            RuntimeError: If the port is not known yet (port 0, never started).
        """
        if self._port == 0:
            raise RuntimeError("the service has not been started yet")
        return format_url(self._host, self._port)

    @property
    def is_running(self) -> bool:
        """Whether the service is serving."""
        return self._server is not None

    def subscriber_count(self, microgrid_id: int | None = None) -> int:
        """Count the open dispatch streams.

        Args:
            microgrid_id: Count only streams of this microgrid; `None` counts all.

        Returns:
            The number of streams; 0 when stopped.
        """
        if self._broker is None:
            return 0
        return self._broker.subscriber_count(microgrid_id)

    async def wait_for_subscribers(self, microgrid_id: int, count: int = 1) -> None:
        """Wait until at least `count` streams of a microgrid are open.

        Useful in tests: once this returns, those subscribers will receive every
        change made afterwards.

        Args:
            microgrid_id: The microgrid.
            count: How many open streams to wait for.

        Raises:
            RuntimeError: If the service is not running.
        """
        if self._broker is None:
            raise RuntimeError("the service is not running")
        await self._broker.wait_for_subscribers(microgrid_id, count)

    async def start(self) -> None:
        """Open the database and start serving.

        Raises:
            RuntimeError: If the service is already running.
            OSError: If the address cannot be bound.
            StorageError: If another service serves the database file, or the
                file has a newer schema.
        """
        if self._server is not None:
            raise RuntimeError("the service is already running")
        try:
            await self._start()
        except BaseException:
            self._lock.release()
            raise

    async def _start(self) -> None:
        storage = AsyncDispatchStorage(self._database)
        # Opened first, so that an unusable file is reported as SQLite sees it.
        await storage.open()
        try:
            self._lock.acquire()
        except BaseException:
            await storage.close()
            raise
        rejections = RejectionLog(_logger, interval=self._rejection_log_interval)
        auth = AuthInterceptor(
            self._key,
            self._sign_secret,
            signature_window=self._signature_window,
            nonce_store=storage,
            rejections=rejections,
        )
        try:
            now = time.time()
            auth.nonces.preload(await storage.run(lambda s: s.live_nonces(now)))
        except BaseException:
            await storage.close()
            raise
        broker = EventBroker()
        server = grpc.aio.server(
            # The guard runs inside the authentication: rejected calls are
            # rejected whatever their body.
            interceptors=[auth, RequestGuardInterceptor()],
            options=_SERVER_OPTIONS,
        )
        dispatch_pb2_grpc.add_MicrogridDispatchServiceServicer_to_server(
            DispatchServicer(storage, broker), server
        )
        address = _host_port(self._host, self._port)
        try:
            port = server.add_insecure_port(address)
            if port == 0:  # Older grpcio versions report failure this way.
                raise RuntimeError("port 0 returned")
            await server.start()
        except RuntimeError as error:
            await server.stop(None)
            await storage.close()
            raise OSError(f"cannot listen on {address}: {error}") from error
        self._port = port
        self._server, self._storage, self._broker = server, storage, broker
        self._rejections = rejections
        _logger.info("Dispatch API service listening on %s", self.url)

    async def stop(self) -> None:
        """Stop serving and close the database.

        Open streams end with UNAVAILABLE, so clients reconnect once the service
        is back. Calls still running get `grace` seconds to finish.
        """
        server, storage, broker = self._server, self._storage, self._broker
        self._server = self._storage = self._broker = None
        rejections, self._rejections = self._rejections, None
        if broker is not None:
            broker.close()
        if server is not None:
            await server.stop(self._grace)
        if storage is not None:
            await storage.close()
        if rejections is not None:
            rejections.flush()
        self._lock.release()
        if server is not None:
            _logger.info("Dispatch API service on port %s stopped", self._port)

    async def __aenter__(self) -> Self:
        """Start the service.

        Returns:
            The running service.
        """
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the service.

        Args:
            exc_type: Exception type, if the block raised.
            exc_value: Exception, if the block raised.
            traceback: Traceback, if the block raised.
        """
        await self.stop()
