"""gunicorn's logger with user ids taken out of every access and error line (`run_platform`
passes `--logger-class learning_platform.gunicorn_logger.RedactingLogger`)."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from .redaction import RedactFilter


class RedactingLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.access_log, self.error_log):
            if not any(isinstance(f, RedactFilter) for f in log.filters):
                log.addFilter(RedactFilter())
