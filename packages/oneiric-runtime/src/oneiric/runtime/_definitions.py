"""Where workflow definitions come from: code, the resolver (domain ``workflow``), files.

A candidate of domain ``workflow`` (key = workflow id) has a factory that
returns a ``Workflow`` or a mapping of the file shape - from a plugin, a
remote manifest component or the settings dir's ``workflows/<id>.toml|yaml|
json`` (registered as provider ``settings``, source ``settings:<config dir>``).
The winner is validated exactly like a ``Workflow(...)``.  Selections, explain
and swap therefore work for workflow definitions too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oneiric.core import Candidate, ConfigError, Resolver, Settings, resolve_factory
from oneiric.core.helpers import load_document, one_line

from ._errors import WorkflowDefinitionError
from ._sections import Registered, register_tables, settings_source
from ._workflow import Workflow

__all__ = ["DOMAIN", "from_candidate", "load_workflow_files", "sync_workflow_files"]

#: The resolver domain of workflow definitions (key = workflow id).
DOMAIN = "workflow"
_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def from_candidate(candidate: Candidate) -> Workflow:
    """Build and validate the ``Workflow`` a ``workflow`` candidate's factory describes."""
    where = f"workflow {candidate.key!r} ({candidate.provider}, {candidate.source})"
    try:
        value = resolve_factory(candidate)()
    except ConfigError:
        raise
    except Exception as exc:
        raise WorkflowDefinitionError(f"{where}: factory failed: {one_line(exc)}") from None
    if isinstance(value, Workflow):
        workflow = value
    elif isinstance(value, Mapping):
        data = dict(value)
        data.setdefault("id", candidate.key)
        workflow = Workflow.from_mapping(data, where=where)
    else:
        raise WorkflowDefinitionError(
            f"{where}: factory returned {type(value).__name__}; return a Workflow or a mapping "
            "with id, version and nodes"
        )
    if workflow.id != candidate.key:
        raise WorkflowDefinitionError(
            f"{where}: defines workflow {workflow.id!r}; the key and the id must match"
        )
    return workflow


def load_workflow_files(config_dir: Path) -> dict[str, Workflow]:
    """``workflows/<id>.toml|yaml|json`` of a settings dir, validated; id defaults to the stem."""
    folder = config_dir / "workflows"
    found: dict[str, Workflow] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in _SUFFIXES or path.name.startswith("."):
            continue
        data = load_document(path, "workflow")
        if not isinstance(data, Mapping):
            raise WorkflowDefinitionError(f"{path}: a workflow file holds one table (id, nodes)")
        data = dict(data)
        data.setdefault("id", path.stem)
        if data["id"] != path.stem:
            raise WorkflowDefinitionError(
                f"{path}: defines workflow {data['id']!r}; name the file {data['id']}{path.suffix}"
            )
        if path.stem in found:
            raise WorkflowDefinitionError(
                f"{path}: workflow {path.stem!r} is defined by two files; keep one"
            )
        found[path.stem] = Workflow.from_mapping(data, where=str(path))
    return found


def sync_workflow_files(resolver: Resolver, settings: Settings | None) -> list[str]:
    """Register each ``workflows/`` file as candidate ``workflow/<id>/settings`` (idempotent).

    Every file is validated first, so an invalid one registers nothing; a
    reload replaces the previous files' workflows and unregisters removed ones.
    Called by ``oneiric_settings_applied`` (a host's, the CLI's, a reload's
    resolver) and by ``engine_for``.  Returns the workflow ids.
    """
    state: Registered = resolver.extension("oneiric.runtime.workflow-files", Registered)
    config_dir = settings.config_dir if settings is not None else None
    if config_dir is None or state.settings is settings:
        return list(state.keys)
    workflows = load_workflow_files(config_dir)
    source = settings_source(config_dir)
    candidates = {
        workflow_id: Candidate(DOMAIN, workflow_id, "settings", _constant(workflow),
                               source=source,
                               description=f"workflows/{workflow_id} in the settings dir")
        for workflow_id, workflow in workflows.items()
    }
    register_tables(resolver, state, settings, DOMAIN, candidates, workflows)
    return list(workflows)


def _constant(workflow: Workflow) -> Any:
    def factory() -> Workflow:
        return workflow

    return factory
