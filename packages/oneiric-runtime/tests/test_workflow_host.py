"""Workflows inside a ``Host``: files from the settings dir, one engine, recovery at start.

Real settings files, the real SQLite checkpoint store in the host's state
dir, real plugins (oneiric-actions' kits through their entry point).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from oneiric.lifecycle import Host
from oneiric.runtime import RunRecord, WorkflowDefinitionError, engine_for
from oneiric.testing import apoll_until

pytestmark = pytest.mark.anyio

HASH_THEN_ENCODE = """\
id = "digest"
version = 1

[[nodes]]
id = "hash"
action = "compression.hash"
input = { data = "${input.text}" }

[[nodes]]
id = "pack"
action = "compression.encode"
needs = ["hash"]
input = { data = "${nodes.hash.output.digest}", encoding = "base64" }
"""


def _settings(tmp_path: Path, files: dict[str, str]) -> Path:
    config = tmp_path / "settings"
    (config / "workflows").mkdir(parents=True)
    (config / "oneiric.toml").write_text("[lifecycle]\nhealth_interval = 0\n")
    for name, text in files.items():
        (config / "workflows" / name).write_text(text)
    return config


async def test_a_host_runs_workflows_from_its_settings_dir(tmp_path: Path) -> None:
    import hashlib

    config = _settings(tmp_path, {"digest.toml": HASH_THEN_ENCODE})
    async with Host(config, state_dir=tmp_path / "state", watch=False) as host:
        engine = engine_for(host.lifecycle)
        assert "digest" in engine.workflows()
        result = await engine.run("digest", {"text": "hello"}, run_id="r-1")
        assert result.ok, result.error
        assert result.outputs["hash"] == {"digest": hashlib.sha256(b"hello").hexdigest()}
        assert isinstance(result.outputs["pack"]["data"], str)  # base64 text, JSON-clean
        explained = host.resolver.explain("workflow", "digest").as_dict()
        assert explained["selected"] == "settings"
    assert (tmp_path / "state" / "workflows.sqlite").exists()  # the default durable store


async def test_an_invalid_workflow_file_stops_the_host_in_one_line(tmp_path: Path) -> None:
    bad = HASH_THEN_ENCODE.replace('needs = ["hash"]', 'needs = ["nosuch"]')
    config = _settings(tmp_path, {"digest.toml": bad})
    with pytest.raises(WorkflowDefinitionError) as info:
        async with Host(config, state_dir=tmp_path / "state", watch=False):
            pass
    assert "needs 'nosuch', which is not a node" in str(info.value)
    assert "\n" not in str(info.value)


async def test_a_host_recovers_an_interrupted_run_at_start(tmp_path: Path) -> None:
    """A run left "running" by a dead executor is resumed by the next host, in the background."""
    from oneiric.runtime import SQLiteCheckpointStore
    from oneiric.runtime._definitions import load_workflow_files

    config = _settings(tmp_path, {"digest.toml": HASH_THEN_ENCODE})
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    # what a killed executor leaves behind: a run "running", a node started, never finished
    workflow = load_workflow_files(config)["digest"]
    store = SQLiteCheckpointStore(state / "workflows.sqlite")
    record = RunRecord("interrupted", "digest", 1, workflow.definition_hash(),
                       {"text": "x"}, "running", 1.0, 1.0)
    store.create_run(record, workflow.order)
    assert store.node_started("interrupted", "hash", 1)
    store.close()
    async with Host(config, state_dir=state, watch=False) as host:
        engine = engine_for(host.lifecycle)

        def finished() -> bool:
            return engine.status("interrupted").status == "succeeded"

        await apoll_until(finished, message="the interrupted run recovered by the host")
        done = engine.status("interrupted")
        assert done.nodes["hash"].attempts == 2  # the in-flight node ran exactly once more
        assert engine.store.get_run("interrupted").recoveries == 1  # type: ignore[union-attr]
