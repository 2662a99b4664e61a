"""What ``Actions.invoke`` raises, each with the category that picks the CLI's exit code.

::

    OneiricError
    └── ActionError
        ├── ActionInputError     the payload is invalid (4); never retried
        ├── ActionOutputError    the action returned a value its spec forbids (1)
        ├── ActionTimeout        an attempt exceeded its timeout (5); also a TimeoutError
        └── ActionFailed         the action raised; the original is ``.cause`` (1)

Paused, draining and not-registered keys raise core's own errors
(``ComponentPaused``...), unchanged, so one handler serves every domain.
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = [
    "ActionError",
    "ActionFailed",
    "ActionInputError",
    "ActionOutputError",
    "ActionTimeout",
]


class ActionError(OneiricError):
    """Base of the errors of invoking an action."""


class ActionInputError(ActionError, ValueError):
    """The payload does not fit the action: ``path`` names the field (``"items[2].price"``).

    Raised by ``Actions.invoke`` when ``spec.input_model`` rejects the payload,
    and by providers for input only they can judge (invalid base64, an unknown
    ``op``).  Never retried: the same input fails the same way.
    """

    category = "invalid"

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ActionOutputError(ActionError):
    """The action returned something its spec forbids (not JSON-compatible, model mismatch)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ActionTimeout(ActionError, TimeoutError):
    """An attempt ran past its timeout (``invoke(timeout=)`` > node/handler > ``spec.timeout``)."""

    category = "unavailable"


class ActionFailed(ActionError):
    """The action raised; ``cause`` is what it raised, ``attempts`` how many were made."""

    def __init__(self, message: str, *, cause: BaseException, attempts: int) -> None:
        super().__init__(message)
        self.cause = cause
        self.attempts = attempts
