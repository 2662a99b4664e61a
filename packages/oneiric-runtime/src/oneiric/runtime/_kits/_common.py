"""What the runtime's kits share: the lifecycle that invokes them, and the kit helpers.

An action instance is built with its settings only and ``ActionContext``
names no lifecycle, yet ``event.dispatch`` needs that lifecycle's dispatcher
and ``automation.trigger`` its ``Actions`` and automations.  ``Actions.invoke``
records the lifecycle it runs on for the call (``oneiric.actions.kit.
current_lifecycle``), so a kit reads it there - the same for an application's
``Host``, ``oneiric action invoke`` and the ``oneiric event`` commands.
Payload checks are oneiric-actions' own (``fields_of``/``take``), so both
packages' kits word bad input the same way.
"""

from __future__ import annotations

from oneiric.actions import ActionContext
from oneiric.actions.kit import current_lifecycle, fields_of, take
from oneiric.core import ConfigError
from oneiric.lifecycle import LifecycleManager

__all__ = ["RuntimeKit", "fields_of", "take"]


class RuntimeKit:
    """Base of the runtime's kits: ``self.lifecycle(context)`` is the invoking lifecycle."""

    def lifecycle(self, context: ActionContext) -> LifecycleManager:
        try:
            return current_lifecycle()
        except LookupError:
            raise ConfigError(
                f"action {context.key!r} needs the lifecycle that runs it: invoke it through "
                "oneiric.actions.Actions(lifecycle).invoke(...)"
            ) from None
