"""Window chain, event chain, tenant rolling chain and their verification.

Digest references: §5.5 (window HMAC chain), §5.6 (event chain), §5.7 (chain
integrity and the verifier algorithm), §5.8 (vectors), §6 (the NDJSON event
shape these records export to); 015§6.4 (erased spans are marked TRUNCATED).

Published encoding (§5.5 decision, G6; to go into `/.well-known/crp-gateway.json`)::

    window_hmac = HMAC-SHA256(session_hmac_key, UTF-8(session_id
                  || decimal(window_number) || timestamp || content_hash
                  || dpe_report_hash || prev_window_hmac))
    event_hmac  = HMAC-SHA256(session_hmac_key, UTF-8(event_type || timestamp
                  || event_data_hash || window_id || prev_event_hmac))

``||`` is concatenation without separator; hashes and HMACs are written
``sha256:<64 lowercase hex>`` both as inputs and as outputs; timestamps are
RFC 3339 UTC with ``Z`` and stored verbatim (`format_timestamp`); the root's
``prev`` is the empty string; a fan-in's ``prev`` is its parents' HMACs sorted
lexicographically and joined with ``|``; fan-out children all use the
parent's HMAC. Concatenation without separators is only unambiguous because
every field has a fixed format, so the builders refuse malformed fields and
the verifiers report them as BROKEN. ``event_data_hash`` and
``dpe_report_hash`` are SHA-256 over canonical JSON (sorted keys, no
whitespace, UTF-8; `canonical_json`).

Decisions:

* G7: the chained value is `CRP-Provenance-HMAC`; `CRP-Provenance-Window-HMAC`
  is the same message with an empty ``prev`` (`standalone_window_hmac`).
* G8: the six-field window formula, never 001§6.3's short form.
* G19: a halted call still gets a window (``dpe_report_hash`` of a DPE record
  with ``halted: true``) and a ``SAFETY_HALT`` event; nothing here special-cases
  halts, so the lead just builds them the same way.
* G5: `TenantLink` is a per-tenant (or per-key) rolling chain with one link per
  window of any session, keyed by `keys.tenant_chain_key`. A per-session chain
  cannot see its own tail being deleted; `verify_coverage` cross-checks a
  session's windows against the tenant chain, and `verify_tenant_chain`'s
  ``head`` (a tip kept outside the audit tables) catches truncation of the
  tenant chain's own tail. Our own records use canonical JSON as the HMAC
  message (no interop requirement, and it is unambiguous by construction).
* 015§6.4: an erased span is replaced by a `Truncation` marker that carries
  the span's first and last index, the HMAC the span chained from and the last
  erased HMAC (so later records still verify), and its own HMAC. A chain with
  markers verifies as TRUNCATED (header value PARTIAL, §5.7), never as VALID;
  a gap without a marker is BROKEN.
  Markers are append-only too, so erasing a longer prefix of the tenant chain
  later adds a marker over ``seq`` 1..n that supersedes the shorter one
  (`verify_tenant_chain`).
* §5.7 step 2: windows must come in a topological order (sorting by
  ``window_number`` is one, as children always have larger numbers); events
  and links in ``seq`` order. Structure checks: one root (window 1), parents
  known before children, numbers increasing along every edge, no duplicate
  HMAC, consecutive ``seq``.
* §5.7 "decision": incremental checks use `window_hmac` on the new record and
  the stored tip; full verification is `verify_windows` / `verify_events`.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

from crp_gateway.audit.ids import SESSION_ID, WINDOW_ID
from crp_gateway.governance.headers import ChainIntegrity

__all__ = [
    "EVENT_TYPES",
    "HASH_PREFIX",
    "ChainStatus",
    "EventRecord",
    "JSONValue",
    "TenantLink",
    "Truncation",
    "Verification",
    "WindowRecord",
    "canonical_json",
    "content_hash",
    "dpe_report_hash",
    "event_data_hash",
    "event_hmac",
    "fan_in_prev",
    "format_timestamp",
    "new_event",
    "new_tenant_link",
    "new_window",
    "sha256_hash",
    "standalone_window_hmac",
    "tenant_link_hmac",
    "truncate",
    "truncation_hmac",
    "verify_coverage",
    "verify_events",
    "verify_tenant_chain",
    "verify_windows",
    "window_after",
    "window_hmac",
]

JSONValue: TypeAlias = (
    bool | int | float | str | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)

HASH_PREFIX = "sha256:"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z")
_EVENT_TYPE = re.compile(r"[A-Z][A-Z0-9_]*")
_TENANT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_FAN_IN_SEPARATOR = "|"

#: Event types of 011§1 plus those defined elsewhere (§5.6). Informative: the
#: chain accepts any upper-case name, so a newer type never breaks a chain.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "SESSION_CREATED",
        "SESSION_CONTINUED",
        "SESSION_TERMINATED",
        "DISPATCH_STARTED",
        "DISPATCH_COMPLETED",
        "DISPATCH_FAILED",
        "RE_DISPATCH",
        "STRATEGY_UPGRADE",
        "DPE_COMPLETED",
        "FABRICATION_DETECTED",
        "DISTORTION_DETECTED",
        "CONTRADICTION_DETECTED",
        "REPETITION_DETECTED",
        "COMPLETENESS_GAP",
        "FLOW_REMEDIATION",
        "STOP_INJECT",
        "SAFETY_HALT",
        "SAFETY_BUDGET_DEPLETED",
        "OVERSIGHT_TRIGGERED",
        "POLICY_VIOLATION",
        "PII_DETECTED",
        "EU_AI_ACT_CLASSIFIED",
        "COMPLY_EXPORT",
        "FACT_RETRIEVED",
        "CKF_ETAG_CHANGED",
        "TOOL_CALL",
        "AGENT_LOOP_ITERATION",
        "FAN_OUT_CREATED",
        "FAN_IN_MERGED",
        "COMPLETENESS_CONTINUATION",
        "FLOW_STITCH",
        "SUMMARISATION",
        "MODE_TRANSITION",
        "SUB_AGENT_RESULT",
    }
)


# --- encoding helpers ---------------------------------------------------------


def sha256_hash(data: bytes) -> str:
    """``sha256:<lowercase hex>`` of ``data`` (the §5.5 hash representation)."""
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def canonical_json(value: JSONValue) -> bytes:
    """Sorted keys, no whitespace, UTF-8, no NaN/Infinity (§5.6 decision)."""
    text = json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return text.encode("utf-8")


def content_hash(text: str) -> str:
    """SHA-256 of the normalised completion text (G6; normalising is the caller's)."""
    return sha256_hash(text.encode("utf-8"))


def dpe_report_hash(report: Mapping[str, JSONValue]) -> str:
    """SHA-256 of the canonical JSON of our analysis record; ``{}`` if none (G6)."""
    return sha256_hash(canonical_json(report))


def event_data_hash(data: Mapping[str, JSONValue]) -> str:
    """SHA-256 of the canonical JSON of an event's key fields (§5.6)."""
    return sha256_hash(canonical_json(data))


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z``: seconds, or microseconds when there are any."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if utc.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return utc.strftime(pattern)


def fan_in_prev(parent_hmacs: Iterable[str]) -> str:
    """The ``prev`` of a window: ``""`` (root), the parent's HMAC, or fan-in's
    ``join("|", sort_lexicographic(parent_hmacs))`` (§5.5)."""
    parents = sorted(parent_hmacs)
    if len(set(parents)) != len(parents):
        raise ValueError("a window cannot have the same parent twice")
    for parent in parents:
        _require_hash(parent, "parent HMAC")
    return _FAN_IN_SEPARATOR.join(parents)


def _mac(key: bytes, message: bytes) -> str:
    return HASH_PREFIX + _hmac.new(key, message, hashlib.sha256).hexdigest()


def _same(left: str, right: str) -> bool:
    return _hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


def _require_hash(value: str, what: str) -> None:
    if not _HASH.fullmatch(value):
        raise ValueError(f"{what} must be sha256:<64 lowercase hex>")


def _require_timestamp(value: str) -> None:
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError("timestamp must be RFC 3339 UTC ending in Z")


def _split_prev(prev: str) -> list[str] | None:
    """The parent HMACs named by a ``prev`` value, or None if it is malformed."""
    if prev == "":
        return []
    parents = prev.split(_FAN_IN_SEPARATOR)
    if any(not _HASH.fullmatch(p) for p in parents) or parents != sorted(set(parents)):
        return None
    return parents


# --- records --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WindowRecord:
    """One window of a session's chain (one database row).

    ``prev_hmac`` is the exact ``prev`` input (``""``, one HMAC, or the fan-in
    join); ``hmac`` is the chained value (`CRP-Provenance-HMAC`, G7).
    """

    session_id: str
    window_id: str
    window_number: int
    timestamp: str
    content_hash: str
    dpe_report_hash: str
    prev_hmac: str
    hmac: str


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """One event of a session's event chain (one database row).

    ``seq`` is the 1-based position in the session's chain. ``window_id`` is
    ``""`` for an event that belongs to no window. ``data`` is the canonical
    JSON of the hashed key fields, or ``""`` once the payload is erased (the
    hash stays, so the chain still verifies).
    """

    session_id: str
    seq: int
    event_type: str
    timestamp: str
    window_id: str
    data: str
    data_hash: str
    prev_hmac: str
    hmac: str


@dataclass(frozen=True, kw_only=True)
class TenantLink:
    """One link of a tenant's rolling chain: it anchors one window (G5)."""

    tenant_id: str
    seq: int
    timestamp: str
    session_id: str
    window_id: str
    window_number: int
    window_hmac: str
    prev_hmac: str
    hmac: str


class ChainKind(StrEnum):
    """Which chain a `Truncation` marker belongs to."""

    WINDOWS = "windows"
    EVENTS = "events"
    TENANT = "tenant"


@dataclass(frozen=True, kw_only=True)
class Truncation:
    """An erased span ``first..last`` of one chain (015§6.4).

    ``chain_id`` is the session id (windows, events) or the tenant id.
    ``first``/``last`` are window numbers or ``seq`` values. ``prev_hmac`` is
    what the first erased record chained from; ``last_hmac`` is the last erased
    record's HMAC, from which the records after the span chain on.
    """

    chain: str
    chain_id: str
    first: int
    last: int
    erased_at: str
    reason: str
    prev_hmac: str
    last_hmac: str
    hmac: str


WindowItem: TypeAlias = WindowRecord | Truncation
EventItem: TypeAlias = EventRecord | Truncation
TenantItem: TypeAlias = TenantLink | Truncation
#: A chain key, or a function giving the key of each record (key versions).
KeySource: TypeAlias = bytes | Callable[[Any], bytes]


# --- HMAC computation -------------------------------------------------------------


def window_hmac(
    key: bytes,
    *,
    session_id: str,
    window_number: int,
    timestamp: str,
    content_hash: str,
    dpe_report_hash: str,
    prev_hmac: str,
) -> str:
    """The §5.5 six-field window HMAC (no format checks; see `new_window`)."""
    message = (
        f"{session_id}{window_number}{timestamp}{content_hash}"
        f"{dpe_report_hash}{prev_hmac}"
    )
    return _mac(key, message.encode("utf-8"))


def _record_window_hmac(key: bytes, record: WindowRecord, prev_hmac: str) -> str:
    return window_hmac(
        key,
        session_id=record.session_id,
        window_number=record.window_number,
        timestamp=record.timestamp,
        content_hash=record.content_hash,
        dpe_report_hash=record.dpe_report_hash,
        prev_hmac=prev_hmac,
    )


def standalone_window_hmac(key: bytes, record: WindowRecord) -> str:
    """`CRP-Provenance-Window-HMAC`: the window's message with ``prev = ""`` (G7)."""
    return _record_window_hmac(key, record, "")


def event_hmac(
    key: bytes,
    *,
    event_type: str,
    timestamp: str,
    data_hash: str,
    window_id: str,
    prev_hmac: str,
) -> str:
    """The §5.6 event HMAC (no format checks; see `new_event`)."""
    message = f"{event_type}{timestamp}{data_hash}{window_id}{prev_hmac}"
    return _mac(key, message.encode("utf-8"))


def tenant_link_hmac(key: bytes, link: TenantLink) -> str:
    """Our G5 link HMAC: canonical JSON of every field but ``hmac``."""
    body: dict[str, JSONValue] = {
        "kind": "crp-gw.tenant-link/1",
        "tenant_id": link.tenant_id,
        "seq": link.seq,
        "timestamp": link.timestamp,
        "session_id": link.session_id,
        "window_id": link.window_id,
        "window_number": link.window_number,
        "window_hmac": link.window_hmac,
        "prev_hmac": link.prev_hmac,
    }
    return _mac(key, canonical_json(body))


def truncation_hmac(key: bytes, marker: Truncation) -> str:
    """A marker's HMAC: canonical JSON of every field but ``hmac`` (ours)."""
    body: dict[str, JSONValue] = {
        "kind": "crp-gw.truncated/1",
        "chain": marker.chain,
        "chain_id": marker.chain_id,
        "first": marker.first,
        "last": marker.last,
        "erased_at": marker.erased_at,
        "reason": marker.reason,
        "prev_hmac": marker.prev_hmac,
        "last_hmac": marker.last_hmac,
    }
    return _mac(key, canonical_json(body))


# --- builders -----------------------------------------------------------------------


def _tip(item: WindowItem | EventItem | TenantItem) -> str:
    return item.last_hmac if isinstance(item, Truncation) else item.hmac


def _window_number(item: WindowItem) -> int:
    return item.last if isinstance(item, Truncation) else item.window_number


def new_window(
    key: bytes,
    parents: Sequence[WindowItem],
    *,
    session_id: str,
    window_id: str,
    timestamp: str,
    content_hash: str,
    dpe_report_hash: str,
) -> WindowRecord:
    """The next window: root (no parents, number 1), a child or a fan-out
    sibling (one parent), or a fan-in (several); number = max(parents) + 1."""
    if not SESSION_ID.fullmatch(session_id):
        raise ValueError("session_id is not a crp_sess_ id")
    if not WINDOW_ID.fullmatch(window_id):
        raise ValueError("window_id is not a crp_win_ id")
    _require_timestamp(timestamp)
    _require_hash(content_hash, "content_hash")
    _require_hash(dpe_report_hash, "dpe_report_hash")
    return window_after(
        key,
        prev_hmac=fan_in_prev(_tip(parent) for parent in parents),
        parent_number=max((_window_number(p) for p in parents), default=0),
        session_id=session_id,
        window_id=window_id,
        timestamp=timestamp,
        content_hash=content_hash,
        dpe_report_hash=dpe_report_hash,
    )


def window_after(
    key: bytes,
    *,
    prev_hmac: str,
    parent_number: int,
    session_id: str,
    window_id: str,
    timestamp: str,
    content_hash: str,
    dpe_report_hash: str,
) -> WindowRecord:
    """The window that follows a parent known only by its HMAC and number (a
    session token's ``ct`` and ``win``); ``("", 0)`` for a session's root."""
    if (prev_hmac == "") != (parent_number == 0):
        raise ValueError("a root window has no prev; a child has one")
    record = WindowRecord(
        session_id=session_id,
        window_id=window_id,
        window_number=parent_number + 1,
        timestamp=timestamp,
        content_hash=content_hash,
        dpe_report_hash=dpe_report_hash,
        prev_hmac=prev_hmac,
        hmac="",
    )
    return replace(record, hmac=_record_window_hmac(key, record, prev_hmac))


def _next_seq(previous: EventItem | TenantItem | None) -> tuple[int, str]:
    if previous is None:
        return 1, ""
    last = previous.last if isinstance(previous, Truncation) else previous.seq
    return last + 1, _tip(previous)


def new_event(
    key: bytes,
    previous: EventItem | None,
    *,
    session_id: str,
    event_type: str,
    timestamp: str,
    window_id: str,
    data: Mapping[str, JSONValue],
) -> EventRecord:
    """The next event of a session, chained to ``previous`` (None: the first)."""
    if not SESSION_ID.fullmatch(session_id):
        raise ValueError("session_id is not a crp_sess_ id")
    if not _EVENT_TYPE.fullmatch(event_type):
        raise ValueError("event_type must be an upper-case name")
    if window_id and not WINDOW_ID.fullmatch(window_id):
        raise ValueError("window_id is not a crp_win_ id")
    _require_timestamp(timestamp)
    seq, prev = _next_seq(previous)
    text = canonical_json(data)
    data_hash = sha256_hash(text)
    return EventRecord(
        session_id=session_id,
        seq=seq,
        event_type=event_type,
        timestamp=timestamp,
        window_id=window_id,
        data=text.decode("utf-8"),
        data_hash=data_hash,
        prev_hmac=prev,
        hmac=event_hmac(
            key,
            event_type=event_type,
            timestamp=timestamp,
            data_hash=data_hash,
            window_id=window_id,
            prev_hmac=prev,
        ),
    )


def new_tenant_link(
    key: bytes,
    previous: TenantItem | None,
    window: WindowRecord,
    *,
    tenant_id: str,
    timestamp: str,
) -> TenantLink:
    """The next link of a tenant's rolling chain, anchoring ``window`` (G5)."""
    if not _TENANT_ID.fullmatch(tenant_id):
        raise ValueError("tenant_id has an unexpected format")
    _require_timestamp(timestamp)
    _require_hash(window.hmac, "window HMAC")
    seq, prev = _next_seq(previous)
    unsigned = TenantLink(
        tenant_id=tenant_id,
        seq=seq,
        timestamp=timestamp,
        session_id=window.session_id,
        window_id=window.window_id,
        window_number=window.window_number,
        window_hmac=window.hmac,
        prev_hmac=prev,
        hmac="",
    )
    return replace(unsigned, hmac=tenant_link_hmac(key, unsigned))


def _span_bounds(
    records: Sequence[WindowItem | EventItem | TenantItem],
) -> tuple[int, int]:
    def bounds(item: WindowItem | EventItem | TenantItem) -> tuple[int, int]:
        if isinstance(item, Truncation):
            return item.first, item.last
        if isinstance(item, WindowRecord):
            return item.window_number, item.window_number
        return item.seq, item.seq

    return bounds(records[0])[0], bounds(records[-1])[1]


def _span_chain(item: WindowItem | EventItem | TenantItem) -> tuple[ChainKind, str]:
    if isinstance(item, Truncation):
        return ChainKind(item.chain), item.chain_id
    if isinstance(item, WindowRecord):
        return ChainKind.WINDOWS, item.session_id
    if isinstance(item, EventRecord):
        return ChainKind.EVENTS, item.session_id
    return ChainKind.TENANT, item.tenant_id


def truncate(
    key: bytes,
    span: Sequence[WindowItem] | Sequence[EventItem] | Sequence[TenantItem],
    *,
    erased_at: str,
    reason: str,
) -> Truncation:
    """The marker that replaces ``span``, a contiguous run of one chain
    (for windows: a path, or the whole session) that is being erased."""
    if not span:
        raise ValueError("an erased span has at least one record")
    _require_timestamp(erased_at)
    if not reason or not reason.isprintable():
        raise ValueError("a truncation needs a printable reason")
    chain, chain_id = _span_chain(span[0])
    first, last = _span_bounds(span)
    unsigned = Truncation(
        chain=chain.value,
        chain_id=chain_id,
        first=first,
        last=last,
        erased_at=erased_at,
        reason=reason,
        prev_hmac=span[0].prev_hmac,
        last_hmac=_tip(span[-1]),
        hmac="",
    )
    return replace(unsigned, hmac=truncation_hmac(key, unsigned))


# --- verification -------------------------------------------------------------------


class ChainStatus(StrEnum):
    """Outcome of a full verification (§5.7, 015§6.4)."""

    VALID = "VALID"
    BROKEN = "BROKEN"
    TRUNCATED = "TRUNCATED"  # every record verifies, but some spans were erased


@dataclass(frozen=True)
class Verification:
    """Result of a verifier. ``index`` is the 0-based position of the first bad
    item in the list passed in; ``checked`` counts items verified before it."""

    status: ChainStatus
    checked: int
    index: int | None = None
    reason: str = ""
    truncated: tuple[tuple[int, int], ...] = field(default=())

    @property
    def ok(self) -> bool:
        """VALID or TRUNCATED: nothing failed to recompute."""
        return self.status is not ChainStatus.BROKEN

    @property
    def integrity(self) -> ChainIntegrity:
        """The `CRP-Provenance-Chain-Integrity` value (§5.7): TRUNCATED is
        PARTIAL (windows missing); a chain of at most one window is UNVERIFIED."""
        if self.status is ChainStatus.BROKEN:
            return ChainIntegrity.BROKEN
        if self.status is ChainStatus.TRUNCATED:
            return ChainIntegrity.PARTIAL
        return ChainIntegrity.VALID if self.checked > 1 else ChainIntegrity.UNVERIFIED


def _broken(index: int, reason: str) -> Verification:
    return Verification(ChainStatus.BROKEN, checked=index, index=index, reason=reason)


def _finished(count: int, spans: list[tuple[int, int]]) -> Verification:
    status = ChainStatus.TRUNCATED if spans else ChainStatus.VALID
    return Verification(status, checked=count, truncated=tuple(spans))


def _marker_problem(
    key: bytes, marker: Truncation, chain: ChainKind, chain_id: str
) -> str | None:
    if marker.chain != chain.value or marker.chain_id != chain_id:
        return "truncation marker of another chain"
    if not 1 <= marker.first <= marker.last:
        return "truncation marker with an empty span"
    if not _HASH.fullmatch(marker.last_hmac):
        return "malformed truncation marker"
    if not _same(truncation_hmac(key, marker), marker.hmac):
        return "truncation marker HMAC mismatch"
    return None


@dataclass
class _DagState:
    """Local state of one `verify_windows` run: HMAC -> window number."""

    known: dict[str, int] = field(default_factory=dict)
    has_root: bool = False
    spans: list[tuple[int, int]] = field(default_factory=list)


def _window_malformed(record: WindowRecord, session_id: str) -> str | None:
    if record.session_id != session_id:
        return "window of another session"
    if not (
        WINDOW_ID.fullmatch(record.window_id)
        and _TIMESTAMP.fullmatch(record.timestamp)
        and _HASH.fullmatch(record.content_hash)
        and _HASH.fullmatch(record.dpe_report_hash)
        and _HASH.fullmatch(record.hmac)
    ):
        return "malformed window field"
    return None


def _link_problem(prev: str, first_number: int, state: _DagState) -> str | None:
    """Structure of one DAG edge set (§5.7 step 5)."""
    parents = _split_prev(prev)
    if parents is None:
        return "malformed prev HMAC"
    if not parents:
        if state.has_root or first_number != 1:
            return "second root or root not window 1"
        state.has_root = True
        return None
    if any(parent not in state.known for parent in parents):
        return "parent not verified before its child"
    if first_number <= max(state.known[parent] for parent in parents):
        return "window number does not increase"
    return None


def _window_step(
    key: bytes, item: WindowItem, session_id: str, state: _DagState
) -> str | None:
    if isinstance(item, Truncation):
        problem = _marker_problem(key, item, ChainKind.WINDOWS, session_id)
        number = item.first
    else:
        problem = _window_malformed(item, session_id)
        number = item.window_number
    problem = problem or _link_problem(item.prev_hmac, number, state)
    if problem:
        return problem
    if isinstance(item, WindowRecord):
        expected = _record_window_hmac(key, item, item.prev_hmac)
        if not _same(expected, item.hmac):
            return "window HMAC mismatch"
    else:
        state.spans.append((item.first, item.last))
    tip = _tip(item)
    if tip in state.known:
        return "duplicate window HMAC"
    state.known[tip] = _window_number(item)
    return None


def verify_windows(
    records: Sequence[WindowItem],
    key: bytes,
    *,
    session_id: str | None = None,
    expected_tips: Iterable[str] = (),
) -> Verification:
    """Full verification of one session's window chain (§5.7).

    ``records`` in topological order (e.g. by window number), markers in the
    place of the span they replace. ``expected_tips`` are the stored chain tips
    (the token's ``ct`` per continuation point, G12); one that does not verify
    means the tail was removed: BROKEN at ``len(records)``.
    """
    if not records:
        return _finished(0, [])
    sid = session_id or _span_chain(records[0])[1]
    state = _DagState()
    for index, item in enumerate(records):
        problem = _window_step(key, item, sid, state)
        if problem:
            return _broken(index, problem)
    if any(tip not in state.known for tip in expected_tips):
        return _broken(len(records), "stored chain tip not in the chain")
    return _finished(len(records), state.spans)


_LinearCheck = Callable[[bytes, "EventRecord | TenantLink", str], str | None]


def _key_of(key: KeySource, item: Any) -> bytes:
    return key(item) if callable(key) else key


def _verify_linear(
    items: Sequence[EventItem] | Sequence[TenantItem],
    key: KeySource,
    chain: ChainKind,
    chain_id: str,
    check: _LinearCheck,
) -> tuple[Verification, str, int]:
    """Shared walk of the event and tenant chains: returns the result, the tip
    and the last ``seq``."""
    tip, seq, spans = "", 0, []
    for index, item in enumerate(items):
        if not _same(item.prev_hmac, tip):
            return _broken(index, "prev HMAC is not the previous record's"), tip, seq
        if isinstance(item, Truncation):
            problem = _marker_problem(_key_of(key, item), item, chain, chain_id)
            first, last = item.first, item.last
        else:
            problem = check(_key_of(key, item), item, chain_id)
            first = last = item.seq
        if problem is None and first != seq + 1:
            problem = "sequence gap or reorder"
        if problem:
            return _broken(index, problem), tip, seq
        if isinstance(item, Truncation):
            spans.append((first, last))
        tip, seq = _tip(item), last
    return _finished(len(items), spans), tip, seq


def _event_problem(
    key: bytes, item: EventRecord | TenantLink, session_id: str
) -> str | None:
    if not isinstance(item, EventRecord):
        return "not an event"
    if item.session_id != session_id:
        return "event of another session"
    if not (
        _EVENT_TYPE.fullmatch(item.event_type)
        and _TIMESTAMP.fullmatch(item.timestamp)
        and (item.window_id == "" or WINDOW_ID.fullmatch(item.window_id))
        and _HASH.fullmatch(item.data_hash)
    ):
        return "malformed event field"
    if item.data and not _same(sha256_hash(item.data.encode("utf-8")), item.data_hash):
        return "event data does not match its hash"
    expected = event_hmac(
        key,
        event_type=item.event_type,
        timestamp=item.timestamp,
        data_hash=item.data_hash,
        window_id=item.window_id,
        prev_hmac=item.prev_hmac,
    )
    return None if _same(expected, item.hmac) else "event HMAC mismatch"


def verify_events(
    records: Sequence[EventItem],
    key: bytes,
    *,
    session_id: str | None = None,
    expected_tip: str | None = None,
) -> Verification:
    """Full verification of one session's event chain, in ``seq`` order (§5.7).

    ``expected_tip`` (the stored last event HMAC) detects a removed tail.
    """
    if not records:
        return _finished(0, [])
    sid = session_id or _span_chain(records[0])[1]
    result, tip, _ = _verify_linear(records, key, ChainKind.EVENTS, sid, _event_problem)
    if result.ok and expected_tip is not None and not _same(tip, expected_tip):
        return _broken(len(records), "stored event tip is not the last event")
    return result


def _tenant_problem(
    key: bytes, item: EventRecord | TenantLink, tenant_id: str
) -> str | None:
    if not isinstance(item, TenantLink):
        return "not a tenant link"
    if item.tenant_id != tenant_id:
        return "link of another tenant"
    if not (_TIMESTAMP.fullmatch(item.timestamp) and _HASH.fullmatch(item.window_hmac)):
        return "malformed link field"
    return (
        None if _same(tenant_link_hmac(key, item), item.hmac) else "link HMAC mismatch"
    )


def verify_tenant_chain(
    links: Sequence[TenantItem],
    key: KeySource,
    *,
    tenant_id: str | None = None,
    head: tuple[int, str] | None = None,
) -> Verification:
    """Full verification of a tenant's rolling chain (G5), in ``seq`` order.

    ``key`` is the chain key, or a function giving each item's key (after a
    master key rotation, links of one chain come from several versions).
    ``head`` is ``(seq, hmac)`` of the newest link as kept outside the audit
    tables; without it, removing the newest links cannot be detected. Markers
    of successively longer erased prefixes come first, shortest first (each
    covers from ``seq`` 1; see `_superseded_prefix`).
    """
    if not links:
        return (
            _broken(0, "chain is empty but a head is stored")
            if head
            else _finished(0, [])
        )
    tid = tenant_id or _span_chain(links[0])[1]
    skipped, problem = _superseded_prefix(links, key, tid)
    if problem:
        return _broken(skipped, problem)
    result, tip, seq = _verify_linear(
        links[skipped:], key, ChainKind.TENANT, tid, _tenant_problem
    )
    if result.index is not None:
        return _broken(result.index + skipped, result.reason)
    if head is not None and (seq != head[0] or not _same(tip, head[1])):
        return _broken(len(links), "stored head is not the last link")
    return replace(result, checked=len(links))


def _superseded_prefix(
    links: Sequence[TenantItem], key: KeySource, tenant_id: str
) -> tuple[int, str | None]:
    """How many leading prefix markers a later one replaces, or the problem.

    Erasing a longer prefix of the tenant chain adds a marker that covers it
    from ``seq`` 1 (`truncate` over the old marker and the links after it),
    since markers are never deleted. Only the longest prefix marker chains on;
    each one it supersedes must still verify and lie inside its successor.
    """
    count = 0
    while count + 1 < len(links):
        older, newer = links[count], links[count + 1]
        if not (
            isinstance(older, Truncation)
            and isinstance(newer, Truncation)
            and newer.first == 1
        ):
            break
        problem = _marker_problem(
            _key_of(key, older), older, ChainKind.TENANT, tenant_id
        )
        if problem is None and not (
            older.first == 1
            and _same(older.prev_hmac, newer.prev_hmac)
            and older.last < newer.last
        ):
            problem = "superseded truncation marker not inside its successor"
        if problem:
            return count, problem
        count += 1
    return count, None


def verify_coverage(
    windows: Sequence[WindowItem], links: Sequence[TenantItem], *, session_id: str
) -> Verification:
    """Cross-check one session's windows against the tenant chain (G5).

    Run after `verify_windows` and `verify_tenant_chain` passed. A link whose
    window is gone (and not inside a marked span) is BROKEN at that link's
    index in ``links``: this is how a deleted last window shows up. A window
    without a link is BROKEN at ``len(links)`` (reason names the window),
    unless both the session and the tenant chain have erased spans.
    """
    present = {w.hmac for w in windows if isinstance(w, WindowRecord)}
    erased = [(m.first, m.last) for m in windows if isinstance(m, Truncation)]
    linked: set[str] = set()
    for index, link in enumerate(links):
        if isinstance(link, Truncation) or link.session_id != session_id:
            continue
        linked.add(link.window_hmac)
        in_span = any(a <= link.window_number <= b for a, b in erased)
        if link.window_hmac not in present and not in_span:
            return _broken(index, f"window {link.window_number} missing from session")
    if erased and any(isinstance(link, Truncation) for link in links):
        # Only links of erased windows are ever erased, so a session that kept
        # all its windows must still have a link for each.
        return _finished(len(links), erased)
    for window in windows:
        if isinstance(window, WindowRecord) and window.hmac not in linked:
            return _broken(len(links), f"window {window.window_number} has no link")
    return _finished(len(links), erased)
