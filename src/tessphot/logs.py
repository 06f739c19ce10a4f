"""Logging set-up shared by all command-line programs."""

from __future__ import annotations

import logging
import sys

from tqdm.auto import tqdm

#: Log line format (the original pipeline's; its log lines are a de-facto interface).
LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"


class TqdmLoggingHandler(logging.StreamHandler):
    """A handler that writes to stderr through tqdm, so log lines do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record above the progress bars."""
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(debug: bool = False, quiet: bool = False) -> logging.Logger:
    """Attach one console handler to the ``tessphot`` logger.

    ``debug`` gives DEBUG, ``quiet`` WARNING, else INFO. Calling it again replaces the handler.
    """
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("tessphot")
    for handler in [h for h in logger.handlers if isinstance(h, TqdmLoggingHandler)]:
        logger.removeHandler(handler)
    handler = TqdmLoggingHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
