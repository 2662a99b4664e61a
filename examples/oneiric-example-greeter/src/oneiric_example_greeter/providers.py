"""Greeter providers: a tiny service family used by the demo and the tests.

Imported at activation only (the plugin registers them as strings)."""

from __future__ import annotations

from pydantic import BaseModel


class GreeterSettings(BaseModel):
    """Settings of the ``formal`` greeter (validated by oneiric-core)."""

    title: str = "Dear"


class CasualGreeter:
    def greet(self, name: str) -> str:
        return f"hi {name}"


class FormalGreeter:
    def __init__(self, settings: GreeterSettings | None = None) -> None:
        self.title = (settings or GreeterSettings()).title

    def greet(self, name: str) -> str:
        return f"{self.title} {name}, good day."


class LegacyGreeter:
    def greet(self, name: str) -> str:
        return f"HELLO {name.upper()}"
