"""Structured logging that stays silent until the application asks for it.

A library must never configure logging globally or write to stdout.  Every
Oneiric logger is a structlog logger wrapped around a stdlib logger named
``oneiric.*``; the ``oneiric`` logger carries a ``NullHandler``.  Applications
route the records like any other stdlib logging, or call
``configure_logging()`` to render JSON or console lines on stderr (the CLI does).

structlog (and stdlib ``logging``) are imported on the first log call, not at
``import oneiric.core``: serverless cold starts pay only for what they use.  The
``NullHandler`` is installed at that first call, before any record exists.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import MutableMapping
    from typing import Any, Protocol, TextIO

    class Logger(Protocol):
        """What an Oneiric logger offers (a structlog ``BoundLogger``, built lazily)."""

        def debug(self, event: str, /, **fields: object) -> object: ...
        def info(self, event: str, /, **fields: object) -> object: ...
        def warning(self, event: str, /, **fields: object) -> object: ...
        def error(self, event: str, /, **fields: object) -> object: ...
        def exception(self, event: str, /, **fields: object) -> object: ...

__all__ = ["configure_logging", "get_logger"]

_ROOT = "oneiric"
_handler_marker = "_oneiric_handler"


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Redact every value of the event, the message included (``oneiric.core._redact``).

    Secrets are ``SecretStr`` values and any string containing a secret the
    settings resolved - however it got there: a provider's ``str`` field, an
    f-string message, an exception text, a nested settings mapping.
    """
    from ._redact import redact

    for name, value in event.items():
        if name.startswith("_"):  # structlog's own bookkeeping (_record, _from_structlog)
            continue
        event[name] = redact(value)
    return event


def _processors() -> list[Any]:
    import structlog

    return [
        structlog.stdlib.filter_by_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        _redact,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]


class _LazyLogger:
    """Proxy that builds the structlog logger on first use."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def _get(self) -> Any:
        if self._logger is None:
            import logging

            import structlog

            _install_null_handler()
            self._logger = structlog.wrap_logger(
                logging.getLogger(self._name),
                processors=_processors(),
                wrapper_class=structlog.stdlib.BoundLogger,
            )
        return self._logger

    def __getattr__(self, name: str) -> Any:
        level = _LEVELS.get(name)
        if level is not None and self._logger is None:
            import logging

            # The record would be dropped by ``filter_by_level`` anyway: answer
            # without importing structlog (tens of ms for a CLI's info line).
            _install_null_handler()
            if not logging.getLogger(self._name).isEnabledFor(level):
                return _drop
        return getattr(self._get(), name)


#: structlog ``BoundLogger`` level methods -> stdlib levels.
_LEVELS = {
    "debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "exception": 40,
    "critical": 50, "fatal": 50,
}


def _drop(*_args: object, **_kwargs: object) -> None:
    """A log call below the enabled level: nothing to do."""


def _install_null_handler() -> None:
    import logging

    root = logging.getLogger(_ROOT)
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())


def get_logger(name: str) -> Logger:
    """Return a structlog-style logger for ``name`` (must start with ``oneiric``)."""
    if name != _ROOT and not name.startswith(_ROOT + "."):
        name = f"{_ROOT}.{name}"
    return _LazyLogger(name)  # a Logger through __getattr__


def configure_logging(
    level: int | str | None = None, *, json: bool = False, stream: TextIO | None = None
) -> logging.Handler:
    """Render Oneiric's logs to ``stream`` (default: stderr) as JSON or console lines.

    For applications and the CLI; calling it again replaces the previous handler.
    ``level`` defaults to ``ONEIRIC_LOG_LEVEL``, else ``LOG_LEVEL``, else ``INFO``
    (a value that is not a level name is a ``ConfigError``).  Returns the
    installed handler.
    """
    import logging
    import sys

    if level is None:
        from ._environ import log_level_from_environment

        level = log_level_from_environment("INFO")

    import structlog

    _install_null_handler()
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact,  # again after exc_info is text: a traceback may quote a secret
            renderer,
        ],
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    setattr(handler, _handler_marker, True)
    root = logging.getLogger(_ROOT)
    for old in [h for h in root.handlers if getattr(h, _handler_marker, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    root.propagate = False
    return handler
