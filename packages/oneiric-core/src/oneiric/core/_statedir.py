"""The state directory: activity store, status snapshots, selection overlay, remote cache.

``ONEIRIC_STATE_DIR`` if set, else the user's state directory
(``$XDG_STATE_HOME/oneiric``, default ``~/.local/state/oneiric``; on Windows
``%LOCALAPPDATA%\\oneiric\\state``).  Created private (0700) because it holds
operator decisions and cached code.

Why the checks: whoever can write the state dir chooses providers (the
overlay), pauses components and plants cached code.  So, like ssh with
``~/.ssh``, a state dir that is group- or world-writable or owned by another
user is refused, never used silently; every directory created here (parents
included) is 0700 whatever the umask; and a symlink as the last component is
followed only when the operator named it (``ONEIRIC_STATE_DIR`` or an explicit
path), never when it comes from the XDG default.  (Not checked: the parents
of an existing state dir, and Windows ACLs.)
"""

from __future__ import annotations

import os
import sys

from ._errors import ConfigError

# pathlib is imported on first use: ``import oneiric.core`` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ACTIVITY_FILE",
    "OVERLAY_FILE",
    "REMOTE_CACHE_DIR",
    "STATUS_DIR",
    "make_private_dirs",
    "state_dir",
]

#: What lives in the state directory: one home for the names every package and
#: the CLI use, so a reader in one process finds what a writer in another wrote.
OVERLAY_FILE = "selections.json"  # the machine-owned selection overlay (``oneiric swap``)
ACTIVITY_FILE = "activity.sqlite"  # pause/drain/resume (SQLite, WAL)
STATUS_DIR = "status"  # one ``<pid>.json`` snapshot per running application
REMOTE_CACHE_DIR = "remote"  # oneiric-remote's blobs, vendor dirs and state

_FIX = "set ONEIRIC_STATE_DIR to a writable directory"


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


def make_private_dirs(target: Path) -> None:
    """Create ``target`` and each missing parent, one by one, mode 0700 whatever the umask.

    ``Path.mkdir(parents=True)`` gives parents ``0777 & ~umask`` (0777 under
    umask 000); the umask is process-wide, so it is not touched: each
    directory is made 0700 (never wider, whatever the umask) and chmod-ed to
    exactly 0700.  Raises ``OSError``.
    """
    missing: list[Path] = []
    current = target
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # another process made it meanwhile: checked by callers
            continue
        os.chmod(directory, 0o700)


def check_private(target: Path, *, symlink_ok: bool) -> None:
    """Refuse a state dir others could write (ConfigError, one line, what to do)."""
    import stat

    shown = repr(str(target))
    try:
        link = os.lstat(target)
        st = os.stat(target)
    except OSError as exc:
        raise ConfigError(
            f"cannot use state directory {shown}: {exc.strerror or exc}; {_FIX}"
        ) from None
    if stat.S_ISLNK(link.st_mode) and not symlink_ok:
        raise ConfigError(
            f"state directory {shown} is a symbolic link (from the XDG default); set "
            "ONEIRIC_STATE_DIR to the directory it should be, or replace the link"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"state directory {shown} is not a directory; {_FIX}")
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # pragma: no cover - Windows: ownership and modes are ACLs
        return
    uid = geteuid()
    if st.st_uid != uid:
        raise ConfigError(
            f"state directory {shown} is owned by uid {st.st_uid}, not by this user "
            f"(uid {uid}); use a directory of your own: set ONEIRIC_STATE_DIR"
        )
    if st.st_mode & 0o022:
        raise ConfigError(
            f"state directory {shown} is group- or world-writable "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run 'chmod 700 {target}' or set "
            "ONEIRIC_STATE_DIR"
        )


def state_dir(path: str | os.PathLike[str] | None = None, *, create: bool = True) -> Path:
    """Return (and by default create, mode 0700) the state directory.

    With ``create`` the directory is also checked to be writable, so that a
    wrong ``ONEIRIC_STATE_DIR`` fails here, in one line, rather than at the
    first write deep inside a swap.  An existing directory is always checked
    to be private (``ConfigError`` otherwise), with or without ``create``.
    """
    from pathlib import Path

    named = path is not None or bool(os.environ.get("ONEIRIC_STATE_DIR"))
    target = Path(path).expanduser() if path is not None else default_state_dir()
    if create:
        try:
            make_private_dirs(target)
        except OSError as exc:
            raise ConfigError(
                f"cannot create state directory {str(target)!r}: {exc.strerror or exc}; {_FIX}"
            ) from None
    elif not os.path.lexists(target):
        return target
    check_private(target, symlink_ok=named)
    if create and not os.access(target, os.W_OK | os.X_OK):
        raise ConfigError(f"state directory {str(target)!r} is not writable; {_FIX}")
    return target
