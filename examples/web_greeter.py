"""The component both web examples serve (web_starlette.py, web_fastapi.py).

Any object can be a component; ``health()`` is optional and is probed every
``health_interval`` while the app runs (``oneiric health`` shows the result).
"""

from __future__ import annotations

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import Host


class Greeter:
    def greet(self, name: str) -> str:
        return f"hello, {name}"

    def health(self) -> bool:
        return True


def register(resolver: Resolver) -> None:
    """Called with the resolver once plugins and settings are loaded."""
    resolver.register(Candidate("adapter", "greeter", "builtin", Greeter))


def make_host() -> Host:
    """An unentered Host: settings from ONEIRIC_CONFIG (or ./settings), state (activity
    store, status) in ONEIRIC_STATE_DIR — where ``oneiric pause`` writes."""
    return Host(app="web_greeter:register", activate=["adapter/greeter"])
