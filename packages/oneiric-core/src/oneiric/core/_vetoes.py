"""Veto hooks at fill time: which candidates a policy could refuse, and the reasons it gives.

Every fill used to ask every ``oneiric_candidate_veto`` implementation about
every candidate through pluggy (~1 µs per candidate and implementation), and
core itself always registers one (the ``requires`` veto), so a fill could never
skip the hook.  Most policies only concern a few candidates: the built-in ones
look at candidates that carry ``metadata["requires"]`` or come from a manifest.
An implementation declares that with :func:`veto_applies_to` (source kinds,
metadata keys); a candidate outside every declaration is not asked about at
all, and a fill whose candidates are all outside needs no hook call and no
sort (the resolver's lean path).
An implementation without a declaration is asked about every candidate, as
before: the declaration is an optimization a policy opts into, never a change
of what it decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ._candidate import Candidate
from ._hookcall import call_hook
from ._hooktypes import ResolutionRequest
from ._logging import get_logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pluggy

__all__ = ["Scope", "VetoPolicy", "veto_applies_to"]

_log = get_logger("oneiric.core.resolver")
_ATTRIBUTE = "_oneiric_veto_applies"
_F = TypeVar("_F", bound=Callable[..., object])


def veto_applies_to(
    *, source_kinds: Iterable[str] = (), metadata_keys: Iterable[str] = ()
) -> Callable[[_F], _F]:
    """Declare which candidates an ``oneiric_candidate_veto`` implementation could refuse.

    The implementation is asked only about candidates whose ``source.kind`` is
    one of ``source_kinds`` or whose ``metadata`` has one of ``metadata_keys``;
    it must return None for every other candidate (the resolver does not ask).
    Declarative rather than a callable on purpose: the check runs on every
    write that settles a winner, so it must be a set lookup, and it cannot
    raise.  Put it under ``@hookimpl``::

        @hookimpl
        @veto_applies_to(source_kinds=["manifest"])
        def oneiric_candidate_veto(candidate, request): ...
    """
    kinds = _names(source_kinds, "source_kinds")
    keys = _names(metadata_keys, "metadata_keys")
    if not kinds and not keys:
        raise ValueError(
            "veto_applies_to() needs source_kinds or metadata_keys; "
            "leave an implementation undecorated to be asked about every candidate"
        )

    def mark(func: _F) -> _F:
        setattr(func, _ATTRIBUTE, (kinds, keys))
        return func

    return mark


def _names(values: Iterable[str], what: str) -> frozenset[str]:
    if isinstance(values, str):
        values = (values,)
    names = frozenset(values)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"veto_applies_to({what}=...) expects non-empty strings, got {names!r}")
    return names


class Scope:
    """What every veto implementation together could refuse: kinds and metadata keys.

    ``everyone`` is True when some implementation declared nothing.
    """

    __slots__ = ("everyone", "kinds", "metadata_keys", "nobody")

    def __init__(
        self, kinds: frozenset[str], metadata_keys: tuple[str, ...], everyone: bool
    ) -> None:
        self.kinds = kinds
        self.metadata_keys = metadata_keys
        self.everyone = everyone
        self.nobody = not everyone and not kinds and not metadata_keys

    def covers(self, candidate: Candidate) -> bool:
        """Whether some implementation could refuse ``candidate``."""
        if self.everyone or candidate.source.kind in self.kinds:
            return True
        metadata = candidate.metadata
        if metadata:
            for key in self.metadata_keys:
                if key in metadata:
                    return True
        return False


_NOBODY = Scope(frozenset(), (), False)


class VetoPolicy:
    """One resolver's view of the veto implementations registered with its plugin manager.

    The scope is recomputed only when the implementations change (compared
    by identity: one list copy per call).
    """

    __slots__ = ("_caller", "_impls", "_live", "_manager", "_scope")

    def __init__(self) -> None:
        self._manager: object = None
        self._caller: Any = None
        self._live: list[object] | None = None
        self._impls: list[object] = []
        self._scope = _NOBODY

    def scope(self, hooks: pluggy.PluginManager) -> Scope:
        """The candidates the current implementations could refuse.

        Called on every write that could settle a winner, so when nothing
        changed it costs one comparison of pluggy's list of implementations
        with the copy taken last time (element identity): pluggy's own list is
        read in place where it has one (``HookCaller._hookimpls``, pluggy 1.x),
        its public copy otherwise.
        """
        if hooks is not self._manager:
            self._manager = hooks
            self._caller = hooks.hook.oneiric_candidate_veto
            self._live = getattr(self._caller, "_hookimpls", None)
            self._impls = []
            self._scope = _NOBODY
        current = self._live
        if current is None:
            current = self._caller.get_hookimpls()
        if current == self._impls:
            return self._scope
        impls = list(current)
        kinds: set[str] = set()
        keys: set[str] = set()
        everyone = False
        for impl in impls:
            if impl.wrapper or impl.hookwrapper:
                continue
            declared = getattr(impl.function, _ATTRIBUTE, None)
            if declared is None:
                everyone = True
            else:
                kinds.update(declared[0])
                keys.update(declared[1])
        self._impls = impls
        self._scope = Scope(frozenset(kinds), tuple(sorted(keys)), everyone)
        return self._scope

    def vetoes(
        self,
        hooks: pluggy.PluginManager,
        rows: Sequence[tuple[Candidate, int, int, str]],
        request: ResolutionRequest,
    ) -> dict[int, str]:
        """``{registration number: "by <plugin>: reason"}`` for the vetoed rows."""
        scope = self.scope(hooks)
        if scope.nobody:
            return {}
        vetoes: dict[int, str] = {}
        for candidate, seq, _, _ in rows:
            if not scope.covers(candidate):
                continue
            for result in call_hook(
                hooks, "oneiric_candidate_veto", candidate=candidate, request=request
            ):
                reason = result.value
                if result.error is not None:  # fail closed: a broken policy must not let through
                    error = result.error
                    reason = f"veto hook raised {type(error).__name__}: {error}"
                    _log.error(
                        "veto hook failed",
                        plugin=result.plugin,
                        candidate=candidate.qualified_provider,
                        error=str(error),
                    )
                elif reason is not None and not isinstance(reason, str):
                    reason = f"veto hook returned {type(reason).__name__}, not a reason string"
                if reason:
                    vetoes[seq] = f"by {result.distribution}: {reason}"
                    break
        return vetoes
