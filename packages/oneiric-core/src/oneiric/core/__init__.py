"""oneiric-core: candidates, the resolver, explanations, plugins and settings.

The public API is what this module exports.  Settings (and with them pydantic)
load on first use of ``load_settings``/``Settings`` so that ``import
oneiric.core`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .__about__ import __version__
from ._candidate import NAME_PATTERN, Candidate, Source, validate_name
from ._errors import (
    EXIT_CODES,
    ActivationError,
    ComponentDraining,
    ComponentPaused,
    ConfigError,
    FactoryError,
    HealthCheckFailed,
    InvalidCandidateError,
    NotActiveError,
    NotRegisteredError,
    OneiricError,
    PluginError,
    SelectionUnavailableError,
    SwapError,
    SwapTimeout,
    SwapVetoed,
    error_category,
    exit_code_for,
)
from ._explain import Explanation, RankedCandidate
from ._hookcall import HookResult, call_hook
from ._hooks import (
    HOOKSPEC_VERSION,
    ResolutionRequest,
    SwapTransition,
    get_plugin_manager,
    hookimpl,
    hookspec,
    new_plugin_manager,
)
from ._loading import import_reference, lazy_exports, resolve_factory, resolve_settings_model
from ._logging import configure_logging, get_logger
from ._plugins import (
    DiscoveryReport,
    EntryPointInfo,
    PluginLoad,
    PluginRegistry,
    check_namespace,
    discover_entry_points,
    load_plugins,
)
from ._precedence import DEFAULT_PRIORITIES
from ._resolver import NoEligibleProviderError, Resolver
from ._statedir import state_dir
from ._vetoes import veto_applies_to

if TYPE_CHECKING:
    from ._overlay import read_overlay, write_overlay
    from ._redact import redact
    from ._retry import RetryPolicy
    from ._settings import Settings, load_settings
    from ._settings_model import DomainSettings

__all__ = [
    "DEFAULT_PRIORITIES",
    "EXIT_CODES",
    "HOOKSPEC_VERSION",
    "NAME_PATTERN",
    "ActivationError",
    "Candidate",
    "ComponentDraining",
    "ComponentPaused",
    "ConfigError",
    "DiscoveryReport",
    "DomainSettings",
    "EntryPointInfo",
    "Explanation",
    "FactoryError",
    "HealthCheckFailed",
    "HookResult",
    "InvalidCandidateError",
    "NoEligibleProviderError",
    "NotActiveError",
    "NotRegisteredError",
    "OneiricError",
    "PluginError",
    "PluginLoad",
    "PluginRegistry",
    "RankedCandidate",
    "ResolutionRequest",
    "Resolver",
    "RetryPolicy",
    "SelectionUnavailableError",
    "Settings",
    "Source",
    "SwapError",
    "SwapTimeout",
    "SwapTransition",
    "SwapVetoed",
    "__version__",
    "call_hook",
    "check_namespace",
    "configure_logging",
    "discover_entry_points",
    "error_category",
    "exit_code_for",
    "get_logger",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "import_reference",
    "load_plugins",
    "load_settings",
    "new_plugin_manager",
    "read_overlay",
    "redact",
    "resolve_factory",
    "resolve_settings_model",
    "state_dir",
    "validate_name",
    "veto_applies_to",
    "write_overlay",
]

#: Public names imported on first use, by the module that defines them: settings
#: bring pydantic, which ``import oneiric.core`` must not pay for.
_LAZY = {
    "DomainSettings": "_settings_model",
    "Settings": "_settings",
    "load_settings": "_settings",
    "read_overlay": "_overlay",
    "redact": "_redact",
    "RetryPolicy": "_retry",
    "write_overlay": "_overlay",
}


__getattr__ = lazy_exports(__name__, _LAZY)
