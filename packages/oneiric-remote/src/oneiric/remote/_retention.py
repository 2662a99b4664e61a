"""Retention: which blobs and vendor dirs the cache keeps, and removing the rest.

Kept: the artifacts of the last versions in every state file's history (any
trust set sharing the cache dir) and every vendor dir this process has on
``sys.path``.  An unreadable state file keeps everything: deleting what it
might still reference is worse than using disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from ._activate import active_paths
from ._install import remove_tree

__all__ = ["prune"]


def prune(cache_dir: Path, keep_versions: int = 3) -> list[str]:
    """Delete blobs and vendor dirs not used by the last ``keep_versions`` of any state file."""
    keep: set[str] = set()
    for state_file in cache_dir.glob("state-*.json"):
        try:
            doc: Any = json.loads(state_file.read_bytes())
            for entry in doc.get("history", [])[-keep_versions:]:
                keep.update(str(s) for s in entry.get("artifacts", []))
        except (OSError, ValueError, AttributeError, TypeError, RecursionError):
            return []  # unreadable state: keep everything rather than guess
    for dirs in active_paths().values():
        keep.update(Path(d).name for d in dirs)
    removed: list[str] = []
    for folder in (cache_dir / "blobs", cache_dir / "vendor"):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name in keep or not re.fullmatch(r"[0-9a-f]{64}", entry.name):
                continue
            if entry.is_dir():
                remove_tree(entry)
            else:
                with contextlib.suppress(OSError):
                    os.chmod(entry, stat.S_IRUSR | stat.S_IWUSR)
                    entry.unlink()
            removed.append(entry.name)
    return removed
