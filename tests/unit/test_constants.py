"""Numbers copied across the Python/Cython boundary agree with their one definition."""

import pytest

from fastds._ext import dshash
from fastds.dispatch.state import DestinationState


def test_the_cython_state_codes_are_the_destination_states():
    assert (dshash.STATE_ACTIVE, dshash.STATE_INACTIVE, dshash.STATE_PROBING) == tuple(DestinationState)


def test_states_read_as_operators_type_them():
    assert [DestinationState.parse(text) for text in ("Active", " inactive", "PROBING", "1")] == [
        DestinationState.ACTIVE, DestinationState.INACTIVE, DestinationState.PROBING, DestinationState.INACTIVE]
    assert [state.mi_name for state in DestinationState] == ["Active", "Inactive", "Probing"]
    with pytest.raises(ValueError, match="'dead' is not a state"):
        DestinationState.parse("dead")
    with pytest.raises(ValueError):
        DestinationState.parse("3")
