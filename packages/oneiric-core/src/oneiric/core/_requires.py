"""The built-in ``requires`` veto: a candidate whose client library is missing cannot win.

A provider that needs an optional extra (redis-py, emcache, obstore...) is still
registered so ``list``/``explain`` show it, but it must not become the default
winner of a fresh install where the extra is absent.  A candidate declares the
top-level modules it needs as ``metadata={"requires": [...], "install": "pip
install ..."}``; when a cached winner is (re)computed, a module that
:func:`importlib.util.find_spec` cannot find vetoes it with a one-line reason.
Nothing is imported (``find_spec`` of a top-level name reads the path) and no
network is touched; it runs at fill time, never per ``resolve()``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._candidate import Candidate
from ._hooktypes import ResolutionRequest
from ._markers import hookimpl
from ._vetoes import veto_applies_to

__all__ = ["PLUGIN_NAME", "missing_requirements", "oneiric_candidate_veto"]

#: Registered under this name, so explain reads "vetoed by oneiric-core: ...".
PLUGIN_NAME = "oneiric-core:requires"


def _names(requires: object) -> list[str] | None:
    """The declared module names, or None when the declaration is malformed."""
    if isinstance(requires, str):
        requires = [requires]
    if not isinstance(requires, Iterable) or isinstance(requires, (bytes, dict)):
        return None
    names = list(requires)
    if not all(isinstance(name, str) and name and not name.startswith(".") for name in names):
        return None
    return names


def missing_requirements(requires: object) -> list[str] | None:
    """The required modules that are not installed (None: ``requires`` is malformed).

    Only the top-level package of a dotted name is looked up, so nothing is
    imported to answer (``find_spec("a.b")`` would import ``a``).
    """
    from importlib.util import find_spec

    names = _names(requires)
    if names is None:
        return None
    missing = []
    for name in names:
        try:
            found = find_spec(name.partition(".")[0]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


@hookimpl
@veto_applies_to(metadata_keys=["requires"])
def oneiric_candidate_veto(candidate: Candidate, request: ResolutionRequest) -> str | None:
    """Veto a candidate whose ``metadata["requires"]`` names a module that is not installed."""
    if "requires" not in candidate.metadata:
        return None
    requires = candidate.metadata["requires"]
    missing = missing_requirements(requires)
    if missing is None:
        return f"metadata requires must be a list of module names, got {requires!r:.60}"
    if not missing:
        return None
    install = candidate.metadata.get("install")
    hint = f": {install}" if isinstance(install, str) and install else ""
    return f"needs {', '.join(missing)}, which is not installed{hint}"
