"""Structured logging: JSON lines in production, readable lines in development.

Everything (our events, Uvicorn's, SQLAlchemy's warnings) goes through the standard
library's root logger with one structlog formatter, so every line has the same
shape and carries the request id bound by the request-id middleware. Events are
stable dotted names with fields (``tenant.created``, ``http.request``).

A last processor redacts anything shaped like a credential that reached a log line
by mistake: gateway keys, provider keys, bearer tokens. It is a safety net; the
code never logs secrets on purpose.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_SECRET_SHAPES = re.compile(
    r"crp_gw_[a-z2-7]{16}_[a-z2-7]{4,}"  # our gateway keys
    r"|\bsk-[A-Za-z0-9_\-]{8,}"  # OpenAI / Anthropic style keys
    r"|(?i:bearer)\s+[A-Za-z0-9._\-~+/]{8,}=*"
)


def _redact_text(text: str) -> str:
    return _SECRET_SHAPES.sub("[redacted]", text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, dict):
        return {key: _redact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    return value


def drop_color_message(
    _logger: WrappedLogger, _name: str, event: EventDict
) -> EventDict:
    """Drop copies of the message that stdlib records carry as extras."""
    event.pop("color_message", None)
    event.pop("message", None)
    return event


def redact_secrets(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    return {key: _redact(value) for key, value in event.items()}


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
    ]


def build_formatter(*, json: bool) -> logging.Formatter:
    """The formatter every handler uses (tests attach it to capture output)."""
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            drop_color_message,
            redact_secrets,
            renderer,
        ],
    )


def configure_logging(*, level: str, json: bool) -> None:
    """Route structlog and the standard library through one formatter on stderr."""
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(build_formatter(json=json))
    handler.set_name("crp-gateway")
    root = logging.getLogger()
    for existing in [h for h in root.handlers if h.get_name() == "crp-gateway"]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every migration context at INFO; store.migrated says it once.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # HTTP client libraries narrate every request at INFO; http.request has ours.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger
