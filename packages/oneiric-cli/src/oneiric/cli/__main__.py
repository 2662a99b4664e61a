"""``python -m oneiric.cli``: the same CLI as the ``oneiric`` script."""

from __future__ import annotations

from ._app import main

if __name__ == "__main__":
    main()
