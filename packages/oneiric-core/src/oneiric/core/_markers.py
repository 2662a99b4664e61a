"""The hook markers ``hookspec``/``hookimpl``: a leaf module, importing nothing of the package.

pluggy is imported only when a marker is first used, so ``import oneiric.core``
skips it.  The hook specifications, the built-in secret sources and every
plugin import the markers from here (or from ``oneiric.core``), which keeps
the modules that use them free of import cycles.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pluggy

__all__ = ["PROJECT", "hookimpl", "hookspec"]

PROJECT = "oneiric"


class _LazyMarker:
    """A pluggy marker created on first use."""

    __slots__ = ("_kind", "_marker")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._marker: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        marker = self._marker
        if marker is None:
            import pluggy

            factory = pluggy.HookimplMarker if self._kind == "impl" else pluggy.HookspecMarker
            marker = self._marker = factory(PROJECT)
        return marker(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<oneiric hook{self._kind} marker>"


if TYPE_CHECKING:
    hookspec = pluggy.HookspecMarker(PROJECT)
    hookimpl = pluggy.HookimplMarker(PROJECT)
else:
    hookspec = _LazyMarker("spec")
    hookimpl = _LazyMarker("impl")
