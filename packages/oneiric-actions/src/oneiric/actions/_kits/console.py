"""``debug.console`` (provider ``builtin``): echo a payload back and write it as one line.

Payload ``{"message"?: str, "data"?: any}`` -> the same payload, redacted.
The line goes to the setting ``stream``: ``stderr`` (the default: a library
never writes to stdout unless told), ``stdout``, or ``log`` - an event
``action.console`` at ``level`` on the ``oneiric.actions.console`` logger
(so it follows the application's logging, JSON or console).

Redaction happens once, before both the line and the result: values that
contain a secret the settings resolved (``${secret:...}``), ``SecretStr``
values, ``Bearer`` tokens and the values of secret-looking keys
(``password``, ``token``, ``authorization``, ``api_key``...) become
``**********`` (``sanitize.redact_secrets``).  A workflow that logs its
context through this action cannot print a credential by accident.  The
line is JSON, so a message with line breaks stays one line.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .._json import to_json
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, take
from .sanitize import redact_secrets

__all__ = ["Console", "ConsoleSettings"]

KEY = "debug.console"
LOGGER = "oneiric.actions.console"


class ConsoleSettings(BaseModel):
    """Provider settings of ``debug.console`` ``builtin``."""

    model_config = ConfigDict(extra="forbid")

    #: Where the line goes: ``stderr``, ``stdout`` or ``log`` (the Oneiric logger).
    stream: Literal["stdout", "stderr", "log"] = "stderr"
    #: The level of the line (a logging level with ``log``, a label otherwise).
    level: Literal["debug", "info", "warning", "error"] = "info"


def _unknown(value: object) -> str:
    return f"<{type(value).__name__}>"  # never repr(): it could carry a secret


class Console:
    """``debug.console`` provider ``builtin``."""

    spec = ActionSpec(
        description="echo and log a payload, secrets redacted",
        idempotent=True,
        side_effects=True,
    )

    def __init__(self, settings: ConsoleSettings | None = None) -> None:
        self.settings = settings if settings is not None else ConsoleSettings()

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, {"message", "data"})
        take(fields, KEY, "message", str, default=None)
        echoed: dict[str, Any] = redact_secrets(dict(fields), "data")
        level = self.settings.level
        if self.settings.stream == "log":
            from oneiric.core import get_logger

            getattr(get_logger(LOGGER), level)("action.console", key=context.key, **echoed)
        else:
            line = json.dumps(
                {"action": context.key, "level": level, **to_json(echoed)},
                ensure_ascii=True, default=_unknown,  # U+2028 must not split the line
            )
            stream = sys.stdout if self.settings.stream == "stdout" else sys.stderr
            stream.write(line + "\n")
            stream.flush()
        return echoed
