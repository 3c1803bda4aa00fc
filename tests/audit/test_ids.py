"""Id generators (digest §5.1, G34) against the headers.py formats."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from crp_gateway.audit import ids
from crp_gateway.governance.headers import SessionFacts


@pytest.mark.parametrize(
    ("make", "prefix"),
    [
        (ids.new_session_id, "crp_sess_"),
        (ids.new_continuation_id, "crp_cont_"),
        (ids.new_trail_id, "crp_trail_"),
        (ids.new_window_id, "crp_win_"),
    ],
)
def test_ids_are_prefix_and_32_hex(make: Callable[[], str], prefix: str) -> None:
    values = {make() for _ in range(50)}
    assert len(values) == 50
    for value in values:
        assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{32}", value)


def test_ids_pass_the_header_validation() -> None:
    facts = SessionFacts(
        session_id=ids.new_session_id(),
        continuation_id=ids.new_continuation_id(),
        audit_trail_id=ids.new_trail_id(),
    )
    assert facts.session_id.startswith("crp_sess_")
