"""Shared test helpers for Oneiric packages.

Why a distribution: every package's tests need the same live-server policy
(skip locally, fail in CI) and the same eventual-state polling; copying a
conftest.py into each package would let them drift.
"""

from __future__ import annotations

from .__about__ import __version__
from ._helpers import apoll_until, free_port, in_ci, poll_until, require_live

__all__ = ["__version__", "apoll_until", "free_port", "in_ci", "poll_until", "require_live"]
