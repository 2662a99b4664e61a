"""Attack: concurrent ``oneiric swap`` commands lose selections (lost updates on the overlay).

Real processes, each writing through the public ``write_overlay``; every write
that returned must be in the file afterwards.  A start barrier (a file the
test creates once every process is ready) maximises the overlap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oneiric.core import read_overlay, write_overlay

WRITER = r"""
import os, sys, time
from oneiric.core import write_overlay
state, go, name, count, tenant = sys.argv[1:6]
count = int(count)
open(os.path.join(state, "ready-" + name), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.001)
for i in range(count):
    write_overlay(state, "adapter", f"{name}-k{i}", f"{name}-p{i}", tenant=tenant or None)
print("ok")
"""


def _run_writers(state: Path, names: list[str], count: int, tenant: str = "") -> None:
    go = state / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(state), str(go), name, str(count), tenant],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(
        (state / f"ready-{n}").exists() for n in names
    ):
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0 and out.strip() == "ok", err


@pytest.mark.parametrize("tenant", ["", "acme"], ids=["global", "tenant"])
def test_attack_eight_concurrent_swaps_each_keep_their_selection(
    tmp_path: Path, tenant: str
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    names = [f"w{i}" for i in range(8)]
    _run_writers(state, names, 1, tenant)
    overlay = read_overlay(state)
    scope = overlay["tenants"]["adapter"]["acme"] if tenant else overlay["selections"]["adapter"]
    assert scope == {f"{n}-k0": f"{n}-p0" for n in names}


def test_attack_two_processes_fifty_writes_each_lose_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    _run_writers(state, ["a", "b"], 50)
    selections = read_overlay(state)["selections"]["adapter"]
    expected = {f"{n}-k{i}": f"{n}-p{i}" for n in ("a", "b") for i in range(50)}
    assert selections == expected


def test_overlay_shape_and_lock_file_stay_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_overlay(state, "adapter", "cache", "redis")
    write_overlay(state, "adapter", "cache", "memory", tenant="acme")
    data = json.loads((state / "selections.json").read_text(encoding="utf-8"))
    assert data == {
        "selections": {"adapter": {"cache": "redis"}},
        "tenants": {"adapter": {"acme": {"cache": "memory"}}},
        "revision": 2,  # additive (issue 11): counts writes; read_overlay strips it
    }
    assert read_overlay(state) == {
        "selections": {"adapter": {"cache": "redis"}},
        "tenants": {"adapter": {"acme": {"cache": "memory"}}},
    }
    lock = state / ".selections.json.lock"
    assert lock.is_file() and (lock.stat().st_mode & 0o777) == 0o600
    assert not list(state.glob("*.tmp")) and not list(state.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("overlay", "tenant"),
    [
        ({"selections": {"adapter": "memory"}}, None),
        ({"selections": {"adapter": ["memory"]}}, None),
        ({"selections": {"adapter": None}}, None),
        ({"tenants": {"adapter": "memory"}}, "t1"),
        ({"tenants": {"adapter": ["t1"]}}, "t1"),
        ({"tenants": {"adapter": {"t1": "memory"}}}, "t1"),
        ({"tenants": {"adapter": {"t1": 3}}}, "t1"),
    ],
    ids=[
        "domain_str",
        "domain_list",
        "domain_null",
        "tenant_domain_str",
        "tenant_domain_list",
        "tenant_str",
        "tenant_int",
    ],
)
def test_attack_write_overlay_over_non_object_domain_entry(
    tmp_path: Path, overlay: dict[str, object], tenant: str | None
) -> None:
    from oneiric.core import ConfigError

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = state / "selections.json"
    before = json.dumps(overlay)
    target.write_text(before)
    with pytest.raises(ConfigError) as error:
        write_overlay(state, "adapter", "cache", "redis", tenant=tenant)
    message = str(error.value)
    assert "\n" not in message, message
    assert str(target) in message and "fix or delete the file" in message, message
    assert "--clear" in message or "delete" in message, message
    assert target.read_text() == before  # nothing written
    assert [p.name for p in state.iterdir() if p.name.endswith(".tmp")] == []


def test_write_overlay_over_other_domains_bad_entry_is_refused_too(tmp_path: Path) -> None:
    """A malformed entry anywhere is refused: rewriting the file would keep it silently."""
    from oneiric.core import ConfigError

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selections.json").write_text(json.dumps({"selections": {"service": 5}}))
    with pytest.raises(ConfigError, match=r"selections\.service"):
        write_overlay(state, "adapter", "cache", "redis")


def test_attack_reissued_selection_changes_the_overlay_file(tmp_path: Path) -> None:
    """Issue 11: re-issuing the selection already in the overlay is still a visible change."""
    state = tmp_path / "state"
    write_overlay(state, "adapter", "cache", "redis")
    before = (state / "selections.json").read_bytes()
    write_overlay(state, "adapter", "cache", "redis")
    assert (state / "selections.json").read_bytes() != before
    assert read_overlay(state) == {"selections": {"adapter": {"cache": "redis"}}, "tenants": {}}


@pytest.mark.parametrize("revision", ["7", -1, True, None, 1.5])
def test_attack_hand_edited_overlay_revision_restarts_the_count(
    tmp_path: Path, revision: object
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "selections.json").write_text(
        json.dumps({"selections": {"adapter": {"cache": "redis"}}, "revision": revision}),
        encoding="utf-8",
    )
    assert read_overlay(state)["selections"] == {"adapter": {"cache": "redis"}}
    write_overlay(state, "adapter", "cache", "memory")
    data = json.loads((state / "selections.json").read_text(encoding="utf-8"))
    assert data["revision"] == 1 and data["selections"] == {"adapter": {"cache": "memory"}}
