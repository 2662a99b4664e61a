"""Discovery registers three providers and imports no client; a missing extra fails in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import distribution

from oneiric.core import Resolver, load_plugins


def _run(code: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip(), "the child printed nothing"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_discovery_registers_the_providers_without_importing_clients() -> None:
    result = _run(
        """
        import json, sys
        import oneiric.adapters.cache._plugin
        light = "pydantic" not in sys.modules  # our plugin module alone needs no pydantic
        from oneiric.core import Resolver, load_plugins
        resolver = Resolver()
        report = load_plugins(resolver)
        ours = [e for e in report.entries if e.distribution == "oneiric-adapters-cache"]
        print(json.dumps({
            "loads": [[e.entry_point, e.candidates, e.error] for e in ours],
            "providers": sorted(c.provider for c in resolver.candidates("adapter", "cache")),
            "light": light,
            "imported": sorted(m for m in ("redis", "emcache",
                "oneiric.adapters.cache._redis", "oneiric.adapters.cache._memcached")
                if m in sys.modules),
        }))
        """
    )
    assert result["loads"] == [["cache", 3, None]]
    assert {"memcached", "memory", "redis"} <= set(result["providers"])  # type: ignore[arg-type]
    assert result["imported"] == []
    assert result["light"] is True


def test_candidates_declare_capabilities_and_string_factories() -> None:
    resolver = Resolver()
    load_plugins(resolver)
    found = {
        c.provider: c
        for c in resolver.candidates("adapter", "cache")
        if c.source.name == "oneiric-adapters-cache"
    }
    assert set(found) == {"memory", "redis", "memcached"}
    for candidate in found.values():
        assert isinstance(candidate.factory, str)
        assert isinstance(candidate.settings_model, str)
        assert {"ttl", "atomic-incr"} <= candidate.capabilities
    assert "lru" in found["memory"].capabilities
    assert "distributed" in found["redis"].capabilities
    assert "distributed" in found["memcached"].capabilities
    assert "distributed" not in found["memory"].capabilities


def test_missing_extra_fails_at_activation_in_one_line() -> None:
    result = _run(
        """
        import json, sys
        sys.modules["redis"] = None      # as if the extra were not installed
        sys.modules["emcache"] = None
        from oneiric.core import Resolver, load_plugins, resolve_factory, resolve_settings_model
        resolver = Resolver()
        load_plugins(resolver)
        out = {}
        for provider in ("redis", "memcached", "memory"):
            (candidate,) = [c for c in resolver.candidates("adapter", "cache")
                            if c.provider == provider and c.source.name == "oneiric-adapters-cache"]
            factory = resolve_factory(candidate)          # importing the factory works
            settings = resolve_settings_model(candidate)()
            try:
                factory(settings)
                out[provider] = "built"
            except ImportError as exc:
                out[provider] = [type(exc).__name__, str(exc)]
        print(json.dumps(out))
        """
    )
    assert result["memory"] == "built"
    for provider, extra in (("redis", "redis"), ("memcached", "memcached")):
        kind, message = result[provider]  # type: ignore[misc]
        assert kind == "MissingExtraError"
        assert "\n" not in message
        assert f'pip install "oneiric-adapters-cache[{extra}]"' in message


def test_entry_points_opt_in_only() -> None:
    eps = distribution("oneiric-adapters-cache").entry_points
    assert [(e.group, e.name, e.value) for e in eps if e.group == "oneiric"] == [
        ("oneiric", "cache", "oneiric.adapters.cache._plugin")
    ]
    # the conformance suite is never auto-loaded by pytest
    assert [e for e in eps if e.group == "pytest11"] == []
