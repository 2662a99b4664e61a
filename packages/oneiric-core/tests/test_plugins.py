"""Plugin discovery and loading on real installed distributions.

Every test installs genuine distributions (``*.dist-info`` with METADATA,
RECORD and ``entry_points.txt`` plus the plugin module) into a temporary site
directory that is put first on ``sys.path``: discovery reads the same files as
it does in production.  Most tests use a fresh plugin manager (via
``Resolver(hooks=...)``) so nothing leaks into the process-wide one; the test
of the default path unregisters what it registered.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from oneiric.core import (
    HOOKSPEC_VERSION,
    Candidate,
    DiscoveryReport,
    EntryPointInfo,
    PluginRegistry,
    Resolver,
    Source,
    check_namespace,
    discover_entry_points,
    get_plugin_manager,
    load_plugins,
)

_counter = itertools.count()


class Site:
    """A temporary site directory into which tests install distributions."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix  # unique per test: module names never collide in sys.modules
        self.modules: list[str] = []
        self.plugin_names: list[str] = []

    def module(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def install(
        self,
        dist: str,
        version: str = "1.0",
        *,
        plugins: dict[str, str],
        entry_points: dict[str, str] | None = None,
    ) -> None:
        """Install ``dist`` with one module per entry ``{entry point: module source}``.

        The module of entry point ``ep`` is named ``<prefix>_<dist>_<ep>``;
        ``entry_points`` overrides an entry point's value (e.g. a missing module).
        """
        normalized = dist.replace("-", "_").replace(".", "_")
        info = self.path / f"{normalized}-{version}.dist-info"
        info.mkdir()
        files: list[str] = []
        lines = ["[oneiric]"]
        for ep, source in plugins.items():
            module = self.module(f"{normalized}_{ep}".lower().replace("-", "_"))
            (self.path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            files.append(f"{module}.py")
            self.modules.append(module)
            value = (entry_points or {}).get(ep, module)
            lines.append(f"{ep} = {value}")
            self.plugin_names.append(f"{dist}:{ep}")
        for ep, value in (entry_points or {}).items():
            if ep not in plugins:
                lines.append(f"{ep} = {value}")
                self.plugin_names.append(f"{dist}:{ep}")
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        record = [f"{f},," for f in files]
        record += [f"{info.name}/{n},," for n in ("METADATA", "entry_points.txt", "RECORD")]
        (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


def fresh_manager() -> pluggy.PluginManager:
    """A private manager with Oneiric's hook specs (taken from the process-wide one)."""
    specs = get_plugin_manager().hook.oneiric_register.spec
    assert specs is not None
    manager = pluggy.PluginManager("oneiric")
    manager.add_hookspecs(specs.namespace)
    return manager


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    manager = get_plugin_manager()
    before = {name for name, _ in manager.list_name_plugin()}
    result = Site(path, f"oneiric_test_plugin{next(_counter)}")
    yield result
    for name in result.modules:
        sys.modules.pop(name, None)
    # Whatever a test loaded into the process-wide manager (its own plugins and
    # any other installed ones) is unregistered again.
    for name, _ in manager.list_name_plugin():
        if name not in before:
            manager.unregister(name=name)


@pytest.fixture
def hooks() -> pluggy.PluginManager:
    return fresh_manager()


@pytest.fixture
def resolver(hooks: pluggy.PluginManager) -> Resolver:
    return Resolver(hooks=hooks)


def register_plugin(*candidates: str) -> str:
    """Plugin source registering ``domain/key/provider`` triples with string factories."""
    calls = "\n".join(
        f"    registry.register(domain={d!r}, key={k!r}, provider={p!r}, factory='json:loads')"
        for d, k, p in (c.split("/") for c in candidates)
    )
    return (
        "from oneiric.core import hookimpl\n\n"
        "@hookimpl\n"
        "def oneiric_register(registry):\n"
        f"{calls or '    pass'}\n"
    )


def with_noop_veto(source: str) -> str:
    """Add a second hook, so the plugin is registered with pluggy (not register-only)."""
    return source + (
        "\n@hookimpl\n"
        "def oneiric_candidate_veto(candidate, request):\n"
        "    return None\n"
    )


def ours(report: DiscoveryReport, site: Site) -> list[tuple[str, str]]:
    """The (distribution, entry point) pairs of ``report`` that this test installed."""
    names = set(site.plugin_names)
    return [
        (e.distribution, e.entry_point)
        for e in report.entries
        if f"{e.distribution}:{e.entry_point}" in names
    ]


def assert_one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# ------------------------------------------------------------------ discovery


def test_discovery_reads_installed_distributions_in_sorted_order(
    site: Site, resolver: Resolver
) -> None:
    site.install("zeta-plugin", plugins={"b": register_plugin("ptest/cache/zeta-b")})
    site.install(
        "Alpha_Plugin",
        "2.0",
        plugins={
            "second": register_plugin("ptest/cache/alpha-2"),
            "first": register_plugin("ptest/cache/alpha-1"),
        },
    )
    site.install("beta.plugin", plugins={"only": register_plugin("ptest/cache/beta")})

    found = [(e.distribution, e.name, e.version) for e in discover_entry_points()]
    mine = [f for f in found if f[0] in {"zeta-plugin", "Alpha_Plugin", "beta.plugin"}]
    assert mine == [
        ("Alpha_Plugin", "first", "2.0"),
        ("Alpha_Plugin", "second", "2.0"),
        ("beta.plugin", "only", "1.0"),
        ("zeta-plugin", "b", "1.0"),
    ]

    report = load_plugins(resolver)
    assert ours(report, site) == [(d, n) for d, n, _ in mine]
    assert report.errors == ()
    # Candidates were registered in that order: the latest registration wins ties.
    ranking = resolver.explain("ptest", "cache").ranking
    by_registration = sorted(ranking, key=lambda r: r.registered)
    assert [r.candidate.provider for r in by_registration] == [
        "alpha-1",
        "alpha-2",
        "beta",
        "zeta-b",
    ]


def test_same_entry_point_name_in_two_distributions(
    site: Site, resolver: Resolver, hooks: pluggy.PluginManager
) -> None:
    site.install("acme-one", plugins={"cache": with_noop_veto(register_plugin("ptest/cache/one"))})
    site.install(
        "acme-two", "3.1", plugins={"cache": with_noop_veto(register_plugin("ptest/cache/two"))}
    )

    report = load_plugins(resolver)

    assert report.errors == ()
    assert hooks.get_plugin("acme-one:cache") is not None
    assert hooks.get_plugin("acme-two:cache") is not None
    assert hooks.get_plugin("acme-one:cache") is not hooks.get_plugin("acme-two:cache")
    sources = {str(c.source) for c in resolver.candidates("ptest", "cache")}
    assert sources == {"entry_point:acme-one==1.0", "entry_point:acme-two==3.1"}


def test_registry_facade_fills_the_plugins_own_source(site: Site, resolver: Resolver) -> None:
    site.install(
        "oneiric-acme",
        "1.2.3",
        plugins={
            "main": """
                from oneiric.core import Candidate, Source, hookimpl

                @hookimpl
                def oneiric_register(registry):
                    # A plugin cannot pretend to be the application or another plugin.
                    registry.register(
                        Candidate(
                            "ptest", "cache", "from-candidate", "json:loads",
                            source=Source("entry_point", "oneiric-other", "9"),
                        )
                    )
                    registry.register(
                        domain="ptest", key="cache", provider="from-fields",
                        factory="json:loads", source=Source("code", "app"), priority=7,
                    )
            """
        },
    )

    report = load_plugins(resolver)

    assert report.errors == ()
    (entry,) = [e for e in report.entries if e.distribution == "oneiric-acme"]
    assert entry.candidates == 2
    assert entry.version == "1.2.3"
    assert entry.module == site.module("oneiric_acme_main")
    expected = Source("entry_point", "oneiric-acme", "1.2.3", detail="main")
    candidates = {c.provider: c for c in resolver.candidates("ptest", "cache")}
    assert set(candidates) == {"from-candidate", "from-fields"}
    for candidate in candidates.values():
        assert candidate.source == expected
        assert candidate.source.detail == "main"
    assert candidates["from-fields"].priority == 7


def test_registry_facade_rejects_wrong_arguments() -> None:
    registry = PluginRegistry(Source("entry_point", "dist", "1"))
    candidate = Candidate("ptest", "cache", "memory", "json:loads")
    with pytest.raises(TypeError, match="not both"):
        registry.register(candidate, domain="ptest")
    with pytest.raises(TypeError, match="expects a Candidate"):
        registry.register("ptest/cache/memory")  # type: ignore[arg-type]
    assert registry.candidates == []


# ------------------------------------------------------------------- failures

FAILING_PLUGINS = {
    "import-raises": (
        """
        raise RuntimeError("boom at import")
        """,
        ("import of", "RuntimeError: boom at import", "fix or reinstall import-raises"),
    ),
    "register-raises": (
        """
        from oneiric.core import hookimpl

        @hookimpl
        def oneiric_register(registry):
            registry.register(domain="ptest", key="cache", provider="half", factory="json:loads")
            raise ValueError("database of providers is gone")
        """,
        ("oneiric_register raised ValueError: database of providers is gone",),
    ),
    "bad-candidate": (
        """
        from oneiric.core import hookimpl

        @hookimpl
        def oneiric_register(registry):
            registry.register(domain="ptest", key="cache", provider="fine", factory="json:loads")
            registry.register(domain="ptest", key="cache", provider="Not Valid!",
                              factory="json:loads")
        """,
        ("InvalidCandidateError", "invalid provider name 'Not Valid!'"),
    ),
    "bad-hookimpl": (
        """
        from oneiric.core import hookimpl

        @hookimpl
        def oneiric_register(registry):
            registry.register(domain="ptest", key="cache", provider="hook", factory="json:loads")

        @hookimpl
        def oneiric_candidate_veto(candidate, request, surprise):
            return "vetoed by a plugin that failed to load"
        """,
        ("invalid hook implementation", "surprise"),
    ),
    "unknown-hook": (
        """
        from oneiric.core import hookimpl

        @hookimpl
        def oneiric_candidate_veto(candidate, request):
            return "vetoed by a plugin that failed to load"

        @hookimpl
        def oneiric_regster(registry):
            pass
        """,
        ("unknown hook oneiric_regster", "oneiric_register", "check the spelling"),
    ),
    "too-new": (
        f"""
        from oneiric.core import hookimpl

        ONEIRIC_HOOKSPEC = {HOOKSPEC_VERSION + 1}

        @hookimpl
        def oneiric_register(registry):
            registry.register(domain="ptest", key="cache", provider="new", factory="json:loads")
        """,
        (
            f"needs hook-spec version {HOOKSPEC_VERSION + 1}",
            f"provides {HOOKSPEC_VERSION}",
            "upgrade oneiric-core",
        ),
    ),
}


def test_failing_plugins_are_isolated_and_reported(
    site: Site, resolver: Resolver, hooks: pluggy.PluginManager
) -> None:
    for dist, (source, _) in FAILING_PLUGINS.items():
        site.install(dist, plugins={"main": source})
    site.install("missing-module", plugins={}, entry_points={"main": site.module("does_not_exist")})
    site.install("good", plugins={"main": register_plugin("ptest/cache/good")})

    report = load_plugins(resolver)

    errors = {e.distribution: e for e in report.errors}
    assert set(errors) == {*FAILING_PLUGINS, "missing-module"}
    for dist, (_, fragments) in FAILING_PLUGINS.items():
        assert errors[dist].candidates == 0
        assert_one_line(errors[dist].error or "", *fragments)
    assert_one_line(
        errors["missing-module"].error or "",
        "import of",
        "ModuleNotFoundError",
        "does_not_exist",
        "fix or reinstall missing-module",
    )
    # The failed plugins contributed nothing and are not left registered with pluggy
    # (pluggy keeps a half-registered plugin when validation fails).
    assert [c.provider for c in resolver.candidates("ptest", "cache")] == ["good"]
    for dist in errors:
        assert hooks.get_plugin(f"{dist}:main") is None
    # register-only plugins are called directly, not registered with pluggy
    assert hooks.get_plugin("good:main") is None
    vetoes = hooks.hook.oneiric_candidate_veto.get_hookimpls()
    assert [i.plugin_name for i in vetoes if i.plugin_name in site.plugin_names] == []
    assert resolver.resolve("ptest", "cache").provider == "good"
    good = next(e for e in report.entries if e.distribution == "good")
    assert good.ok and good.candidates == 1 and good.error is None
    assert good.load_time_s >= 0


def test_hookspec_version_must_be_a_positive_int(site: Site, resolver: Resolver) -> None:
    site.install("odd-version", plugins={"main": "ONEIRIC_HOOKSPEC = '1'\n"})
    site.install("current", plugins={"main": f"ONEIRIC_HOOKSPEC = {HOOKSPEC_VERSION}\n"})

    report = load_plugins(resolver)

    (failed,) = report.errors
    assert failed.distribution == "odd-version"
    assert_one_line(failed.error or "", "ONEIRIC_HOOKSPEC must be a positive int, got '1'")


def test_blocked_plugin_is_not_imported(
    site: Site, resolver: Resolver, hooks: pluggy.PluginManager
) -> None:
    site.install("blocked", plugins={"main": "raise AssertionError('must not be imported')\n"})
    hooks.set_blocked("blocked:main")

    report = load_plugins(resolver)

    (failed,) = report.errors
    assert_one_line(failed.error or "", "'blocked:main' is blocked", "unblock it")
    assert site.module("blocked_main") not in sys.modules


def test_failure_is_logged_as_a_warning(
    site: Site, resolver: Resolver, caplog: pytest.LogCaptureFixture
) -> None:
    site.install("broken", plugins={"main": "raise ImportError('no luck')\n"})
    with caplog.at_level("WARNING", logger="oneiric"):
        load_plugins(resolver)
    (record,) = [r for r in caplog.records if r.name == "oneiric.core.plugins"]
    assert record.levelname == "WARNING"
    assert "broken:main" in str(record.msg)


# ---------------------------------------------------------- batch, idempotence


def test_one_batch_and_one_notification(site: Site, resolver: Resolver) -> None:
    site.install("one", plugins={"main": register_plugin("ptest/cache/one", "ptest/a/x")})
    site.install("two", plugins={"main": register_plugin("ptest/cache/two", "ptest/b/y")})
    notifications: list[frozenset[tuple[str, str]]] = []
    resolver.subscribe(notifications.append)

    load_plugins(resolver)

    # One notification for everything (other installed plugins may add keys).
    assert len(notifications) == 1
    assert {("ptest", "cache"), ("ptest", "a"), ("ptest", "b")} <= notifications[0]


def test_second_call_changes_nothing(site: Site, resolver: Resolver) -> None:
    site.install("one", plugins={"main": register_plugin("ptest/cache/one")})
    site.install("two", plugins={"main": register_plugin("ptest/cache/two")})
    site.install("bad", plugins={"main": "raise RuntimeError('x')\n"})

    first = load_plugins(resolver)
    before = resolver.explain("ptest", "cache").as_dict()
    notifications: list[object] = []
    resolver.subscribe(notifications.append)

    second = load_plugins(resolver)

    assert second == first
    assert json.loads(json.dumps(second.as_dict())) == first.as_dict()
    assert resolver.explain("ptest", "cache").as_dict() == before
    assert notifications == []
    assert len(resolver.candidates("ptest", "cache")) == 2


def test_each_resolver_gets_the_candidates_once(site: Site, hooks: pluggy.PluginManager) -> None:
    site.install("one", plugins={"main": register_plugin("ptest/cache/one")})
    first, second = Resolver(hooks=hooks), Resolver(hooks=hooks)

    load_plugins(first)
    report = load_plugins(second)

    assert report.errors == ()
    assert [c.provider for c in second.candidates("ptest", "cache")] == ["one"]


def test_a_newly_installed_distribution_is_discovered(site: Site, resolver: Resolver) -> None:
    site.install("early", plugins={"main": register_plugin("ptest/cache/early")})
    load_plugins(resolver)
    assert [e.distribution for e in discover_entry_points() if e.distribution == "late"] == []

    site.install("late", plugins={"main": register_plugin("ptest/cache/late")})

    assert "late" in [e.distribution for e in discover_entry_points()]
    report = load_plugins(resolver)
    assert ("late", "main") in ours(report, site)
    assert {c.provider for c in resolver.candidates("ptest", "cache")} == {"early", "late"}


def _pin_mtime(path: Path, ns: int) -> None:
    """Give ``path`` the same mtime again: what two installs within one timestamp tick leave.

    ``ns`` is in the future, so discovery's own cache never trusts it (it
    rescans); only the import system's directory cache could miss the change.
    """
    os.utime(path, ns=(ns, ns))


@pytest.fixture(params=["metadata-imported", "metadata-not-imported"])
def import_caches(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways discovery invalidates the import caches: with ``importlib.metadata``
    imported (``importlib.invalidate_caches()``) and without (path finders only,
    so that nothing is imported; pytest itself has imported it, so it is hidden)."""
    import importlib.metadata  # noqa: F401

    if request.param == "metadata-not-imported":
        monkeypatch.delitem(sys.modules, "importlib.metadata")


@pytest.mark.usefixtures("import_caches")
def test_a_distribution_installed_within_the_same_mtime_tick_is_importable(
    site: Site, resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The import system lists a directory again only when its mtime changes;
    # load_plugins invalidates that listing so the new plugin module imports.
    monkeypatch.setattr(sys, "path", [str(site.path)])  # no other plugin (nor its imports)
    tick = time.time_ns() + 3600 * 10**9
    site.install("tick-early", plugins={"main": register_plugin("ptest/cache/early")})
    _pin_mtime(site.path, tick)
    assert ("tick-early", "main") in ours(load_plugins(resolver), site)

    site.install("tick-late", plugins={"main": register_plugin("ptest/cache/late")})
    _pin_mtime(site.path, tick)
    report = load_plugins(resolver)

    assert [e.error for e in report.entries if e.distribution == "tick-late"] == [None]
    assert {c.provider for c in resolver.candidates("ptest", "cache")} == {"early", "late"}


@pytest.mark.usefixtures("import_caches")
def test_a_new_portion_of_an_imported_namespace_package_is_importable(
    site: Site, resolver: Resolver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A plugin living in a namespace package (as oneiric.adapters.* do) that a
    # later install extends from another sys.path directory: the namespace's
    # __path__ must be recomputed although sys.path did not change.
    namespace = f"{site.prefix}_ns"
    other = tmp_path / "other-site"
    other.mkdir()
    monkeypatch.setattr(sys, "path", [str(other), str(site.path)])  # no other plugin
    tick = time.time_ns() + 3600 * 10**9

    def install(root: Path, dist: str) -> None:
        module = f"{namespace}.{dist.replace('-', '_')}"
        (root / namespace).mkdir(exist_ok=True)
        (root / namespace / f"{dist.replace('-', '_')}.py").write_text(
            register_plugin(f"ptest/cache/{dist}"), encoding="utf-8"
        )
        info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n\n")
        (info / "entry_points.txt").write_text(f"[oneiric]\nmain = {module}\n")
        (info / "RECORD").write_text("")
        site.modules.append(module)
        site.plugin_names.append(f"{dist}:main")
        _pin_mtime(root, tick)

    site.modules.append(namespace)
    install(site.path, "ns-early")
    assert ("ns-early", "main") in ours(load_plugins(resolver), site)

    install(other, "ns-late")
    report = load_plugins(resolver)

    assert [e.error for e in report.entries if e.distribution == "ns-late"] == [None]
    assert {c.provider for c in resolver.candidates("ptest", "cache")} == {"ns-early", "ns-late"}


def test_discovery_does_not_import_importlib_metadata(tmp_path: Path) -> None:
    # Python 3.13's importlib.invalidate_caches() imports importlib.metadata
    # (~20 ms); discovery must not pay for it in a process that does not use it.
    # A group nobody implements: whatever else is installed imports nothing here.
    code = (
        "import sys\n"
        "import oneiric.core as oc\n"
        "resolver = oc.Resolver(hooks=oc.new_plugin_manager())\n"
        "before = 'importlib.metadata' in sys.modules\n"
        "oc.load_plugins(resolver, group='oneiric-test-no-such-group')\n"
        "print(before, 'importlib.metadata' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, cwd=tmp_path,
        capture_output=True, text=True, check=True,
    )
    before, after = done.stdout.split()
    if before == "True":
        pytest.skip("importlib.metadata is imported by oneiric.core's dependencies here")
    assert after == "False", done.stderr


def _names(found: tuple[EntryPointInfo, ...]) -> set[str]:
    return {e.distribution for e in found}


def test_discovery_is_cached_until_a_distribution_is_installed(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("cached-one", plugins={"main": register_plugin()})
    old = time.time_ns() - 60 * 10**9
    os.utime(site.path, ns=(old, old))
    monkeypatch.setattr(sys, "path", [str(site.path)])  # only directories this test controls

    first = discover_entry_points()
    assert discover_entry_points() is first  # served from the cache
    assert _names(first) == {"cached-one"}

    site.install("cached-two", plugins={"main": register_plugin()})  # changes the mtime

    assert _names(discover_entry_points()) == {"cached-one", "cached-two"}


def test_a_just_modified_directory_is_not_trusted(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two installs within one file-system timestamp tick leave the directory's
    # mtime unchanged; a scan taken right after the first must not be cached.
    site.install("racy-one", plugins={"main": register_plugin()})
    tick = site.path.stat().st_mtime_ns
    monkeypatch.setattr(sys, "path", [str(site.path)])
    assert _names(discover_entry_points()) == {"racy-one"}

    site.install("racy-two", plugins={"main": register_plugin()})
    os.utime(site.path, ns=(tick, tick))

    assert _names(discover_entry_points()) == {"racy-one", "racy-two"}


def test_first_distribution_on_the_path_wins(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.install("shadowed", "2.0", plugins={"main": register_plugin("ptest/cache/later")})
    earlier = Site(tmp_path / "earlier", site.prefix + "_early")
    earlier.path.mkdir()
    earlier.install("shadowed", "1.0", plugins={"main": register_plugin("ptest/cache/first")})
    monkeypatch.syspath_prepend(str(earlier.path))

    versions = [e.version for e in discover_entry_points() if e.distribution == "shadowed"]

    assert versions == ["1.0"]


def test_default_plugin_manager(site: Site) -> None:
    site.install(
        "global-plugin", plugins={"main": with_noop_veto(register_plugin("ptest/cache/global"))}
    )
    resolver = Resolver()

    report = load_plugins(resolver)

    assert report.errors == ()
    assert get_plugin_manager().get_plugin("global-plugin:main") is not None
    assert resolver.resolve("ptest", "cache").provider == "global"


# ----------------------------------------------------------------------- veto


def test_veto_plugin_affects_resolution_and_explain(site: Site, resolver: Resolver) -> None:
    site.install(
        "oneiric-cache",
        plugins={"main": register_plugin("ptest/cache/redis", "ptest/cache/memory")},
    )
    site.install(
        "oneiric-policy",
        plugins={
            "main": """
                from oneiric.core import hookimpl

                @hookimpl
                def oneiric_candidate_veto(candidate, request):
                    if candidate.provider == "memory":
                        return "in-memory caches are not allowed in production"
                    return None
            """
        },
    )

    report = load_plugins(resolver)

    assert report.errors == ()
    # Without the veto, memory (registered last) would win the tie.
    assert resolver.resolve("ptest", "cache").provider == "redis"
    reasons = {r.candidate.provider: r.reason for r in resolver.explain("ptest", "cache").ranking}
    assert reasons["memory"] == (
        "vetoed by oneiric-policy: in-memory caches are not allowed in production"
    )


# ------------------------------------------------------------------ namespace


def test_our_namespace_is_accepted() -> None:
    check_namespace()


_NAMESPACE_SCRIPT = """
import json, sys
import oneiric.core
from oneiric.core import PluginError, Resolver, load_plugins

shadow = sys.argv[1]
sys.path.insert(0, shadow)
results = {}
# 1. the unrelated 'oneiric' package is on the path (what the next process would import)
try:
    load_plugins(Resolver())
except PluginError as exc:
    results["on_path"] = str(exc)
# 2. it is the imported 'oneiric' (installed into the same site-packages as ours)
del sys.modules["oneiric"]
import oneiric
results["imported_file"] = oneiric.__file__
sys.path.remove(shadow)
try:
    load_plugins(Resolver())
except PluginError as exc:
    results["imported"] = str(exc)
print(json.dumps(results))
"""


def test_unrelated_oneiric_package_is_detected(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "oneiric").mkdir(parents=True)
    (shadow / "oneiric" / "__init__.py").write_text("# the unrelated PyPI 'oneiric'\n")

    completed = subprocess.run(
        [sys.executable, "-c", _NAMESPACE_SCRIPT, str(shadow)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert results["imported_file"].startswith(str(shadow))
    for case in ("on_path", "imported"):
        assert_one_line(
            results[case],
            "unrelated package named 'oneiric'",
            str(shadow / "oneiric" / "__init__.py"),
            "pip uninstall oneiric",
        )


# ------------------------------------------------------- adversarial plugins

_FLAG_GUARDED = """
import os
from oneiric.core import hookimpl

FLAG = {flag!r}
{import_raise}

@hookimpl
def oneiric_register(registry):
    registry.register(domain="ptest", key="cache", provider="flaky", factory="json:loads")
    {hook_raise}
"""


class CustomBaseError(BaseException):
    """A BaseException that is not an Exception, defined by a plugin."""


def _raise_if_flag(expr: str) -> str:
    return f"if os.path.exists(FLAG): raise {expr}"


@pytest.mark.parametrize("where", ["import", "hook"])
@pytest.mark.parametrize(
    "expr",
    ["KeyboardInterrupt()", "type('CustomBaseError', (BaseException,), {})('plugin')"],
    ids=["KeyboardInterrupt", "custom-BaseException"],
)
def test_attack_base_exception_in_plugin_rolls_back_and_retry_registers_everything(
    site: Site, hooks: pluggy.PluginManager, tmp_path: Path, where: str, expr: str
) -> None:
    flag = tmp_path / "interrupt-now"
    flag.write_text("1")
    site.install("aaa-good", plugins={"main": register_plugin("ptest/cache/good")})
    # a pluggy-registered plugin before the interruption: its hooks must be rolled back too
    site.install("abb-veto", plugins={"main": with_noop_veto(register_plugin("ptest/other/v"))})
    site.install(
        "bbb-interrupt",
        plugins={
            "main": _FLAG_GUARDED.format(
                flag=str(flag),
                import_raise=_raise_if_flag(expr) if where == "import" else "",
                hook_raise=_raise_if_flag(expr) if where == "hook" else "pass",
            )
        },
    )
    site.install("ccc-good", plugins={"main": register_plugin("ptest/cache/late")})
    resolver = Resolver(hooks=hooks)

    with pytest.raises(BaseException) as caught:
        load_plugins(resolver)
    assert not isinstance(caught.value, Exception)
    # rolled back: nothing registered, no hooks left, nothing remembered as loaded
    assert resolver.candidates("ptest", "cache") == ()
    assert resolver.candidates("ptest", "other") == ()
    assert hooks.get_plugin("abb-veto:main") is None

    flag.unlink()
    report = load_plugins(resolver)
    mine = [e for e in report.entries if f"{e.distribution}:{e.entry_point}" in site.plugin_names]
    assert [e.error for e in mine] == [None, None, None, None]
    assert [e.candidates for e in mine] == [1, 1, 1, 1]
    # report and resolver agree
    assert sorted(c.provider for c in resolver.candidates("ptest", "cache")) == [
        "flaky", "good", "late"
    ]
    assert [c.provider for c in resolver.candidates("ptest", "other")] == ["v"]
    assert hooks.get_plugin("abb-veto:main") is not None


@pytest.mark.parametrize("where", ["import", "hook"])
@pytest.mark.parametrize(
    ("expr", "shown"),
    [("SystemExit(0)", "SystemExit"), ("SystemExit('bye')", "SystemExit: bye"),
     ("GeneratorExit()", "GeneratorExit")],
    ids=["SystemExit-0", "SystemExit-text", "GeneratorExit"],
)
def test_attack_plugin_raising_system_exit_or_generator_exit_is_a_plugin_error(
    site: Site, resolver: Resolver, tmp_path: Path, where: str, expr: str, shown: str
) -> None:
    flag = tmp_path / "always"
    flag.write_text("1")
    site.install("aaa-good", plugins={"main": register_plugin("ptest/cache/good")})
    site.install(
        "bbb-exit",
        plugins={
            "main": _FLAG_GUARDED.format(
                flag=str(flag),
                import_raise=_raise_if_flag(expr) if where == "import" else "",
                hook_raise=_raise_if_flag(expr) if where == "hook" else "pass",
            )
        },
    )
    site.install("ccc-good", plugins={"main": register_plugin("ptest/cache/late")})

    report = load_plugins(resolver)

    errors = {e.distribution: e.error for e in report.errors}
    assert set(errors) == {"bbb-exit"}
    assert_one_line(errors["bbb-exit"] or "", shown, "bbb-exit")
    assert sorted(c.provider for c in resolver.candidates("ptest", "cache")) == ["good", "late"]


_BLOCKING_IMPORT = """
import os, time
from oneiric.core import hookimpl

while not os.path.exists({flag!r}):
    time.sleep(0.01)

@hookimpl
def oneiric_register(registry):
    registry.register(domain="ptest", key="cache", provider="slow", factory="json:loads")
"""


def test_attack_plugin_import_hangs_is_bounded_and_never_retried(
    site: Site, hooks: pluggy.PluginManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    release = tmp_path / "release"
    monkeypatch.setenv("ONEIRIC_PLUGIN_TIMEOUT", "0.3")
    site.install("aaa-good", plugins={"main": register_plugin("ptest/cache/good")})
    site.install("bbb-hang", plugins={"main": _BLOCKING_IMPORT.format(flag=str(release))})
    hang_module = site.modules[-1]
    # a second plugin importing the hung module must not block the caller either
    site.install("bbc-needs-hang", plugins={"main": f"import {hang_module}\n"})
    site.install("ccc-good", plugins={"main": register_plugin("ptest/cache/late")})
    try:
        results: list[DiscoveryReport] = []

        def run() -> None:
            results.append(load_plugins(Resolver(hooks=hooks)))
            results.append(load_plugins(Resolver(hooks=hooks)))  # a new resolver: no retry

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(60)  # generous ceiling; the plugin never finishes on its own
        assert not worker.is_alive(), "load_plugins blocked on a hung plugin import"
        for report in results:
            errors = {e.distribution: e.error or "" for e in report.errors}
            assert set(errors) == {"bbb-hang", "bbc-needs-hang"}
            assert_one_line(
                errors["bbb-hang"], f"import of {hang_module}", "did not finish within 0.3 s",
                "ONEIRIC_PLUGIN_TIMEOUT"
            )
            good = [e for e in report.entries if e.distribution in ("aaa-good", "ccc-good")]
            assert [e.candidates for e in good] == [1, 1]
    finally:
        release.write_text("1")


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf", "1e400", "10 s"])
def test_attack_bad_plugin_timeout_is_a_one_line_config_error(
    site: Site, resolver: Resolver, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from oneiric.core import ConfigError

    monkeypatch.setenv("ONEIRIC_PLUGIN_TIMEOUT", value)
    site.install("aaa-good", plugins={"main": register_plugin("ptest/cache/good")})
    with pytest.raises(ConfigError) as caught:
        load_plugins(resolver)
    assert_one_line(str(caught.value), "ONEIRIC_PLUGIN_TIMEOUT", repr(value), "positive")


def test_plugin_imports_run_off_the_calling_thread_and_hooks_on_it(
    site: Site, resolver: Resolver
) -> None:
    import threading

    site.install(
        "aaa-where",
        plugins={
            "main": """
            import threading
            from oneiric.core import hookimpl

            IMPORTED_ON = threading.current_thread().name

            @hookimpl
            def oneiric_register(registry):
                registry.register(domain="ptest", key="cache", provider="p", factory="json:loads",
                                  description=IMPORTED_ON + "|" + threading.current_thread().name)
            """
        },
    )
    load_plugins(resolver)
    imported_on, hooked_on = resolver.resolve("ptest", "cache").description.split("|")
    assert imported_on != threading.current_thread().name
    assert hooked_on == threading.current_thread().name
