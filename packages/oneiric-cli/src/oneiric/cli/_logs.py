"""Oneiric's logs on stderr, rendered by ``configure_logging`` - set up only if one is written.

Why deferred: ``configure_logging`` imports structlog (tens of milliseconds),
and most commands log nothing at the default level.  A tiny stdlib handler
stands in; the first record that reaches it installs the real renderer and
hands the record over.  Logs never go to stdout: stdout is for results.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["route_logs"]


class _Stderr:
    """Whatever ``sys.stderr`` is when a record is written (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _Deferred(logging.Handler):
    """Installs ``configure_logging`` on the first record, then forwards it."""

    def __init__(self, level: int | str, json: bool) -> None:
        super().__init__()
        self.wanted = level
        self.json = json

    def emit(self, record: logging.LogRecord) -> None:
        from oneiric.core import configure_logging

        root = logging.getLogger("oneiric")
        root.removeHandler(self)
        stream: Any = _Stderr()
        handler = configure_logging(self.wanted, json=self.json, stream=stream)
        handler.handle(record)


def route_logs(level: int | str, *, json: bool = False) -> None:
    """Send ``oneiric.*`` records at ``level`` and above to stderr (JSON with ``json``)."""
    root = logging.getLogger("oneiric")
    for old in [h for h in root.handlers if isinstance(h, _Deferred)]:
        root.removeHandler(old)
    root.addHandler(_Deferred(level, json))
    root.setLevel(level)
    root.propagate = False
