"""``oneiric remote ...`` under the real ``oneiric`` command: remote's errors take core's one path.

Remote's commands raise; the ``oneiric`` main prints one line and exits with
``oneiric.core.exit_code_for`` (the category each remote error declares).
Cross-package (oneiric-remote + oneiric-cli), so it lives here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from nacl.signing import SigningKey

from oneiric.remote import TrustedKey
from oneiric.testing import free_port


def _settings(tmp_path: Path, url: str) -> Path:
    key = TrustedKey.from_public(bytes(SigningKey.generate().verify_key))
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "oneiric.toml").write_text(
        f'[remote]\ncache_dir = "{tmp_path / "cache"}"\n[remote.sources.s]\nurl = "{url}"\n'
        f'repository = "acme-prod"\ntrusted_keys = [{{ keyid = "{key.keyid}", '
        f'public_key = "{key.public_key}" }}]\n',
        encoding="utf-8",
    )
    return config


def test_remote_errors_exit_by_category_under_the_oneiric_cli(tmp_path: Path) -> None:
    """Unknown source: not found (3); nothing listening: unavailable (5), per source in --json."""
    config = _settings(tmp_path, f"https://127.0.0.1:{free_port()}/m.json")
    env = {**os.environ, "ONEIRIC_STATE_DIR": str(tmp_path / "state")}
    base = [sys.executable, "-m", "oneiric.cli", "--config", str(config)]
    proc = subprocess.run([*base, "remote", "sync", "--source", "nope"], capture_output=True,
                          text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.splitlines() == [
        "Error: no remote source 'nope'; configured: s; pass one of those to --source"
    ]
    proc = subprocess.run([*base, "remote", "sync", "--json"], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert proc.returncode == 5, proc.stderr
    (row,) = json.loads(proc.stdout)["sources"]
    assert (row["ok"], row["exit_code"], row["error_type"]) == (False, 5, "FetchError")
