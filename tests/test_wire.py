# License: MIT
# Copyright © 2026 Frequenz Energy-as-a-Service GmbH

"""The fast wire converter returns exactly what the client's converter does."""

from __future__ import annotations

import pytest
from frequenz.client.dispatch.test.generator import DispatchGenerator
from frequenz.client.dispatch.types import Dispatch as ClientDispatch

from frequenz.dispatch import Dispatch
from frequenz.dispatch._sync import convert
from frequenz.dispatch._wire import dispatch_from_protobuf


@pytest.mark.parametrize("seed", range(5))
def test_equals_the_clients_conversion(seed: int) -> None:
    generator = DispatchGenerator(seed=seed)
    for _ in range(400):
        pb_dispatch = generator.generate_dispatch().to_protobuf()
        fast = dispatch_from_protobuf(pb_dispatch)
        reference = Dispatch(ClientDispatch.from_protobuf(pb_dispatch))
        assert fast == reference
        assert {name: type(value) for name, value in vars(fast).items()} == {
            name: type(value) for name, value in vars(reference).items()
        }


def test_an_unreadable_dispatch_is_skipped_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pb_dispatch = DispatchGenerator(seed=1).generate_dispatch().to_protobuf()
    pb_dispatch.metadata.dispatch_id = 4242
    pb_dispatch.data.recurrence.freq = 99  # type: ignore[assignment]  # from a newer server
    assert convert(pb_dispatch) is None
    assert "4242" in caplog.text
