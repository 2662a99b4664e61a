"""Wheel requirements against the installed distributions (``importlib.metadata``).

Two questions, both answered from distribution metadata without importing
anything: which ``Requires-Dist`` of a delivered wheel are not satisfied here
(its components are then vetoed as unavailable, not failed at import), and
which names installed distributions require (a delivered package must not take
such a name: ``_shadowing``).
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable

__all__ = ["import_key", "missing_requirements", "required_names"]

_REQ_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*).*", re.DOTALL)
_SEPARATORS = re.compile(r"[-_.]+")


def import_key(name: str) -> str:
    """Compare import and distribution names loosely: case and ``-_.`` runs ignored."""
    return _SEPARATORS.sub("_", name).lower()


def required_names() -> dict[str, str]:
    """Import-name keys of every requirement (all extras) of the installed distributions.

    A requirement names a distribution, not a module, so the usual spellings are
    covered: the name itself and the name without a ``python-`` prefix or a
    ``-python`` suffix (``python-dateutil``).  Maps key -> reason, for messages.
    """
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        try:
            requires = dist.requires or []
            owner = dist.metadata["Name"] or "?"
        except Exception:  # a broken installed dist must not stop the check
            continue
        for text in requires:
            match = _REQ_NAME.fullmatch(str(text))
            if match is None:
                continue
            key = import_key(match.group(1))
            why = f"installed distribution {owner!r} declares as a requirement ({text.strip()})"
            for variant in (key, key.removeprefix("python_"), key.removesuffix("_python")):
                if variant:
                    found.setdefault(variant, why)
    return found


def missing_requirements(requirements: Iterable[str]) -> list[str]:
    """The Requires-Dist entries not satisfied by the installed distributions."""
    missing: list[str] = []
    for text in requirements:
        reason = _unsatisfied(text)
        if reason:
            missing.append(reason)
    return missing


def _unsatisfied(text: str) -> str | None:
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - packaging is nearly always present
        return _unsatisfied_simple(text)
    try:
        req = Requirement(text)
    except InvalidRequirement:
        return f"{text} (unparseable requirement)"
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return str(req)
    if req.specifier and not req.specifier.contains(version, prereleases=True):
        return f"{req} (found {version})"
    return None


def _unsatisfied_simple(text: str) -> str | None:
    head, _, marker = text.partition(";")
    if "extra" in marker:
        return None
    match = _REQ_NAME.fullmatch(head)
    if not match:
        return f"{text} (unparseable requirement)"
    try:
        importlib.metadata.version(match.group(1))
    except importlib.metadata.PackageNotFoundError:
        return head.strip()
    return None
