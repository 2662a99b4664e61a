"""The state directory: activity store, status snapshots, selection overlay, remote cache.

``ONEIRIC_STATE_DIR`` if set, else the user's state directory
(``$XDG_STATE_HOME/oneiric``, default ``~/.local/state/oneiric``; on Windows
``%LOCALAPPDATA%\\oneiric\\state``).  Created private (0700) because it holds
operator decisions and cached code.
"""

from __future__ import annotations

import os
import sys

from ._errors import ConfigError

# pathlib is imported on first use: ``import oneiric.core`` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["state_dir"]


def default_state_dir() -> Path:
    """Where the state directory is when nothing overrides it."""
    from pathlib import Path

    env = os.environ.get("ONEIRIC_STATE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "oneiric" / "state"
    xdg = os.environ.get("XDG_STATE_HOME")
    base_path = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base_path / "oneiric"


def state_dir(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """Return (and by default create, mode 0700) the state directory.

    With ``create`` the directory is also checked to be writable, so that a
    wrong ``ONEIRIC_STATE_DIR`` fails here, in one line, rather than at the
    first write deep inside a swap.
    """
    from pathlib import Path

    target = Path(path).expanduser() if path is not None else default_state_dir()
    if create:
        fix = "set ONEIRIC_STATE_DIR to a writable directory"
        try:
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create state directory {str(target)!r}: {exc.strerror or exc}; {fix}"
            ) from None
        if not target.is_dir():
            raise ConfigError(f"state directory {str(target)!r} is not a directory; {fix}")
        if not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"state directory {str(target)!r} is not writable; {fix}")
    return target
