"""One-line error text: the one home for turning exceptions and names into a line.

Every Oneiric error is one line (a CLI prints it and nothing else, a status
snapshot stores it, a log line carries it).  Two things break that: messages
of foreign exceptions that span lines (pydantic, PyYAML, tracebacks quoted by a
plugin), and user-controlled names with a line break interpolated raw.  Each
package used to carry its own ``_one_line``; they differed in how they treated
``OSError`` and empty messages, so the same failure read differently in
``status`` and on stderr.
"""

from __future__ import annotations

__all__ = ["describe_exception", "one_line", "quote_name"]


def one_line(value: BaseException | str) -> str:
    """``value``'s message with every run of white space (line breaks too) folded to one space.

    An ``OSError`` with a file name reads ``"<strerror>: <filename>"`` (its
    ``str()`` is ``"[Errno 2] No such file or directory: 'x'"``); an exception
    with an empty message is named by its type, so the line is never empty.
    """
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, OSError) and value.filename:
        text = f"{value.strerror or type(value).__name__}: {value.filename}"
    else:
        text = str(value)
    text = " ".join(text.split())
    return text or type(value).__name__


def quote_name(name: object) -> str:
    """``name`` as it should appear inside a one-line message.

    A plain printable name is shown as is (``adapter.cache``); anything else -
    empty, white space, a line or paragraph separator, a control character, a
    non-string - is shown as its ``repr``, so a hostile name can neither split
    the line nor hide in it.
    """
    if isinstance(name, str) and name and name.isprintable() and not any(c.isspace() for c in name):
        return name
    return repr(name)


def describe_exception(exc: BaseException, *, join: str = "; ") -> str:
    """``Type: message`` on one line; ``Type`` alone when the message is empty.

    For failures of foreign code (a plugin, a factory's module, a client
    library), where the type is part of the diagnosis (``ConnectionRefusedError``
    vs ``TimeoutError``).  A multi-line message (pluggy's validation errors)
    keeps its lines as a list joined by ``join``; a one-line message is
    :func:`one_line` (an ``OSError`` reads ``"<strerror>: <filename>"``).
    """
    lines = [line for line in str(exc).splitlines() if line.strip()]
    text = join.join(one_line(line) for line in lines) if len(lines) > 1 else one_line(exc)
    name = type(exc).__name__
    return name if text == name else f"{name}: {text}"
