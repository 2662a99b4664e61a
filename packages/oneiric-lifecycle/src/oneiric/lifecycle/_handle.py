"""``Handle``: the stable reference a swap updates in place, and the placeholder of no instance.

A leaf module: the manager binds into handles and the bridge hands them out,
so neither has to import the other for it.
"""

from __future__ import annotations

from typing import Generic, NoReturn, TypeVar

from oneiric.core import NotActiveError

__all__ = ["Handle", "Inactive"]

T = TypeVar("T")


class Handle(Generic[T]):
    """A stable reference to whatever provider is bound to ``(domain, key, tenant)``.

    The lifecycle assigns ``instance`` on every bind; nothing else happens on a
    read.  After ``shutdown()`` ``instance`` is a placeholder that raises
    ``NotActiveError`` on any attribute access.  ``T`` is what the application
    says the domain's components are (``DomainBridge[Cache]``): a component is
    any object, the lifecycle never checks its type.
    """

    __slots__ = ("domain", "instance", "key", "tenant")

    def __init__(self, domain: str, key: str, tenant: str | None, instance: T) -> None:
        self.domain = domain
        self.key = key
        self.tenant = tenant
        self.instance: T = instance

    def __repr__(self) -> str:
        scope = f" tenant={self.tenant}" if self.tenant else ""
        return f"<Handle {self.domain}/{self.key}{scope} -> {type(self.instance).__name__}>"


class Inactive:
    """Placeholder bound before activation and after shutdown: any use raises ``NotActiveError``."""

    __slots__ = ("_message",)

    def __init__(self, message: str) -> None:
        object.__setattr__(self, "_message", message)

    def __getattr__(self, name: str) -> NoReturn:
        raise NotActiveError(object.__getattribute__(self, "_message"))

    def __repr__(self) -> str:
        return "<inactive>"
