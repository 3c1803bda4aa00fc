"""Reading one tenant's audit records page by page, for the audit API and export.

Like every :class:`~crp_gateway.store.repositories.TenantScoped` repository,
each statement here pins ``tenant_id`` in the query itself, the correlated
subqueries included, so no cursor or id can reach another tenant's rows.

A session is listed through its *anchor*: the first window (lowest id) of the
session that matches the filters. Every session has exactly one anchor, which
never moves once written (later windows have higher ids), so keyset pages over
anchors ordered by ``(created_at, id)`` cover each session exactly once, even
while calls keep adding windows to sessions or starting new ones. Nothing
assumes one window per session: sessions continue (windows 2, 3, ...) and
fan-out siblings share a window number.

Time filters apply to ``created_at``, the typed moment the record was made
(within a millisecond of its chained ``timestamp`` string, which is not
comparable as text: ``10:00:00.5Z`` sorts before ``10:00:00Z``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import aliased

from crp_gateway.store.models import AuditEvent, AuditTenantLink, AuditWindow
from crp_gateway.store.repositories import TenantScoped


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Which sessions: those with a window matching every given field.

    The range is half-open, ``since <= created_at < until``, so consecutive
    ranges never share a window.
    """

    since: datetime | None = None
    until: datetime | None = None
    key_id: str | None = None
    session_id: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a session's anchor window sits in keyset order."""

    created_at: datetime
    id: int


@dataclass(frozen=True, slots=True)
class SessionAnchor:
    session_id: str
    position: Position


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session at a glance, over all its windows (not only matching ones)."""

    session_id: str
    window_count: int
    first_timestamp: str
    last_timestamp: str
    key_id: str
    last_outcome: str
    last_status: int
    last_trail_id: str


def _matches(window: Any, tenant_id: str, only: SessionFilter) -> list[Any]:
    """The WHERE conditions on ``window`` (the model or an alias of it)."""
    conditions: list[Any] = [window.tenant_id == tenant_id]
    if only.since is not None:
        conditions.append(window.created_at >= only.since)
    if only.until is not None:
        conditions.append(window.created_at < only.until)
    if only.key_id is not None:
        conditions.append(window.key_id == only.key_id)
    if only.session_id is not None:
        conditions.append(window.session_id == only.session_id)
    return conditions


def _beyond(position: Position, *, newest_first: bool) -> ColumnElement[bool]:
    """Anchors strictly after ``position`` in the page order."""
    at, key = AuditWindow.created_at, AuditWindow.id
    if newest_first:
        return or_(
            at < position.created_at, and_(at == position.created_at, key < position.id)
        )
    return or_(
        at > position.created_at, and_(at == position.created_at, key > position.id)
    )


class AuditQueries(TenantScoped):
    """Paged reads of one tenant's audit tables."""

    async def session_anchors(
        self,
        only: SessionFilter,
        *,
        after: Position | None,
        newest_first: bool,
        limit: int,
    ) -> list[SessionAnchor]:
        """Up to ``limit`` sessions matching ``only``, one anchor each, in
        ``(created_at, id)`` order (descending when ``newest_first``)."""
        earlier = aliased(AuditWindow)
        has_earlier = (
            select(earlier.id)
            .where(
                *_matches(earlier, self._tenant_id, only),
                earlier.session_id == AuditWindow.session_id,
                earlier.id < AuditWindow.id,
            )
            .exists()
        )
        statement = (
            self._select(AuditWindow)
            .with_only_columns(
                AuditWindow.session_id, AuditWindow.created_at, AuditWindow.id
            )
            .where(*_matches(AuditWindow, self._tenant_id, only), ~has_earlier)
        )
        if after is not None:
            statement = statement.where(_beyond(after, newest_first=newest_first))
        if newest_first:
            order = (AuditWindow.created_at.desc(), AuditWindow.id.desc())
        else:
            order = (AuditWindow.created_at.asc(), AuditWindow.id.asc())
        statement = statement.order_by(*order).limit(limit)
        rows = (await self._session.execute(statement)).all()
        return [
            SessionAnchor(row.session_id, Position(row.created_at, row.id))
            for row in rows
        ]

    async def summaries(self, session_ids: Sequence[str]) -> dict[str, SessionSummary]:
        """Summaries of ``session_ids`` (those of this tenant), by session id."""
        if not session_ids:
            return {}
        counted = (
            self._select(AuditWindow)
            .with_only_columns(
                AuditWindow.session_id,
                func.count(),
                func.min(AuditWindow.id),
                func.max(AuditWindow.id),
            )
            .where(AuditWindow.session_id.in_(session_ids))
            .group_by(AuditWindow.session_id)
        )
        stats = (await self._session.execute(counted)).all()
        ends = {end for _, _, first, last in stats for end in (first, last)}
        rows = await self._session.scalars(
            self._select(AuditWindow).where(AuditWindow.id.in_(ends))
        )
        by_id = {row.id: row for row in rows}
        summaries: dict[str, SessionSummary] = {}
        for session_id, count, first_id, last_id in stats:
            first, last = by_id[first_id], by_id[last_id]
            summaries[session_id] = SessionSummary(
                session_id=session_id,
                window_count=count,
                first_timestamp=first.timestamp,
                last_timestamp=last.timestamp,
                key_id=first.key_id,
                last_outcome=last.outcome,
                last_status=last.status,
                last_trail_id=last.trail_id,
            )
        return summaries

    async def windows_page(
        self, session_id: str, *, after: tuple[int, int] | None, limit: int
    ) -> Sequence[AuditWindow]:
        """The session's windows after ``(window_number, id)``, in chain order."""
        statement = self._select(AuditWindow).where(
            AuditWindow.session_id == session_id
        )
        if after is not None:
            number, key = after
            statement = statement.where(
                or_(
                    AuditWindow.window_number > number,
                    and_(AuditWindow.window_number == number, AuditWindow.id > key),
                )
            )
        statement = statement.order_by(AuditWindow.window_number, AuditWindow.id)
        return (await self._session.scalars(statement.limit(limit))).all()

    async def events_page(
        self, session_id: str, *, after_seq: int, limit: int
    ) -> Sequence[AuditEvent]:
        """The session's events with ``seq > after_seq``, in chain order."""
        statement = (
            self._select(AuditEvent)
            .where(AuditEvent.session_id == session_id, AuditEvent.seq > after_seq)
            .order_by(AuditEvent.seq)
            .limit(limit)
        )
        return (await self._session.scalars(statement)).all()

    async def links_page(
        self, session_id: str, *, after_seq: int, limit: int
    ) -> Sequence[AuditTenantLink]:
        """The tenant-chain links anchoring the session's windows, in ``seq`` order."""
        statement = (
            self._select(AuditTenantLink)
            .where(
                AuditTenantLink.session_id == session_id,
                AuditTenantLink.seq > after_seq,
            )
            .order_by(AuditTenantLink.seq)
            .limit(limit)
        )
        return (await self._session.scalars(statement)).all()
