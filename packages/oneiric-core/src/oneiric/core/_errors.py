"""Every error Oneiric raises, in one hierarchy.

::

    OneiricError
    ├── NotRegisteredError          no candidate for a (domain, key)
    ├── SelectionUnavailableError   the explicitly selected provider cannot serve
    ├── InvalidCandidateError       a candidate or name breaks the rules (also a ValueError)
    ├── FactoryError                a "module:attr" string does not import / call
    ├── ConfigError                 a settings file or value is invalid
    ├── PluginError                 a plugin cannot be loaded or is incompatible
    ├── SwapError                   a swap failed before bind (old provider keeps serving)
    │   ├── SwapVetoed              an ``oneiric_pre_swap`` hook refused it
    │   ├── HealthCheckFailed       the new instance's health() returned false or raised
    │   ├── ActivationError         building or ``init()`` of the new instance failed
    │   └── SwapTimeout             a step (build, init, health, pre-swap) exceeded its deadline
    ├── NotActiveError              ``handle()`` before the key was activated
    ├── ComponentPaused             a lease was refused because the key is paused
    └── ComponentDraining           a lease was refused because the key is draining

The lifecycle errors live here, not in oneiric-lifecycle, so that a plugin can
raise ``SwapVetoed`` while depending on oneiric-core alone.  Remote errors
subclass ``OneiricError`` from oneiric-remote.

Every message is one line that says what was asked, what exists and what to do:
a CLI prints ``str(error)`` and nothing else.

Every error carries a ``category`` (``not_found``, ``invalid``, ``unavailable``,
``refused``; ``unexpected`` by default), the one path from an error to the
contract's exit codes (``EXIT_CODES``, :func:`exit_code_for`): a package
declares the category of its own errors where it defines them, and no command
keeps a table of class names.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "EXIT_CODES",
    "ActivationError",
    "ComponentDraining",
    "ComponentPaused",
    "ConfigError",
    "FactoryError",
    "HealthCheckFailed",
    "InvalidCandidateError",
    "NotActiveError",
    "NotRegisteredError",
    "OneiricError",
    "PluginError",
    "SelectionUnavailableError",
    "SwapError",
    "SwapTimeout",
    "SwapVetoed",
    "error_category",
    "exit_code_for",
]

#: The contract's exit codes (ARCHITECTURE.md §7) by error category.
EXIT_CODES: dict[str, int] = {
    "ok": 0,
    "unexpected": 1,
    "usage": 2,
    "not_found": 3,
    "invalid": 4,
    "unavailable": 5,
    "refused": 6,
}


def _listing(names: Iterable[str]) -> str:
    """Render a short, sorted, human list (``a, b, c`` or ``none``)."""
    items = sorted(set(names))
    if not items:
        return "none"
    if len(items) > 20:
        return ", ".join(items[:20]) + f", ... ({len(items) - 20} more)"
    return ", ".join(items)


class OneiricError(Exception):
    """Base class of every error raised by Oneiric packages.

    ``category`` (a key of ``EXIT_CODES``) is declared per class and may be
    narrowed per instance (a selection vetoed by policy is ``refused``, a
    missing one ``not_found``; a store's file that is not SQLite is
    ``invalid`` where a locked one is ``unavailable``): pass
    ``category=`` rather than defining a subclass per category.
    """

    category: str = "unexpected"

    def __init__(self, *args: object, category: str | None = None) -> None:
        super().__init__(*args)
        if category is not None:
            self.category = category

    @property
    def exit_code(self) -> int:
        """The CLI exit code of this error (see :func:`exit_code_for`)."""
        return EXIT_CODES[error_category(self)]


class NotRegisteredError(OneiricError, LookupError):
    """No candidate is registered for the requested ``(domain, key)``."""

    category = "not_found"

    def __init__(self, domain: str, key: str, known_keys: Iterable[str] = ()) -> None:
        self.domain = domain
        self.key = key
        self.known_keys = tuple(sorted(set(known_keys)))
        super().__init__(
            f"no provider registered for {domain}/{key}; known {domain} keys: "
            f"{_listing(self.known_keys)}; install a plugin that provides it or register one"
        )


class SelectionUnavailableError(OneiricError, LookupError):
    """The explicitly selected provider is not registered, vetoed or incapable.

    Oneiric never falls back silently to another provider: an operator who
    selected ``redis`` must learn that ``redis`` cannot serve.
    """

    category = "not_found"

    def __init__(
        self,
        domain: str,
        key: str,
        provider: str,
        reason: str,
        registered: Iterable[str] = (),
        *,
        tenant: str | None = None,
    ) -> None:
        self.domain = domain
        self.key = key
        self.provider = provider
        self.reason = reason
        self.tenant = tenant
        self.registered = tuple(sorted(set(registered)))
        if reason.startswith("vetoed"):  # a policy said no: refused, not missing
            self.category = "refused"
        scope = f" for tenant {tenant!r}" if tenant else ""
        super().__init__(
            f"selected provider {provider!r} for {domain}/{key}{scope} is unavailable: {reason}; "
            f"registered providers: {_listing(self.registered)}; "
            "change the selection or install/register that provider"
        )


class InvalidCandidateError(OneiricError, ValueError):
    """A candidate field or a domain/key/provider name breaks the documented rules."""

    category = "invalid"


class FactoryError(OneiricError):
    """A factory or settings-model reference could not be imported or called."""

    category = "invalid"


class ConfigError(OneiricError, ValueError):
    """A settings file or value is invalid; the message names file, line and key path."""

    category = "invalid"


class PluginError(OneiricError):
    """A plugin could not be loaded (import error, bad hook, newer hook-spec version)."""

    category = "invalid"


class SwapError(OneiricError):
    """A swap failed before bind; the previous provider is still bound and serving."""

    category = "unavailable"


class SwapVetoed(SwapError):
    """An ``oneiric_pre_swap`` hook refused the swap.

    Plugins raise ``SwapVetoed("reason")``; the lifecycle records the reason.
    """

    category = "refused"


class HealthCheckFailed(SwapError):
    """The new instance's ``health()`` returned false or raised (a timeout is ``SwapTimeout``)."""


