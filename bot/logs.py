"""Logging set-up for every `copybot` command: one format, and secrets redacted from every line.

Tokens should never reach a log line in the first place (slack_sdk redacts its own Authorization headers, and
`Settings` keeps secrets out of its repr); the filter is the second line of defence for anything that slips, such
as an exception message that quotes a URL or a header.
"""

from __future__ import annotations

import logging
import os
import re
import sys

SECRET_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "COPYBOT_MODEL_API_KEY")
TOKEN_PATTERN = re.compile(r"\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]{6,}")
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replace the configured secret values and anything shaped like a Slack token with [redacted]."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_PATTERN.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure_logging(verbose: bool = False) -> None:
    """Log to stderr with timestamps; redact the secrets in the environment from every record."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)  # fmt: skip
    redact = RedactSecrets([os.environ.get(name, "") for name in SECRET_VARIABLES])
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
