"""Structured logs (structlog, JSON lines). Log events carry error codes and route names, never
tokens, launch parameters, patient identifiers or report text."""

from __future__ import annotations

import logging

import structlog


def quiet_url_loggers() -> None:
    """uvicorn's access log and httpx2's request log print full URLs, whose query strings carry
    `code`, `state`, `launch` and patient ids (FHIR searches)."""
    logging.getLogger("uvicorn.access").disabled = True
    # aiosqlite logs every statement with its parameters at DEBUG.
    for name in ("httpx2", "httpcore2", "httpx", "httpcore", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(message)s")
    quiet_url_loggers()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
