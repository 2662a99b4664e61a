"""``[control.provider_settings.plane.redis]``: where the fleet's Redis is and how often to beat.

Validated by pydantic like every provider's settings (unknown keys refused):
``url`` (``redis://`` or ``rediss://`` for TLS; credentials in the URL or an ACL
user per role, docs/fleet.md), ``fleet`` (a namespace: several fleets share one
Redis), ``heartbeat`` (seconds; an instance whose status is three heartbeats
old is lost), ``history`` (revisions the change log keeps at least; it is
never trimmed below the slowest live instance).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["RedisPlaneSettings"]


class RedisPlaneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    fleet: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")] = "default"
    heartbeat: Annotated[float, Field(gt=0, le=60)] = 1.0
    history: Annotated[int, Field(ge=1, le=10_000_000)] = 10_000

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// (TLS) or unix:// URL")
        return value
