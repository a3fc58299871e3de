"""Keep API keys out of the logs: `?key=` in request lines is redacted.

ProGet accepts a key as a query parameter, so request lines in access logs (gunicorn's,
runserver's) can carry one. A filter on those loggers rewrites the value before anything
is written; it is installed once, when the authentication middleware loads.
"""

from __future__ import annotations

import logging
import re

# key=, api_key=, apikey= in a query string (or a Referer holding one), also URL-encoded
# inside another parameter (the sign-in page's `next=/%3Fkey%3D…`).
_KEY_RE = re.compile(r"(?i)([?&;](?:api_?key|key)=)[^&;\s\"']*")
_ENCODED_KEY_RE = re.compile(r"(?i)((?:%3F|%26|%3B)(?:api_?key|key)%3D)(?:(?!%26|%3B)[^&;\s\"'])*")
REDACTED = "[redacted]"
LOGGERS = ("gunicorn.access", "django.server", "django.request")


def redact_text(text: str) -> str:
    """`text` with the value of every key= query parameter replaced."""
    text = _KEY_RE.sub(rf"\g<1>{REDACTED}", text)
    return _ENCODED_KEY_RE.sub(rf"\g<1>{REDACTED}", text)


def _clean(value: object) -> object:
    return redact_text(value) if isinstance(value, str) else value


class RedactKeysFilter(logging.Filter):
    """Rewrites the message and arguments of a record (gunicorn passes a dict of atoms)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        args = record.args
        if isinstance(args, dict):
            for name in list(args):
                value = args[name]
                if isinstance(value, str):
                    args[name] = redact_text(value)
        elif isinstance(args, tuple):
            record.args = tuple(_clean(a) for a in args)
        return True


_filter = RedactKeysFilter()


def install() -> None:
    """Add the filter to the access-log loggers (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _filter not in logger.filters:
            logger.addFilter(_filter)
