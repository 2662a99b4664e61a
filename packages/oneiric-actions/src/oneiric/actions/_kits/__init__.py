"""The first-party kits, one module per family; registered by ``oneiric.actions._catalog``.

Each module imports only the standard library at import time; a third-party
library (zstandard, httpx, argon2...) is imported when its provider is built,
through ``_common.require``, so a missing extra fails in one line naming it.
"""
