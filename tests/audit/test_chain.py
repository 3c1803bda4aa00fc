"""Window, event and tenant chains (digest §5.5-5.8, G5-G8, 015§6.4).

Expected values are the literal §5.8 vectors, never recomputed by the code
under test.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crp_gateway.audit.chain import (
    ChainStatus,
    EventRecord,
    TenantLink,
    Truncation,
    WindowRecord,
    canonical_json,
    content_hash,
    dpe_report_hash,
    event_data_hash,
    fan_in_prev,
    format_timestamp,
    new_event,
    new_tenant_link,
    new_window,
    standalone_window_hmac,
    truncate,
    verify_coverage,
    verify_events,
    verify_tenant_chain,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.governance.headers import ChainIntegrity

SID = "crp_sess_0123456789abcdef"
KEY = bytes.fromhex("1b99533d3f87c1473946269b1be14b25fa9c46b0d21f5be29f9cca602f24973d")
DPE_EMPTY = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
W_CONTENT = (
    ("2026-05-25T10:00:00Z", "Paris is the capital of France."),
    ("2026-05-25T10:01:00Z", "It has about 2.1 million residents."),
    ("2026-05-25T10:02:00Z", "The Seine flows through it."),
)
W_CONTENT_HASH = (
    "sha256:557be7eca214f1889cdb6dfa348eb7c937648c9d6be72bfc1b8204adf7552a43",
    "sha256:f8a8848b5da48bfaa0a5847eaa7fb8fdf8dce8291185d4423838ecd66f9ac25e",
    "sha256:8c97b6729ac3998d0aa4ba420563e5096d2bc01ea87a41c6c113e840ed60b773",
)
W_HMAC = (
    "sha256:b93939fd0a9284cf336f31340e093e27c12f049a84a50c31a059052530dc899e",
    "sha256:ed95fa2148e95b38e3fce98b4e35158f3fdfe365d3af8431f2995cf4595d1276",
    "sha256:10b3695d3608d3572bc2f0c11fe8bde8f67b26e361d5c5b00a7cc3bf50bc653f",
)
WIN_ID = "crp_win_0000000000000001"
POLICY_HASH = "sha256:51d0de8d4928a245c9822c8d7a2d630897461b7f188e17581474a79c41681a07"
E1_DATA_HASH = "sha256:de91e2156b529ea4bcdf81b0248b05cbfb87fd67621a36f26e1a1329e5114045"
E1_HMAC = "sha256:292b97a7a31720ee409c19229925f5b9d9e830b23864b18d1b156924a9be09d8"
E2_DATA_HASH = "sha256:510854793859ac5bef37aefcaed30d55b9e220bd427cceb06d5c1a3fdee66848"
E2_HMAC = "sha256:229b57084dddd0bac122564fec1425da9f7db16dd2cfad03506a1284d97ffb9e"
TENANT = "tnt_example"
ERASED_AT = "2026-06-01T00:00:00Z"
TENANT_KEY = tenant_chain_key(bytes(range(32)), TENANT)


def _window(
    parents: list[WindowRecord | Truncation], n: int, sid: str = SID
) -> WindowRecord:
    ts = f"2026-05-25T10:{n:02d}:00Z"
    return new_window(
        KEY,
        parents,
        session_id=sid,
        window_id=f"crp_win_{n:016d}",
        timestamp=ts,
        content_hash=content_hash(f"content {n}"),
        dpe_report_hash=DPE_EMPTY,
    )


def vector_windows() -> list[WindowRecord]:
    windows: list[WindowRecord] = []
    for index, (ts, text) in enumerate(W_CONTENT):
        windows.append(
            new_window(
                KEY,
                windows[-1:],
                session_id=SID,
                window_id=f"crp_win_{index + 1:016d}",
                timestamp=ts,
                content_hash=content_hash(text),
                dpe_report_hash=dpe_report_hash({}),
            )
        )
    return windows


# --- §5.8 vectors ---------------------------------------------------------------


def test_dpe_report_hash_of_empty_record() -> None:
    assert dpe_report_hash({}) == DPE_EMPTY


@pytest.mark.parametrize("index", range(3))
def test_window_vectors(index: int) -> None:
    window = vector_windows()[index]
    assert window.content_hash == W_CONTENT_HASH[index]
    assert window.hmac == W_HMAC[index]
    assert window.window_number == index + 1
    assert window.prev_hmac == ("" if index == 0 else W_HMAC[index - 1])


def test_vector_chain_verifies() -> None:
    result = verify_windows(vector_windows(), KEY, expected_tips=[W_HMAC[2]])
    assert result.status is ChainStatus.VALID
    assert result.checked == 3
    assert result.integrity is ChainIntegrity.VALID


def test_policy_hash_vector_input() -> None:
    text = b"halt-on CRITICAL; warn-on HIGH"
    assert "sha256:" + hashlib.sha256(text).hexdigest() == POLICY_HASH


def vector_events() -> list[EventRecord]:
    first = new_event(
        KEY,
        None,
        session_id=SID,
        event_type="SESSION_CREATED",
        timestamp="2026-05-25T10:00:00Z",
        window_id=WIN_ID,
        data={
            "session_id": SID,
            "api_key_prefix": "crp_gw_free_eu_",
            "safety_policy_hash": POLICY_HASH,
        },
    )
    second = new_event(
        KEY,
        first,
        session_id=SID,
        event_type="DISPATCH_COMPLETED",
        timestamp="2026-05-25T10:00:01Z",
        window_id=WIN_ID,
        data={
            "response_hash": W_CONTENT_HASH[0],
            "tokens_used": 42,
            "latency_ms": 812,
        },
    )
    return [first, second]


def test_event_vectors() -> None:
    first, second = vector_events()
    assert (first.seq, first.data_hash, first.hmac) == (1, E1_DATA_HASH, E1_HMAC)
    assert first.prev_hmac == ""
    assert (second.seq, second.data_hash, second.hmac) == (2, E2_DATA_HASH, E2_HMAC)
    assert second.prev_hmac == E1_HMAC
    result = verify_events([first, second], KEY, expected_tip=E2_HMAC)
    assert result.status is ChainStatus.VALID


def test_vector_key_is_the_derived_hmac_key() -> None:
    assert session_hmac_key(bytes(range(32)), SID) == KEY


# --- encoding details -------------------------------------------------------------


def test_canonical_json_sorts_and_strips_whitespace() -> None:
    assert (
        canonical_json({"b": 1, "a": ["é", None]}) == '{"a":["é",null],"b":1}'.encode()
    )
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"x": float("nan")})
    assert event_data_hash({"b": 1, "a": 2}) == event_data_hash({"a": 2, "b": 1})


def test_format_timestamp() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 5, 25, 12, 0, tzinfo=plus_two)) == (
        "2026-05-25T10:00:00Z"
    )
    assert format_timestamp(datetime(2026, 5, 25, 10, 0, 0, 5, tzinfo=UTC)) == (
        "2026-05-25T10:00:00.000005Z"
    )
    with pytest.raises(ValueError, match="timezone"):
        format_timestamp(datetime(2026, 5, 25))  # noqa: DTZ001 - the case under test


def test_fan_in_prev_sorts_and_rejects_duplicates() -> None:
    assert fan_in_prev([W_HMAC[1], W_HMAC[0]]) == f"{W_HMAC[0]}|{W_HMAC[1]}"
    assert fan_in_prev([]) == ""
    with pytest.raises(ValueError, match="twice"):
        fan_in_prev([W_HMAC[0], W_HMAC[0]])


def test_standalone_window_hmac_has_empty_prev() -> None:
    w1, w2, _ = vector_windows()
    assert standalone_window_hmac(KEY, w1) == W_HMAC[0]  # the root: prev is "" anyway
    message = f"{SID}2{W_CONTENT[1][0]}{W_CONTENT_HASH[1]}{DPE_EMPTY}".encode()
    expected = "sha256:" + hmac.new(KEY, message, hashlib.sha256).hexdigest()
    assert standalone_window_hmac(KEY, w2) == expected
    assert expected != W_HMAC[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "2026-05-25 10:00:00"),
        ("content_hash", "sha256:ABC"),
        ("window_id", "win-1"),
        ("session_id", "sess_1"),
    ],
)
def test_builders_refuse_malformed_fields(field: str, value: str) -> None:
    fields = {
        "session_id": SID,
        "window_id": WIN_ID,
        "timestamp": "2026-05-25T10:00:00Z",
        "content_hash": W_CONTENT_HASH[0],
        "dpe_report_hash": DPE_EMPTY,
    }
    fields[field] = value
    with pytest.raises(ValueError, match=r"\S"):
        new_window(KEY, [], **fields)


# --- window tampering ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("content_hash", W_CONTENT_HASH[2]),  # the §5.8 tamper test
        ("dpe_report_hash", W_CONTENT_HASH[0]),
        ("timestamp", "2026-05-25T10:01:01Z"),
        ("window_number", 3),
        ("hmac", W_HMAC[0]),
        ("session_id", "crp_sess_0123456789abcdee"),
        ("prev_hmac", ""),
    ],
)
def test_flipping_one_field_of_window_2_breaks_at_index_1(
    field: str, value: object
) -> None:
    windows: list[WindowRecord | Truncation] = list(vector_windows())
    windows[1] = replace(windows[1], **{field: value})
    result = verify_windows(windows, KEY)
    assert result.status is ChainStatus.BROKEN
    assert result.index == 1
    assert result.checked == 1
    assert result.integrity is ChainIntegrity.BROKEN


def test_wrong_key_breaks_at_the_root() -> None:
    result = verify_windows(vector_windows(), bytes(32))
    assert (result.status, result.index) == (ChainStatus.BROKEN, 0)


def test_reordering_windows_is_broken() -> None:
    w1, w2, w3 = vector_windows()
    result = verify_windows([w1, w3, w2], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


def test_deleting_a_middle_window_is_broken() -> None:
    w1, _, w3 = vector_windows()
    result = verify_windows([w1, w3], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


def test_deleting_the_last_window_needs_the_stored_tip() -> None:
    w1, w2, _ = vector_windows()
    assert verify_windows([w1, w2], KEY).status is ChainStatus.VALID  # a prefix
    result = verify_windows([w1, w2], KEY, expected_tips=[W_HMAC[2]])
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)


def test_second_root_is_broken() -> None:
    w1, w2, _ = vector_windows()
    other_root = _window([], 9)
    result = verify_windows([w1, w2, other_root], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)


def test_duplicated_window_is_broken() -> None:
    w1, w2, _ = vector_windows()
    result = verify_windows([w1, w2, w2], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)


def test_single_window_is_unverified() -> None:
    result = verify_windows(vector_windows()[:1], KEY)
    assert result.status is ChainStatus.VALID
    assert result.integrity is ChainIntegrity.UNVERIFIED


# --- DAG --------------------------------------------------------------------------


def test_fan_out_and_fan_in() -> None:
    root = _window([], 1)
    left, right = _window([root], 2), _window([root], 3)
    assert left.window_number == right.window_number == 2
    assert left.prev_hmac == right.prev_hmac == root.hmac
    merged = _window([right, left], 4)
    merged_other_order = _window([left, right], 4)
    assert merged.hmac == merged_other_order.hmac  # completion order does not matter
    assert merged.prev_hmac == "|".join(sorted([left.hmac, right.hmac]))
    assert merged.window_number == 3
    result = verify_windows([root, left, right, merged], KEY)
    assert result.status is ChainStatus.VALID
    broken = verify_windows([root, left, merged, right], KEY)
    assert (broken.status, broken.index) == (ChainStatus.BROKEN, 2)


def test_fan_in_with_unsorted_prev_is_broken() -> None:
    root = _window([], 1)
    left, right = _window([root], 2), _window([root], 3)
    merged = _window([left, right], 4)
    parents = sorted([left.hmac, right.hmac], reverse=True)
    tampered = replace(merged, prev_hmac="|".join(parents))
    result = verify_windows([root, left, right, tampered], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 3)


def test_window_number_must_increase_along_edges() -> None:
    root = _window([], 1)
    child = _window([root], 2)
    result = verify_windows([root, replace(child, window_number=1)], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


# --- truncation (015§6.4) -----------------------------------------------------------


def test_marked_erasure_verifies_as_truncated() -> None:
    windows = [_window([], 1)]
    for n in range(2, 6):
        windows.append(_window(windows[-1:], n))
    marker = truncate(
        KEY, windows[1:3], erased_at="2026-06-01T00:00:00Z", reason="gdpr"
    )
    assert (marker.first, marker.last) == (2, 3)
    kept = [windows[0], marker, *windows[3:]]
    result = verify_windows(kept, KEY, expected_tips=[windows[-1].hmac])
    assert result.status is ChainStatus.TRUNCATED
    assert result.truncated == ((2, 3),)
    assert result.ok
    assert result.integrity is ChainIntegrity.PARTIAL


def test_unmarked_gap_is_broken_and_forged_marker_is_broken() -> None:
    windows = [_window([], 1)]
    for n in range(2, 5):
        windows.append(_window(windows[-1:], n))
    silent = verify_windows([windows[0], windows[3]], KEY)
    assert (silent.status, silent.index) == (ChainStatus.BROKEN, 1)
    marker = truncate(
        KEY, windows[1:3], erased_at="2026-06-01T00:00:00Z", reason="gdpr"
    )
    forged = replace(marker, first=3)  # claims less was erased
    result = verify_windows([windows[0], forged, windows[3]], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


def test_truncated_event_span() -> None:
    events = vector_events()
    third = new_event(
        KEY,
        events[-1],
        session_id=SID,
        event_type="SESSION_TERMINATED",
        timestamp="2026-05-25T10:05:00Z",
        window_id="",
        data={},
    )
    marker = truncate(KEY, events, erased_at=ERASED_AT, reason="gdpr")
    result = verify_events([marker, third], KEY, expected_tip=third.hmac)
    assert (result.status, result.truncated) == (ChainStatus.TRUNCATED, ((1, 2),))
    result = verify_events([third], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 0)


def test_marker_of_another_chain_is_broken() -> None:
    events = vector_events()
    marker = truncate(KEY, events[:1], erased_at=ERASED_AT, reason="gdpr")
    windows = vector_windows()
    as_window = replace(marker, last_hmac=W_HMAC[0])
    result = verify_windows([as_window, *windows[1:]], KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 0)


# --- event tampering -------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_type", "SESSION_CONTINUED"),
        ("timestamp", "2026-05-25T10:00:02Z"),
        ("window_id", "crp_win_0000000000000002"),
        ("data_hash", E1_DATA_HASH),
        ("data", '{"latency_ms":1,"response_hash":"x","tokens_used":42}'),
        ("seq", 3),
        ("prev_hmac", ""),
        ("session_id", "crp_sess_0123456789abcdee"),
    ],
)
def test_flipping_one_field_of_event_2_breaks_at_index_1(
    field: str, value: object
) -> None:
    events: list[EventRecord | Truncation] = list(vector_events())
    events[1] = replace(events[1], **{field: value})
    result = verify_events(events, KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


def test_erased_event_payload_still_verifies() -> None:
    first, second = vector_events()
    result = verify_events([first, replace(second, data="")], KEY)
    assert result.status is ChainStatus.VALID


def test_event_reorder_and_tail_removal() -> None:
    first, second = vector_events()
    reordered = verify_events([second, first], KEY)
    assert (reordered.status, reordered.index) == (ChainStatus.BROKEN, 0)
    tail = verify_events([first], KEY, expected_tip=E2_HMAC)
    assert (tail.status, tail.index) == (ChainStatus.BROKEN, 1)


# --- tenant rolling chain (G5) ------------------------------------------------------


def _links(windows: list[WindowRecord]) -> list[TenantLink | Truncation]:
    links: list[TenantLink | Truncation] = []
    for n, window in enumerate(windows):
        links.append(
            new_tenant_link(
                TENANT_KEY,
                links[-1] if links else None,
                window,
                tenant_id=TENANT,
                timestamp=f"2026-05-25T11:{n:02d}:00Z",
            )
        )
    return links


def _tenant_history() -> tuple[list[WindowRecord], list[WindowRecord]]:
    """Our vector session, with a plain-SDK session (one window) after it."""
    other_sid = "crp_sess_fedcba9876543210"
    return vector_windows(), [_window([], 1, sid=other_sid)]


def test_tenant_chain_verifies_and_covers_the_session() -> None:
    session, other = _tenant_history()
    links = _links([*session, *other])
    head = (4, links[-1].hmac)
    assert verify_tenant_chain(links, TENANT_KEY, head=head).status is ChainStatus.VALID
    coverage = verify_coverage(session, links, session_id=SID)
    assert coverage.status is ChainStatus.VALID


def test_deleting_the_last_window_is_detected_by_the_rolling_chain() -> None:
    session, other = _tenant_history()
    links = _links([*session, *other])
    remaining = session[:2]
    assert verify_windows(remaining, KEY).status is ChainStatus.VALID
    result = verify_coverage(remaining, links, session_id=SID)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)
    assert "window 3" in result.reason


def test_a_window_without_link_is_detected() -> None:
    session, _ = _tenant_history()
    links = _links(session[:2])
    result = verify_coverage(session, links, session_id=SID)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)


def test_erased_window_span_is_not_a_missing_window() -> None:
    session, _ = _tenant_history()
    links = _links(session)
    marker = truncate(
        KEY, session[1:2], erased_at="2026-06-01T00:00:00Z", reason="gdpr"
    )
    result = verify_coverage([session[0], marker, session[2]], links, session_id=SID)
    assert result.status is ChainStatus.TRUNCATED


def test_tenant_chain_tamper_reorder_and_tail() -> None:
    session, other = _tenant_history()
    links = _links([*session, *other])
    tampered = list(links)
    tampered[1] = replace(links[1], window_hmac=W_HMAC[0])
    result = verify_tenant_chain(tampered, TENANT_KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)
    swapped = [links[0], links[2], links[1], links[3]]
    result = verify_tenant_chain(swapped, TENANT_KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)
    head = (4, links[-1].hmac)
    result = verify_tenant_chain(links[:3], TENANT_KEY, head=head)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 3)
    assert verify_tenant_chain([], TENANT_KEY, head=head).status is ChainStatus.BROKEN
