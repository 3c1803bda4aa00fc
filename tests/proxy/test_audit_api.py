"""The tenant-admin audit API: sessions, one session, and the NDJSON export."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert

from crp_gateway.audit import export as audit_export
from crp_gateway.audit import ids
from crp_gateway.audit.chain import (
    ChainStatus,
    EventRecord,
    TenantLink,
    WindowRecord,
    content_hash,
    dpe_report_hash,
    format_timestamp,
    new_window,
    tenant_link_hmac,
    verify_coverage,
    verify_events,
    verify_windows,
)
from crp_gateway.audit.keys import session_hmac_key, tenant_chain_key
from crp_gateway.audit.master_keys import TenantKeys
from crp_gateway.runtime import build_vault
from crp_gateway.store.database import create_engine, create_sessionmaker
from crp_gateway.store.models import AuditWindow
from tests.proxy.conftest import WiredTenant
from tests.support import GatewayServer, run, sign_up

HELLO = [{"role": "user", "content": "hello there"}]


def _chat(gateway: GatewayServer, key: str) -> Any:
    with gateway.client(key) as client:
        response = client.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO}
        )
    assert response.status_code == 200, response.text
    return response


def _session_of(response: Any) -> str:
    session_id: str = response.headers["crp-context-session-id"]
    return session_id


def _calls(gateway: GatewayServer, key: str, count: int) -> list[str]:
    return [_session_of(_chat(gateway, key)) for _ in range(count)]


def _moment() -> str:
    """A boundary strictly between the calls before and after it."""
    time.sleep(0.02)
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    time.sleep(0.02)
    return moment


def _get(gateway: GatewayServer, key: str, path: str, **params: Any) -> Any:
    with gateway.client(key) as client:
        return client.get(path, params=params)


def _pages(gateway: GatewayServer, key: str, **params: Any) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        response = _get(gateway, key, "/v1/audit/sessions", **params, **extra)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        cursor = page["next_cursor"]


def _listed(gateway: GatewayServer, key: str, **params: Any) -> list[str]:
    pages = _pages(gateway, key, **params)
    return [row["session_id"] for page in pages for row in page["data"]]


def _export(gateway: GatewayServer, key: str, **params: Any) -> Any:
    return _get(gateway, key, "/v1/audit/export", **params)


def _records(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def _inference_key(gateway: GatewayServer, admin_key: str) -> tuple[str, str]:
    with gateway.client(admin_key) as client:
        body = client.post("/v1/keys", json={"name": "app"}).json()
    return body["id"], body["api_key"]


async def _master(gateway: GatewayServer, tenant_id: str) -> bytes:
    engine = create_engine(gateway.settings.store_url)
    try:
        keys = TenantKeys(create_sessionmaker(engine), build_vault(gateway.settings))
        return await keys.master(tenant_id)
    finally:
        await engine.dispose()


def _fields(cls: type[Any], record: dict[str, Any], **extra: Any) -> Any:
    values = {**record, **extra}
    return cls(**{name: values[name] for name in cls.__dataclass_fields__})


def _verify_export(
    records: list[dict[str, Any]], master: bytes, tenant_id: str
) -> dict[str, tuple[Any, Any, Any]]:
    """Per session: the window, event and coverage verifications of the export."""
    runs = [sid for sid, _ in itertools.groupby(r["session_id"] for r in records)]
    assert len(runs) == len(set(runs)), "a session's records are not one block"
    blocks: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        blocks.setdefault(record["session_id"], []).append(record)
    results = {}
    chain_key = tenant_chain_key(master, tenant_id)
    for session_id, block in blocks.items():
        kinds = [r["record"] for r in block]
        assert kinds == sorted(kinds, key=["window", "event", "tenant_link"].index)
        key = session_hmac_key(master, session_id)
        windows = [_fields(WindowRecord, r) for r in block if r["record"] == "window"]
        events = [_fields(EventRecord, r) for r in block if r["record"] == "event"]
        links = [_fields(TenantLink, r) for r in block if r["record"] == "tenant_link"]
        for link in links:
            assert tenant_link_hmac(chain_key, link) == link.hmac
        results[session_id] = (
            verify_windows(windows, key, session_id=session_id),
            verify_events(events, key, session_id=session_id),
            verify_coverage(windows, links, session_id=session_id),
        )
    return results


async def _insert_windows(gateway: GatewayServer, rows: list[dict[str, Any]]) -> None:
    engine = create_engine(gateway.settings.store_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(AuditWindow), rows)
    finally:
        await engine.dispose()


def _continued_session(
    master: bytes, wired: WiredTenant, key_id: str
) -> tuple[str, list[dict[str, Any]]]:
    """Rows of a session with a window 1, a window 2 and a fan-out sibling of it."""
    session_id = ids.new_session_id()
    key = session_hmac_key(master, session_id)

    def window(parents: tuple[WindowRecord, ...], text: str) -> WindowRecord:
        return new_window(
            key,
            parents,
            session_id=session_id,
            window_id=ids.new_window_id(),
            timestamp=format_timestamp(datetime.now(UTC)),
            content_hash=content_hash(text),
            dpe_report_hash=dpe_report_hash({}),
        )

    root = window((), "one")
    children = [window((root,), "two"), window((root,), "sibling")]
    rows = [
        {name: getattr(record, name) for name in WindowRecord.__dataclass_fields__}
        | {
            "tenant_id": wired.tenant.tenant_id,
            "trail_id": ids.new_trail_id(),
            "request_id": f"req_{number}",
            "key_id": key_id,
            "endpoint": "chat.completions",
            "provider": "openai",
            "model": "gpt-4o",
            "outcome": "allow",
            "status": 200,
            "created_at": datetime.now(UTC),
        }
        for number, record in enumerate([root, *children])
    ]
    return session_id, rows


# --- GET /v1/audit/sessions -------------------------------------------------------


def test_sessions_are_listed_newest_first_with_a_summary(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    responses = [_chat(gateway, wired.api_key) for _ in range(3)]
    body = _get(gateway, wired.api_key, "/v1/audit/sessions").json()
    assert body["object"] == "list"
    assert body["has_more"] is False
    assert [row["session_id"] for row in body["data"]] == [
        _session_of(r) for r in reversed(responses)
    ]
    newest, call = body["data"][0], responses[-1]
    detail = _get(
        gateway, wired.api_key, f"/v1/audit/sessions/{newest['session_id']}"
    ).json()
    window = detail["windows"][0]
    assert newest["window_count"] == 1
    assert newest["first_timestamp"] == newest["last_timestamp"] == window["timestamp"]
    assert newest["key_id"] == wired.api_key.split("_")[2]
    assert newest["last_outcome"] == window["outcome"]
    assert newest["last_status"] == 200
    assert newest["last_trail_id"] == call.headers["crp-compliance-audit-trail-id"]


def test_cursor_pages_cover_every_session_exactly_once(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    made = _calls(gateway, wired.api_key, 5)
    pages = _pages(gateway, wired.api_key, limit=2)
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    listed = [row["session_id"] for page in pages for row in page["data"]]
    assert listed == list(reversed(made))


def test_a_continued_session_is_listed_once_with_all_its_windows(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    master = run(_master(gateway, wired.tenant.tenant_id))
    key_id = wired.api_key.split("_")[2]
    before = _calls(gateway, wired.api_key, 2)
    continued, rows = _continued_session(master, wired, key_id)
    run(_insert_windows(gateway, rows))
    after = _calls(gateway, wired.api_key, 2)

    for limit in (1, 2, 50):
        listed = _listed(gateway, wired.api_key, limit=limit)
        assert listed == [*reversed(after), continued, *reversed(before)]
    summary = _pages(gateway, wired.api_key, limit=3)[0]["data"][2]
    assert summary["session_id"] == continued
    assert summary["window_count"] == 3
    assert summary["first_timestamp"] == rows[0]["timestamp"]
    assert summary["last_trail_id"] == rows[2]["trail_id"]

    detail = _get(gateway, wired.api_key, f"/v1/audit/sessions/{continued}").json()
    assert [w["window_number"] for w in detail["windows"]] == [1, 2, 2]
    assert [w["hmac"] for w in detail["windows"]] == [r["hmac"] for r in rows]
    windows = [_fields(WindowRecord, w) for w in detail["windows"]]
    key = session_hmac_key(master, continued)
    assert verify_windows(windows, key).status is ChainStatus.VALID


def test_sessions_can_be_filtered_by_time_and_key(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    key_id, inference = _inference_key(gateway, wired.api_key)
    first = _calls(gateway, wired.api_key, 1)
    boundary = _moment()
    by_app = _calls(gateway, inference, 1)
    last = _calls(gateway, wired.api_key, 1)

    assert _listed(gateway, wired.api_key, since=boundary) == last + by_app
    assert _listed(gateway, wired.api_key, until=boundary) == first
    assert _listed(gateway, wired.api_key, key_id=key_id) == by_app
    assert _listed(gateway, wired.api_key, until=boundary, key_id=key_id) == []


# --- GET /v1/audit/sessions/{session_id} ------------------------------------------


def test_a_session_shows_its_chained_windows_and_events(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    session_id = _session_of(_chat(gateway, wired.api_key))
    response = _get(gateway, wired.api_key, f"/v1/audit/sessions/{session_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["session_id"] == session_id
    assert [set(w) for w in body["windows"]] == [set(audit_export.WINDOW_FIELDS)]
    assert all(set(e) == set(audit_export.EVENT_FIELDS) for e in body["events"])
    assert [e["seq"] for e in body["events"]] == [1, 2]
    assert [e["event_type"] for e in body["events"]] == [
        "SESSION_CREATED",
        "DISPATCH_COMPLETED",
    ]
    master = run(_master(gateway, wired.tenant.tenant_id))
    key = session_hmac_key(master, session_id)
    events = [_fields(EventRecord, e, session_id=session_id) for e in body["events"]]
    assert verify_events(events, key).status is ChainStatus.VALID
    for secret in (wired.api_key, wired.openai_key):
        assert secret not in response.text


@pytest.mark.parametrize(
    "session_id", ["crp_sess_" + "0" * 32, "not-a-session", "crp_sess_x"]
)
def test_an_unknown_session_is_not_found(
    gateway: GatewayServer, wired: WiredTenant, session_id: str
) -> None:
    response = _get(gateway, wired.api_key, f"/v1/audit/sessions/{session_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "session_not_found"


# --- isolation and roles ---------------------------------------------------------


def test_another_tenant_sees_none_of_the_sessions(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    since = _moment()
    session_id = _calls(gateway, wired.api_key, 1)[0]
    other = sign_up(gateway).api_key
    assert _get(gateway, other, "/v1/audit/sessions").json()["data"] == []
    assert (
        _listed(gateway, other, since=since, key_id=wired.api_key.split("_")[2]) == []
    )
    detail = _get(gateway, other, f"/v1/audit/sessions/{session_id}")
    assert detail.status_code == 404
    assert detail.json()["error"]["code"] == "session_not_found"
    assert _records(_export(gateway, other, since=since)) == []
    assert _records(_export(gateway, other, since=since, session_id=session_id)) == []
    assert _export(gateway, wired.api_key, since=since).text.count(session_id) > 0


def test_an_inference_key_is_refused(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    session_id = _calls(gateway, wired.api_key, 1)[0]
    _, inference = _inference_key(gateway, wired.api_key)
    for path, params in (
        ("/v1/audit/sessions", {}),
        (f"/v1/audit/sessions/{session_id}", {}),
        ("/v1/audit/export", {"since": "2020-01-01T00:00:00Z"}),
    ):
        response = _get(gateway, inference, path, **params)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_role"
        assert session_id not in response.text


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/audit/sessions", {"since": "yesterday"}, "invalid_timestamp"),
        ("/v1/audit/sessions", {"since": "2026-05-25T10:00:00"}, "invalid_timestamp"),
        ("/v1/audit/sessions", {"until": "2026-13-25T10:00:00Z"}, "invalid_timestamp"),
        (
            "/v1/audit/sessions",
            {"since": "2026-05-26T00:00:00Z", "until": "2026-05-25T00:00:00Z"},
            "invalid_time_range",
        ),
        ("/v1/audit/sessions", {"cursor": "bm90IGEgY3Vyc29y"}, "invalid_cursor"),
        ("/v1/audit/sessions", {"cursor": "%%%"}, "invalid_cursor"),
        ("/v1/audit/sessions", {"limit": "0"}, "invalid_request"),
        ("/v1/audit/sessions", {"limit": "501"}, "invalid_request"),
        ("/v1/audit/export", {}, "missing_parameter"),
        (
            "/v1/audit/export",
            {"since": "2026-05-25 10:00:00 02:00"},
            "invalid_timestamp",
        ),
        (
            "/v1/audit/export",
            {"since": "2026-05-25T10:00:00+02:00", "until": "2026-05-25T07:59:59Z"},
            "invalid_time_range",
        ),
    ],
)
def test_bad_parameters_are_a_400(
    gateway: GatewayServer,
    wired: WiredTenant,
    path: str,
    params: dict[str, str],
    code: str,
) -> None:
    response = _get(gateway, wired.api_key, path, **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == code
    assert error["message"]


# --- GET /v1/audit/export ---------------------------------------------------------


def test_the_export_holds_exactly_the_range_and_reverifies(
    gateway: GatewayServer, wired: WiredTenant
) -> None:
    before = _calls(gateway, wired.api_key, 1)
    since = _moment()
    inside = _calls(gateway, wired.api_key, 3)
    until = _moment()
    after = _calls(gateway, wired.api_key, 1)

    response = _export(gateway, wired.api_key, since=since, until=until)
    assert response.headers["content-type"].startswith("application/x-ndjson")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="crp-audit-')
    assert disposition.endswith('.ndjson"')
    records = _records(response)
    assert {r["record"] for r in records} == {"window", "event", "tenant_link"}
    sessions = list(dict.fromkeys(r["session_id"] for r in records))
    assert sessions == inside
    for secret in (
        wired.api_key,
        wired.openai_key,
        gateway.settings.secret_key_value(),
    ):
        assert secret not in response.text

    master = run(_master(gateway, wired.tenant.tenant_id))
    results = _verify_export(records, master, wired.tenant.tenant_id)
    assert set(results) == set(inside)
    for windows, events, coverage in results.values():
        assert windows.status is ChainStatus.VALID
        assert windows.checked == 1
        assert events.status is ChainStatus.VALID
        assert events.checked == 2
        assert coverage.status is ChainStatus.VALID

    tampered = [dict(r) for r in records]
    tampered[0]["content_hash"] = "sha256:" + "0" * 64
    windows, _, _ = _verify_export(tampered, master, wired.tenant.tenant_id)[inside[0]]
    assert windows.status is ChainStatus.BROKEN

    everything = _records(_export(gateway, wired.api_key, since=since))
    assert list(dict.fromkeys(r["session_id"] for r in everything)) == inside + after
    assert before[0] not in {r["session_id"] for r in everything}
    one = _records(_export(gateway, wired.api_key, since=since, session_id=inside[1]))
    assert {r["session_id"] for r in one} == {inside[1]}
    assert len(one) == 1 + 2 + 1


def test_the_export_streams_in_pages_without_losing_a_record(
    gateway: GatewayServer, wired: WiredTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = _moment()
    made = _calls(gateway, wired.api_key, 5)
    master = run(_master(gateway, wired.tenant.tenant_id))
    continued, rows = _continued_session(master, wired, "k")
    run(_insert_windows(gateway, rows))
    whole = _export(gateway, wired.api_key, since=since).text

    monkeypatch.setattr(audit_export, "SESSION_PAGE", 2)
    monkeypatch.setattr(audit_export, "RECORD_PAGE", 1)
    paged = _export(gateway, wired.api_key, since=since).text
    assert paged == whole
    records = [json.loads(line) for line in paged.splitlines()]
    assert list(dict.fromkeys(r["session_id"] for r in records)) == [*made, continued]
    assert len(records) == 5 * (1 + 2 + 1) + 3
    results = _verify_export(records, master, wired.tenant.tenant_id)
    assert results[continued][0].status is ChainStatus.VALID
    assert results[continued][0].checked == 3
    assert all(w.status is ChainStatus.VALID for w, _, _ in results.values())
