"""Keep query strings out of third-party HTTP logs.

QIDO-RS queries carry patient names and IDs in the URL; urllib3 logs every request line at
DEBUG, so turning on debug logging for a network problem would otherwise write them to a log.
"""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"\?[^\s\"']*")
# Loggers that write request URLs (urllib3's request lines; requests re-uses urllib3's).
LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "dicomweb_client")


class QueryRedactor(logging.Filter):
    """Replace the query part of any URL in a record with ``?<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop its arguments rather than risk them
            message = str(record.msg)
        if "?" in message:
            record.msg, record.args = _QUERY.sub("?<redacted>", message), ()
        return True


_FILTER = QueryRedactor()


def install() -> None:
    """Attach the redactor to the HTTP loggers (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
