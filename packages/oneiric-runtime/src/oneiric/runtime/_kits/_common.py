"""What both runtime kits need: payload fields checked, and the lifecycle that invokes them.

**Why a lookup.**  A kit instance is built by the lifecycle's factory call
with its settings only, and ``ActionContext`` names the key, provider and
tenant but not the lifecycle; yet ``event.dispatch`` needs that lifecycle's
dispatcher and ``automation.trigger`` its ``Actions`` and automations.  The
runtime therefore keeps a process-level weak set of the lifecycles it serves
(``serve(lifecycle)``: called by ``dispatcher_for``, so a ``Host``, the
``oneiric event`` commands and any code that took the dispatcher are in it),
and a kit finds *its* lifecycle by identity: the one whose bound instance of
``context.key`` (for ``context.tenant``) is this very object.  An instance is
built by exactly one lifecycle, so the answer is unambiguous; it is cached on
the instance (weakly) after the first call.  Nothing is guessed: a kit on a
lifecycle the runtime does not serve fails in one line saying to call
``oneiric.runtime.dispatcher_for(lifecycle)`` once.

(The simpler design - ``Actions.invoke`` setting a context variable naming
its lifecycle - needs a change in oneiric-actions; see the helper notes.)

The payload checks mirror oneiric-actions' private ``fields_of``/``take`` so
both packages' kits word bad input the same way.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from oneiric.actions import ActionContext, ActionInputError
from oneiric.core import ConfigError, OneiricError
from oneiric.lifecycle import DomainBridge, LifecycleManager

__all__ = ["RuntimeKit", "fields_of", "serve", "take"]

_SERVED: weakref.WeakSet[LifecycleManager] = weakref.WeakSet()
_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object", Mapping: "an object",
               list: "an array", bool: "a boolean"}


def serve(lifecycle: LifecycleManager) -> None:
    """Let the runtime's kits bound in ``lifecycle`` find it (weakly held)."""
    _SERVED.add(lifecycle)


class RuntimeKit:
    """Base of the runtime's kits: ``self.lifecycle(context)`` finds the invoking lifecycle."""

    _lifecycle: weakref.ref[LifecycleManager] | None = None

    def lifecycle(self, context: ActionContext) -> LifecycleManager:
        """The lifecycle whose binding of ``context.key`` is this instance (see the module doc)."""
        cached = self._lifecycle
        found = cached() if cached is not None else None
        if found is not None:
            return found
        for lifecycle in list(_SERVED):
            try:
                bound: object = DomainBridge[object]("action", lifecycle).handle(
                    context.key, tenant=context.tenant
                ).instance
            except OneiricError:
                continue
            if bound is self:
                self._lifecycle = weakref.ref(lifecycle)
                return lifecycle
        raise ConfigError(
            f"action {context.key!r} runs on a lifecycle the event runtime does not serve; "
            "call oneiric.runtime.dispatcher_for(lifecycle) once before invoking it "
            "(a Host does)"
        )


def fields_of(payload: Any, key: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    """The payload as a mapping whose keys are all in ``allowed`` (else ``ActionInputError``)."""
    if not isinstance(payload, Mapping):
        raise ActionInputError(
            f"action {key!r}: the payload must be an object with {', '.join(sorted(allowed))}; "
            f"got {type(payload).__name__}",
            path="<payload>",
        )
    unknown = sorted(str(k) for k in payload if k not in allowed)
    if unknown:
        raise ActionInputError(
            f"action {key!r}: unknown payload field {unknown[0]!r}; "
            f"known: {', '.join(sorted(allowed))}",
            path=unknown[0],
        )
    return payload


def take(payload: Mapping[str, Any], key: str, name: str, kind: type, *,
         default: Any = ...) -> Any:
    """Field ``name`` of ``payload`` of type ``kind``; required unless ``default``."""
    if name not in payload:
        if default is ...:
            raise ActionInputError(f"action {key!r}: payload field {name} is required",
                                   path=name)
        return default
    value = payload[name]
    if isinstance(value, bool) is not (kind is bool) or not isinstance(value, kind):
        raise ActionInputError(
            f"action {key!r}: payload field {name} must be {_TYPE_NAMES.get(kind, kind.__name__)}"
            f", got {type(value).__name__}",
            path=name,
        )
    return value
