"""Redriving dead letters: each record's event dispatched again, to its group only.

Kept apart from the store's SQLite code: it is the one place that needs a
dispatcher, and what "redriven" means (the group's final outcome ok) is a
dispatch rule, not a storage one.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._letter import DeadLetterNotFound, id_list

if TYPE_CHECKING:
    from ._deadletters import DeadLetterStore

__all__ = ["redrive"]


async def redrive(
    store: DeadLetterStore, dispatcher: Any, ids: Iterable[str] | None = None
) -> builtins.list[Any]:
    """``DeadLetterStore.redrive``: see there."""
    if ids is None:
        records = store.list()
    else:
        wanted = list(dict.fromkeys(id_list(ids)))
        found = {i: store.get(i) for i in wanted}
        missing = [i for i, record in found.items() if record is None]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise DeadLetterNotFound(
                f"no dead letter {shown}{more} in {store.path}; list them with "
                "'oneiric event dead-letters' (ids look like dl-12)"
            )
        records = [r for r in found.values() if r is not None]
    reports: builtins.list[Any] = []
    for record in records:
        report = await dispatcher.dispatch(record.event, groups={record.group})
        reports.append(report)
        final = [o for o in getattr(report, "outcomes", ()) if o.group == record.group]
        if final and final[-1].status in ("ok", "duplicate"):
            store.remove([record.id])
    return reports
