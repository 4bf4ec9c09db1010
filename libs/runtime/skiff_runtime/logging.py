"""structlog configuration: JSON lines for machines, readable console output on a TTY.

Every line carries `service`, plus `trace_id`/`span_id` of the current span and whatever
the handler bound with `structlog.contextvars.bind_contextvars(trip_id=...)`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog
from opentelemetry import trace


def add_trace_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Stamp the current OpenTelemetry span ids onto a log event, when there is a span."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = f"{context.trace_id:032x}"
        event["span_id"] = f"{context.span_id:016x}"
    return event


def configure_logging(
    service: str,
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
) -> None:
    """Configure structlog (and route stdlib logging through it) for one process."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Third-party libraries speak only when something is wrong, unless debugging.
    root.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
