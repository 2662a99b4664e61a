"""Oneiric demo on embedded defaults: discovery, precedence and explain.

Run with ``python -m nox -s demo`` (installs oneiric-core and the example
third-party plugin ``oneiric-example-greeter`` as real wheels), or directly
when both are installed.  Uses a temporary config and state directory and
leaves nothing behind.
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from oneiric.core import (
    Candidate,
    OneiricError,
    Resolver,
    Source,
    load_plugins,
    load_settings,
    resolve_factory,
)

JSON = "--json" in sys.argv
transcript: list[dict[str, Any]] = []


def screen(title: str, body: str, data: Any = None) -> None:
    transcript.append({"step": title, "data": data})
    if not JSON:
        print(f"\n== {title} " + "=" * max(0, 70 - len(title)))
        print(body)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="oneiric-demo-") as tmp:
        config = Path(tmp) / "settings"
        state = Path(tmp) / "state"
        config.mkdir()

        resolver = Resolver()
        report = load_plugins(resolver)
        lines = [
            f"{e.distribution}=={e.version}  entry point {e.entry_point!r} -> {e.module}: "
            f"{e.candidates} candidates ({e.load_time_s * 1000:.1f} ms)"
            + (f"  ERROR {e.error}" if e.error else "")
            for e in report.entries
        ]
        screen("1. plugins found through entry points", "\n".join(lines) or "(none)",
               report.as_dict())

        explanation = resolver.explain("service", "greeter")
        screen("2. explain: priority decides, a policy plugin vetoes 'legacy'",
               str(explanation), explanation.as_dict())

        # Application code registers its own candidate at the same priority as 'formal'
        # but a higher stack level: rule 3 decides.
        resolver.register(
            Candidate("service", "greeter", "inhouse", "builtins:object",
                      priority=20, stack_level=1, source=Source("code", "app"))
        )
        explanation = resolver.explain("service", "greeter")
        screen("3. app code adds 'inhouse' at the same priority, higher stack_level",
               str(explanation), explanation.as_dict())

        # The operator selects a provider explicitly in settings (with provider settings).
        (config / "oneiric.toml").write_text(textwrap.dedent("""
            [service.selections]
            greeter = "formal"

            [service.provider_settings.greeter.formal]
            title = "Esteemed"

            [service.tenants.acme.selections]
            greeter = "casual"
        """))
        settings = load_settings(config, state_dir=state)
        settings.apply(resolver)
        winner = resolver.resolve("service", "greeter")
        greeter = resolve_factory(winner)(settings.settings_for(winner))
        tenant = resolver.resolve("service", "greeter", tenant="acme")
        screen("4. explicit selection from settings (global and tenant 'acme')",
               str(resolver.explain("service", "greeter"))
               + f"\n\n  formal says: {greeter.greet('Ada')}"
               + f"\n  tenant acme gets: {tenant.provider} -> "
               + resolve_factory(tenant)().greet("Ada"),
               {"global": winner.provider, "acme": tenant.provider})

        # Selecting a vetoed provider is an error, never a silent fallback.
        resolver.set_selections("service", {"greeter": "legacy"})
        try:
            resolver.resolve("service", "greeter")
            message = "unexpected: resolved"
        except OneiricError as exc:
            message = f"{type(exc).__name__}: {exc}"
        screen("5. selecting a vetoed provider fails loudly", message, {"error": message})

        # Required capabilities filter candidates.
        resolver.set_selections("service", {})
        polite = resolver.explain("service", "greeter", require=["polite"])
        screen("6. require=['polite']", str(polite), polite.as_dict())

        shadowed = [
            f"{r.candidate.domain}/{r.candidate.key} {r.candidate.provider} "
            f"({r.candidate.source}): {r.reason}"
            for r in resolver.shadowed()
        ]
        screen("7. shadowed candidates", "\n".join(shadowed), shadowed)

    if JSON:
        json.dump({"transcript": transcript}, sys.stdout, indent=2)
        print()
    else:
        print("\nDemo finished; temporary config and state removed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