class ActivationError(SwapError):
    """Building the new instance or its ``init()`` failed."""


class SwapTimeout(SwapError):
    """A swap step (build, init, health, pre-swap hook) exceeded its deadline."""


class NotActiveError(OneiricError, LookupError):
    """A handle or lease was requested for a key that was never activated."""

    category = "unavailable"


class ComponentPaused(OneiricError):
    """A new lease was refused because an operator paused the key."""

    category = "unavailable"


class ComponentDraining(OneiricError):
    """A new lease was refused because the key is draining in-flight work."""

    category = "unavailable"


# Causes that make a failed activation "invalid" (the configuration or code is
# wrong) rather than "unavailable" (the provider could not start right now).
_INVALID_CAUSES = frozenset(
    {"ConfigError", "FactoryError", "ValidationError", "ImportError", "ModuleNotFoundError"}
)


def error_category(exc: BaseException) -> str:
    """The category of ``exc``: its own ``category``, else one for common built-in errors.

    Built-in exceptions cross the CLI too (a missing ``--config`` directory, a
    failing ``--app`` import), so they get the category a user would expect;
    anything else is ``unexpected`` (a bug: the CLI offers ``--debug``).
    """
    declared = getattr(exc, "category", None)
    if isinstance(declared, str) and declared in EXIT_CODES and declared != "ok":
        if declared == "unavailable" and isinstance(exc, ActivationError):
            cause = str(getattr(exc, "error_type", ""))
            return "invalid" if cause in _INVALID_CAUSES else "unavailable"
        return declared
    if isinstance(exc, (FileNotFoundError, ModuleNotFoundError)):
        return "not_found"
    if isinstance(exc, (NotADirectoryError, IsADirectoryError, ValueError)):
        return "invalid"
    return "unexpected"


def exit_code_for(exc: BaseException) -> int:
    """The contract's exit code for ``exc``.

    An integer ``exit_code`` on a non-Oneiric exception wins (click's
    exceptions, a CLI's own usage errors); otherwise ``EXIT_CODES`` of
    :func:`error_category`.
    """
    if not isinstance(exc, OneiricError):
        declared = getattr(exc, "exit_code", None)
        if isinstance(declared, int) and not isinstance(declared, bool):
            return declared
    return EXIT_CODES[error_category(exc)]
