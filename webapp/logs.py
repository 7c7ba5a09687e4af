"""Secrets out of every log line.

Baidu's clients send `client_secret` (token requests) and `access_token` (every call) in the
query string, so any line that shows a request line or a URL would carry them: gunicorn's
access log (`%(r)s`), Django's request and server logs, a traceback that quotes a URL.
`ScrubSecrets` replaces their values with `[scrubbed]`; settings install it on the console
handler and gunicorn.conf.py on gunicorn's own loggers. No Django imports: gunicorn's master
loads this module too.
"""

import logging
import re

SCRUBBED = "[scrubbed]"
_SECRET_PARAMETERS = re.compile(
    r"((?:access_token|client_secret|refresh_token|session_secret)(?:=|%3D))[^&\s\"';]*",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """`text` with the value of every secret query parameter replaced."""
    return _SECRET_PARAMETERS.sub(r"\1" + SCRUBBED, text)


class ScrubSecrets(logging.Filter):
    """Rewrites a record's message (and its traceback) without secret query values."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True
