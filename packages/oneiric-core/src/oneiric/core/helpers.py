"""The shared mechanisms every Oneiric package (and a third-party kit) builds on.

One home per concept, so a new package does not grow its own copy - and the
copies do not drift apart (one durability for file writes, one timestamp format
in every JSON output, one path from an error to an exit code):

=====================================  =================================================
mechanism                              names
=====================================  =================================================
calling a hook per implementation      :func:`call_hook`, :class:`HookResult`
error categories and exit codes        :data:`EXIT_CODES`, :func:`error_category`,
                                       :func:`exit_code_for` (and ``OneiricError.category``)
one-line error text                    :func:`one_line`, :func:`quote_name`,
                                       :func:`describe_exception`
UTC timestamps and durations           :func:`utc_now`, :func:`format_timestamp`,
                                       :func:`parse_timestamp`, :func:`parse_duration`
atomic, durable file writes            :func:`atomic_write`, :func:`exclusive_lock`,
                                       :func:`async_exclusive_lock`
the selection overlay without settings  :func:`apply_overlay`, :func:`update_overlay`,
                                       :func:`overlay_revision`, :class:`OverlayWrite`
the reserved domain ``control``        :data:`CONTROL_DOMAIN`, :data:`CONTROL_KEY`,
                                       :func:`refuse_control_domain`
state-directory names                  :func:`state_dir`, :data:`OVERLAY_FILE`,
                                       :data:`ACTIVITY_FILE`, :data:`STATUS_DIR`,
                                       :data:`REMOTE_CACHE_DIR`
``"module:attr"`` references           :func:`import_reference`
random ids (UUID4 text), instance id   :func:`uuid4_text`, :func:`instance_id`
TOML/YAML/JSON documents, bounded      :func:`load_document`
lazy public names of a package         :func:`lazy_exports`
redaction of secrets                   :func:`redact`, :func:`scrub_text`,
                                       :func:`scrub_credentials`
design-era environment variables       :func:`check_environment`,
                                       :func:`log_level_from_environment`,
                                       :func:`profile_from_environment`
a redis-py client and its errors       :func:`redis_client`, :func:`redis_errors`,
(imports redis only when called)       :func:`redis_target`
running a coroutine up to its first    :func:`run_eagerly`, :class:`Suspended`,
suspension; eager tasks                :func:`start_task`
suspension (no task, no timer)
event topics and patterns              :func:`is_topic`, :func:`is_topic_pattern`,
                                       :func:`topic_matcher`, :data:`MAX_TOPIC_LENGTH`
=====================================  =================================================

Importing this module costs what its parts cost: they are small and none
imports pydantic, PyYAML or pluggy.
"""

from __future__ import annotations

from ._eager import Suspended, run_eagerly, start_task
from ._environ import (
    PROFILES,
    check_environment,
    log_level_from_environment,
    profile_from_environment,
)
from ._errors import EXIT_CODES, error_category, exit_code_for
from ._filelock import async_exclusive_lock, exclusive_lock
from ._fs import atomic_write
from ._hookcall import HookResult, call_hook
from ._ids import instance_id, uuid4_text
from ._loading import import_reference, lazy_exports
from ._redact import redact, scrub_credentials, scrub_text
from ._reserved import CONTROL_DOMAIN, CONTROL_KEY, refuse_control_domain
from ._statedir import ACTIVITY_FILE, OVERLAY_FILE, REMOTE_CACHE_DIR, STATUS_DIR, state_dir
from ._text import describe_exception, one_line, quote_name
from ._time import format_timestamp, parse_duration, parse_timestamp, utc_now

__all__ = [
    "ACTIVITY_FILE",
    "CONTROL_DOMAIN",
    "CONTROL_KEY",
    "EXIT_CODES",
    "HookResult",
    "MAX_TOPIC_LENGTH",
    "OVERLAY_FILE",
    "OverlayWrite",
    "PROFILES",
    "REMOTE_CACHE_DIR",
    "STATUS_DIR",
    "Suspended",
    "apply_overlay",
    "async_exclusive_lock",
    "atomic_write",
    "call_hook",
    "check_environment",
    "describe_exception",
    "error_category",
    "exclusive_lock",
    "exit_code_for",
    "format_timestamp",
    "import_reference",
    "instance_id",
    "is_topic",
    "is_topic_pattern",
    "lazy_exports",
    "load_document",
    "log_level_from_environment",
    "one_line",
    "overlay_revision",
    "parse_duration",
    "parse_timestamp",
    "profile_from_environment",
    "quote_name",
    "redact",
    "redis_client",
    "redis_errors",
    "redis_target",
    "refuse_control_domain",
    "run_eagerly",
    "scrub_credentials",
    "scrub_text",
    "start_task",
    "state_dir",
    "topic_matcher",
    "update_overlay",
    "utc_now",
    "uuid4_text",
]


#: Homes with heavier imports (file parsing and checks), loaded on first use:
#: package namespaces import this module at start-up for ``lazy_exports``.
__getattr__ = lazy_exports(
    __name__,
    {
        "apply_overlay": "_overlay",
        "OverlayWrite": "_overlay",
        "overlay_revision": "_overlay",
        "update_overlay": "_overlay",
        "load_document": "_safeload",
        "redis_client": "_redisconn",
        "redis_errors": "_redisconn",
        "redis_target": "_redisconn",
        "MAX_TOPIC_LENGTH": "_topics",
        "is_topic": "_topics",
        "is_topic_pattern": "_topics",
        "topic_matcher": "_topics",
    },
    base="oneiric.core",
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._overlay import OverlayWrite, apply_overlay, overlay_revision, update_overlay
    from ._redisconn import redis_client, redis_errors, redis_target
    from ._safeload import load_document
    from ._topics import MAX_TOPIC_LENGTH, is_topic, is_topic_pattern, topic_matcher
