"""The chain rules retention relies on: successive erased prefixes of a tenant
chain (each marker covers seq 1..n) and coverage of sessions that kept every
window (015§6.4, G5). The store-level behaviour is in tests/proxy."""

from __future__ import annotations

from dataclasses import replace

from crp_gateway.audit.chain import (
    ChainStatus,
    TenantLink,
    Truncation,
    WindowRecord,
    content_hash,
    dpe_report_hash,
    new_tenant_link,
    new_window,
    truncate,
    verify_coverage,
    verify_tenant_chain,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key

MASTER = bytes(range(32))
TENANT = "tnt_retention"
TENANT_KEY = tenant_chain_key(MASTER, TENANT)
ERASED_AT = ("2026-07-01T00:00:00Z", "2026-08-01T00:00:00Z")


def _session(n: int) -> WindowRecord:
    session_id = f"crp_sess_{n:016d}"
    return new_window(
        session_hmac_key(MASTER, session_id),
        [],
        session_id=session_id,
        window_id=f"crp_win_{n:016d}",
        timestamp=f"2026-06-01T10:{n:02d}:00Z",
        content_hash=content_hash(f"answer {n}"),
        dpe_report_hash=dpe_report_hash({}),
    )


def _chain(count: int) -> tuple[list[WindowRecord], list[TenantLink]]:
    """``count`` one-window sessions and the tenant chain over them."""
    windows = [_session(n) for n in range(1, count + 1)]
    links: list[TenantLink] = []
    for window in windows:
        links.append(
            new_tenant_link(
                TENANT_KEY,
                links[-1] if links else None,
                window,
                tenant_id=TENANT,
                timestamp=window.timestamp,
            )
        )
    return windows, links


def _two_prefixes() -> tuple[Truncation, Truncation, list[TenantLink]]:
    """Links 1..2 erased, then 3..4 too: the second marker covers 1..4."""
    _, links = _chain(6)
    first = truncate(TENANT_KEY, links[:2], erased_at=ERASED_AT[0], reason="30d")
    second = truncate(
        TENANT_KEY, [first, *links[2:4]], erased_at=ERASED_AT[1], reason="30d"
    )
    return first, second, links[4:]


def test_a_longer_prefix_marker_supersedes_the_shorter_one() -> None:
    first, second, kept = _two_prefixes()
    assert (second.first, second.last, second.prev_hmac) == (1, 4, "")
    assert second.last_hmac == kept[0].prev_hmac
    result = verify_tenant_chain([first, second, *kept], TENANT_KEY, tenant_id=TENANT)
    assert (result.status, result.truncated, result.checked) == (
        ChainStatus.TRUNCATED,
        ((1, 4),),
        4,
    )
    alone = verify_tenant_chain([second, *kept], TENANT_KEY, tenant_id=TENANT)
    assert alone.status is ChainStatus.TRUNCATED


def test_superseded_markers_must_verify_and_nest() -> None:
    first, second, kept = _two_prefixes()
    tampered = replace(first, reason="rewritten")
    result = verify_tenant_chain([tampered, second, *kept], TENANT_KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 0)
    assert result.reason == "truncation marker HMAC mismatch"
    backwards = verify_tenant_chain([second, first, *kept], TENANT_KEY)
    assert (backwards.status, backwards.index) == (ChainStatus.BROKEN, 0)
    assert "superseded" in backwards.reason


def test_the_shorter_marker_alone_does_not_anchor_what_follows() -> None:
    first, _, kept = _two_prefixes()
    result = verify_tenant_chain([first, *kept], TENANT_KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 1)


def test_a_broken_link_after_superseded_markers_is_indexed_in_the_whole_list() -> None:
    first, second, kept = _two_prefixes()
    changed = replace(kept[1], window_hmac=kept[0].window_hmac)
    result = verify_tenant_chain([first, second, kept[0], changed], TENANT_KEY)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 3)


def test_a_session_that_kept_its_windows_still_needs_every_link() -> None:
    windows, links = _chain(3)
    marker = truncate(TENANT_KEY, links[:1], erased_at=ERASED_AT[0], reason="30d")
    session_id = windows[2].session_id
    # The newest session's link is removed, the chain's start was erased.
    result = verify_coverage([windows[2]], [marker, links[1]], session_id=session_id)
    assert (result.status, result.index) == (ChainStatus.BROKEN, 2)
    assert "has no link" in result.reason
    whole = verify_coverage([windows[2]], [marker, *links[1:]], session_id=session_id)
    assert whole.status is ChainStatus.VALID
