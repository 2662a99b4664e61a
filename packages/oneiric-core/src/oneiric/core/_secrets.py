"""Built-in sources for ``${secret:NAME}``, registered as ``trylast`` hook implementations.

Plugins implementing ``oneiric_secret`` (Vault, a cloud secret manager, ...) answer
first; these built-ins answer only when no plugin did:

1. the environment variable ``ONEIRIC_SECRET_<NAME>`` (NAME upper-cased, other
   characters than letters/digits replaced by ``_``);
2. a file named ``NAME`` in the secrets directory ``ONEIRIC_SECRETS_DIR``
   (default ``/run/secrets``, the Docker/Kubernetes convention), one trailing
   newline stripped.

Redaction of the values resolved from here lives in ``_redact``.
"""

from __future__ import annotations

import os
import re

from ._markers import hookimpl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["env_name", "oneiric_secret", "secrets_dir"]

_NON_WORD = re.compile(r"[^A-Za-z0-9]")
# Used with fullmatch only: ``$`` would accept a trailing newline ("token\n").
_SAFE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def env_name(name: str) -> str:
    """The environment variable that holds secret ``name``."""
    return "ONEIRIC_SECRET_" + _NON_WORD.sub("_", name).upper()


def secrets_dir() -> Path:
    """The directory searched for secret files."""
    from pathlib import Path

    # An empty value means "unset", never the current directory.
    return Path(os.environ.get("ONEIRIC_SECRETS_DIR") or "/run/secrets")


@hookimpl(trylast=True)
def oneiric_secret(name: str) -> str | None:
    value = os.environ.get(env_name(name))
    if value is not None:
        return value
    if not isinstance(name, str) or not _SAFE_FILE.fullmatch(name):
        return None  # never let a secret name walk the file system
    path = secrets_dir() / name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text[:-1] if text.endswith("\n") else text
