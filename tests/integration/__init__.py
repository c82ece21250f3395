# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""End-to-end tests: the `Dispatcher` against the local service over real gRPC."""
