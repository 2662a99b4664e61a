"""The one path validator every provider uses.

Why shared: a path that one provider refuses and another accepts makes a
provider swap change behaviour.  Paths are relative, ``/``-separated object
names; anything that could climb out of a root (``..``), be read as absolute
(leading ``/``, a drive or a backslash) or truncate a C string (NUL) is refused
before a provider sees it.
"""

from __future__ import annotations

from ._errors import InvalidPathError

__all__ = ["MAX_PATH_LENGTH", "validate_path", "validate_prefix"]

#: S3 and GCS cap object names at 1024 bytes; the strictest backend wins.
MAX_PATH_LENGTH = 1024


def _check(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidPathError(f"storage {what} must be a str, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidPathError(f"storage {what} {value!r} contains NUL; remove it")
    if "\\" in value:
        raise InvalidPathError(f"storage {what} {value!r} contains a backslash; use '/'")
    if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        raise InvalidPathError(f"storage {what} {value!r} is absolute; pass a relative path")
    if len(value.encode("utf-8")) > MAX_PATH_LENGTH:
        raise InvalidPathError(f"storage {what} is longer than {MAX_PATH_LENGTH} bytes")
    return value


def _check_segments(value: str, segments: list[str], what: str) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidPathError(
                f"storage {what} {value!r} has an empty, '.' or '..' segment; "
                "use a normalized relative path like 'a/b.txt'"
            )


def validate_path(path: str) -> str:
    """Return ``path`` if it is a valid object path, else raise ``InvalidPathError``."""
    _check(path, "path")
    if not path:
        raise InvalidPathError("storage path is empty; pass an object name like 'a/b.txt'")
    _check_segments(path, path.split("/"), "path")
    return path


def validate_prefix(prefix: str) -> str:
    """Return the normalized list prefix: ``""`` or ``"dir/sub/"`` (one trailing slash).

    A prefix names a directory: ``"a"`` and ``"a/"`` both list ``a/...``, never ``ab``.
    """
    _check(prefix, "prefix")
    if not prefix:
        return ""
    body = prefix[:-1] if prefix.endswith("/") else prefix
    _check_segments(prefix, body.split("/"), "prefix")
    return body + "/"
