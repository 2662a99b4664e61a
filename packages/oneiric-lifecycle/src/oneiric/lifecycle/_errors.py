"""The errors oneiric-lifecycle raises.

::

    OneiricError                    (oneiric.core)
    ├── SwapError                   a swap failed before bind; the old provider keeps serving
    │   ├── SwapVetoed              an ``oneiric_pre_swap`` hook refused it
    │   ├── HealthCheckFailed       the new instance reported unhealthy (or health() raised)
    │   ├── ActivationError         settings, factory import/call or ``init()`` failed
    │   └── SwapTimeout             build, init, health or a pre-swap hook exceeded its deadline
    ├── NotActiveError              ``handle()``/``lease()``/``swap()`` before ``activate()``
    ├── ComponentPaused             a new lease on a paused key
    ├── ComponentDraining           a new lease on a draining key
    └── ActivityStoreError          the activity store file is corrupt, locked or unwritable

Every class except ``ActivityStoreError`` lives in oneiric.core so a plugin can
raise ``SwapVetoed`` without depending on this package; they are re-exported
from ``oneiric.lifecycle``.  Messages are one line: what was asked, what
exists, what to do.
"""

from __future__ import annotations

from oneiric.core import OneiricError

__all__ = ["ActivityStoreError"]


class ActivityStoreError(OneiricError):
    """The SQLite activity store cannot be opened, read or written.

    Raised for a file that is not a SQLite database, a database locked by
    another process beyond the busy timeout, or a path that cannot be opened.
    """

    category = "unavailable"
