"""Calling a hook one implementation at a time, through pluggy.

Several hooks need per-plugin isolation that pluggy's plain ``hook(**kwargs)``
does not give: a veto must be attributed to the plugin that cast it and a
broken policy must fail closed for itself only; a post-swap observer that
raises must not silence the next one; a plugin whose ``oneiric_cli_commands``
raises must not hide the other plugins' commands.  Calling ``impl.function``
by hand gives isolation but throws away pluggy's semantics: an implementation
that declares a *subset* of the spec's arguments was called with all of them
(a ``TypeError``), and a ``wrapper=True`` implementation was called as if it
were a plain one (a generator object, truthy, taken as a veto reason).

:func:`call_hook` keeps both: for each non-wrapper implementation, pluggy's own
caller runs a subset of the hook that holds that implementation and every
wrapper, so argument matching, wrappers and ``tryfirst``/``trylast`` ordering
are pluggy's.  Wrappers therefore see one call per implementation, which is
what an observing wrapper (timing, logging) expects of an isolated call.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    import pluggy

__all__ = ["HookResult", "call_hook"]


@dataclass(frozen=True, slots=True)
class HookResult:
    """What one implementation of a hook returned, or the exception it raised.

    ``value`` is ``None`` both when the implementation returned ``None`` and
    when it raised; ``error`` tells them apart.
    """

    plugin: str
    value: Any = None
    error: BaseException | None = None

    @property
    def distribution(self) -> str:
        """The plugin's distribution: the part of ``"<dist>:<entry point>"`` before the colon."""
        return self.plugin.split(":", 1)[0]


def call_hook(hooks: pluggy.PluginManager, name: str, /, **kwargs: Any) -> list[HookResult]:
    """Call every non-wrapper implementation of hook ``name`` separately, in pluggy's order.

    Each call goes through pluggy (argument matching, wrappers); an
    ``Exception`` raised by one implementation (or by a wrapper around it) is
    returned in its :class:`HookResult` and never stops the others.  So are
    ``SystemExit`` and ``GeneratorExit``: a plugin must not end the process
    (or a diagnostic command) through a hook, the rule ``load_plugins`` applies
    to imports.  ``KeyboardInterrupt`` and cancellation propagate.  Hooks with
    no implementation cost one attribute lookup, so callers need no fast path
    of their own.
    """
    caller = getattr(hooks.hook, name)
    impls = caller.get_hookimpls()
    if not impls:
        return []
    plain = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
    results: list[HookResult] = []
    # pluggy calls the last registered (after tryfirst/trylast sorting) first.
    for impl in reversed(plain):
        if len(plain) == 1:
            subset = caller
        else:
            others = [other.plugin for other in plain if other is not impl]
            subset = hooks.subset_hook_caller(name, remove_plugins=others)
        try:
            returned = subset(**kwargs)
        except (Exception, SystemExit, GeneratorExit) as exc:
            results.append(HookResult(impl.plugin_name, None, exc))
            continue
        value = _single(returned, caller)
        results.append(HookResult(impl.plugin_name, value))
    return results


def _single(returned: Any, caller: Any) -> Any:
    """A one-implementation call's value: pluggy returns a list unless the spec is firstresult."""
    spec = caller.spec
    if spec is not None and spec.opts.get("firstresult"):
        return returned
    return returned[0] if returned else None
