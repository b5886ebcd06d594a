"""Count warning and error log lines (for the error-log spike alert)."""

from __future__ import annotations

import logging

from switchboard.observability.metrics import LOG_MESSAGES


class LogCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        LOG_MESSAGES.labels(record.levelname.lower()).inc()
