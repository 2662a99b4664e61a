"""The orchestrator's routes: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``.

Readiness is computed from the lifecycle's status document on every request,
never cached: a key is *ready* when it is bound, its last health probe is ok
and it is neither paused, draining nor drained.  Keys whose activation failed
(nothing bound) do not count - they never served, so they cannot stop serving
(their failure is in ``/status`` and ``oneiric_component_failures_total``).

Authentication: with a token configured, a request carrying
``Authorization: Bearer <token>`` is compared in constant time
(``hmac.compare_digest``); a wrong or malformed credential is 401 on every
route.  ``/healthz`` and ``/readyz`` also answer without any credential, because
kubelets and load balancers probe without one, but then ``/readyz`` says only
ready or not (the reasons name keys and notes, which are for operators);
``/metrics`` and ``/status`` need the token.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from ._http import Request, Response

__all__ = ["Routes", "readiness"]

_JSON = "application/json"
_PUBLIC = ("/healthz", "/readyz")


def readiness(document: Any) -> list[dict[str, Any]]:
    """The reasons ``document`` (a status document) is not ready; empty when ready."""
    reasons: list[dict[str, Any]] = []
    for key in document.get("keys", []):
        if key.get("bound") is None:
            continue
        name = {"domain": key["domain"], "key": key["key"], "tenant": key.get("tenant")}
        activity = key.get("activity") or {}
        state = activity.get("state", "active")
        if state != "active":
            reason = "drained" if activity.get("drained") else state
            reasons.append({**name, "reason": reason, "note": activity.get("note", "")})
            continue
        health = key.get("last_health")
        if health is None:
            reasons.append({**name, "reason": "not probed"})
        elif not health.get("ok"):
            reasons.append({**name, "reason": "unhealthy", "detail": health.get("detail", "")})
    return reasons


def _json(status: int, data: Any) -> Response:
    return Response(status, (json.dumps(data, sort_keys=True) + "\n").encode(), _JSON)


class Routes:
    """The request handler; ``phase`` is ``starting``, ``serving`` or ``stopping``.

    ``status`` returns the current status document (None before the host is
    up); ``metrics`` returns ``(body, content type)`` of the exposition.
    """

    def __init__(
        self,
        *,
        token: str | None,
        status: Callable[[], Any],
        metrics: Callable[[], tuple[bytes, str]],
    ) -> None:
        self._token = token.encode("ascii") if token is not None else None
        self._status = status
        self._metrics = metrics
        self.phase = "starting"

    def _authorised(self, request: Request) -> bool | None:
        """True: valid token (or none configured); False: a wrong one; None: none sent."""
        if self._token is None:
            return True
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, credential = header.partition(" ")
        presented = credential.strip().encode("latin-1")
        # compare even for a wrong scheme, so timing does not tell the two apart
        ok = hmac.compare_digest(presented, self._token)
        return ok and scheme.lower() == "bearer"

    async def __call__(self, request: Request) -> Response:
        allowed = self._authorised(request)
        if allowed is False or (allowed is None and request.path not in _PUBLIC):
            return Response(401, b"unauthorized: send Authorization: Bearer <token>\n",
                            headers=(("WWW-Authenticate", 'Bearer realm="oneiric"'),))
        if request.path == "/healthz":
            return Response(200, b"ok\n")
        if request.path == "/readyz":
            return self._ready(detailed=bool(allowed))
        if request.path == "/metrics":
            body, content_type = self._metrics()
            return Response(200, body, content_type)
        if request.path == "/status":
            document = self._status() if self.phase == "serving" else None
            if document is None:
                return _json(503, {"phase": self.phase})
            return _json(200, document)
        return Response(404, b"not found: /healthz, /readyz, /metrics, /status\n")

    def _ready(self, *, detailed: bool) -> Response:
        if self.phase != "serving":
            return _json(503, {"ready": False, "phase": self.phase,
                               **({"reasons": [{"reason": self.phase}]} if detailed else {})})
        reasons = readiness(self._status())
        body: dict[str, Any] = {"ready": not reasons}
        if detailed:
            body["reasons"] = reasons
        return _json(200 if not reasons else 503, body)
