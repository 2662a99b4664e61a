"""``oneiric workflow list|plan|run|resume|cancel|runs|show``: click commands for the CLI.

They run on the ``oneiric`` command's resolver (plugins, settings - whose
``workflows/`` files become definitions -, remote last-good, ``--app``) and
the state dir's SQLite checkpoint store, so a run this process started and
another process left behind (killed, interrupted) is resumed here with
``resume``, and ``cancel`` reaches an executor in another process through the
store.  Runs execute *in this process*.

Exit codes: 0 the run succeeded (or the listing worked), 1 the run did not
succeed (failed, cancelled, dead), 3 unknown workflow or run, 4 invalid
definition or input, 5 the checkpoint file is unavailable, 6 refused (the
run is being executed elsewhere, its definition changed, it is dead).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import click

from ._runs import RUN_STATUSES

__all__ = ["workflow"]


class _Refused(Exception):
    """A workflow error nobody classified, shown by the CLI as a refusal (exit 6)."""

    exit_code = 6  # oneiric.cli.EXIT_REFUSED (core honours a foreign integer exit_code)


def _engine() -> Any:
    from oneiric.cli import current_context
    from oneiric.lifecycle import LifecycleConfig, LifecycleManager

    from ._host import engine_for

    ctx = current_context()
    manager = LifecycleManager(
        ctx.resolver, settings=ctx.settings,
        config=LifecycleConfig(grace_period=0, health_interval=0),
        state_dir=ctx.get("state_dir"), write_status=False,
    )
    return engine_for(manager, state_dir=ctx.get("state_dir"))


def _call(work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(engine)`` on a fresh engine; close the store and the lifecycle after.

    A ``WorkflowError`` nobody classified (a dead run, a run id of another
    workflow) is a refusal here: the command was understood and declined.
    """
    from ._errors import WorkflowError

    engine = _engine()

    async def closing() -> Any:
        try:
            return await work(engine)
        finally:
            await engine.aclose()
            await engine.lifecycle.shutdown()

    try:
        return asyncio.run(closing())
    except WorkflowError as exc:
        if getattr(exc, "category", "unexpected") != "unexpected":
            raise
        raise _Refused(str(exc)) from None


def _as_json(flag: bool) -> bool:
    from oneiric.cli import current_context

    return flag or current_context().json


def _print(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def _result(result: Any, as_json: bool) -> None:
    """Print a ``RunResult``; exit 1 unless it succeeded."""
    if _as_json(as_json):
        _print(result.as_dict())
    else:
        click.echo(f"run {result.run_id} (workflow {result.workflow_id}): {result.status}"
                   + (f": {result.error}" if result.error and not result.ok else ""))
        width = max((len(n) for n in result.nodes), default=0)
        for node_id, state in result.nodes.items():
            error = f"  {state.error}" if state.error else ""
            click.echo(f"  {node_id:<{width}}  {state.status:<9} x{state.attempts}{error}")
    if not result.ok:
        sys.exit(1)


@click.group("workflow")
def workflow() -> None:
    """Workflows: list and plan definitions; run, resume, cancel and inspect runs."""


@workflow.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Every workflow id with its version, nodes and provider; invalid ones with their error."""

    async def listing(engine: Any) -> list[dict[str, Any]]:
        from oneiric.core import ConfigError

        rows = []
        for workflow_id in engine.workflows():
            row: dict[str, Any] = {"id": workflow_id, "version": None, "nodes": None,
                                   "provider": "code", "error": None}
            if workflow_id in engine.lifecycle.resolver.keys("workflow"):
                row["provider"] = engine.lifecycle.resolver.resolve(
                    "workflow", workflow_id).provider
            try:
                found = engine.get(workflow_id)
                found.check_actions(engine.lifecycle.resolver.keys("action"))
            except ConfigError as exc:
                row["error"] = str(exc)
            else:
                row["version"], row["nodes"] = found.version, len(found.nodes)
            rows.append(row)
        return rows

    rows = _call(listing)
    if _as_json(as_json):
        _print({"workflows": rows})
        return
    if not rows:
        click.echo("no workflows are defined (add workflows/<id>.toml to the settings dir)")
    for row in rows:
        if row["error"]:
            click.echo(f"{row['id']} ({row['provider']}): invalid: {row['error']}", err=True)
        else:
            click.echo(f"{row['id']} v{row['version']} ({row['provider']}) {row['nodes']} nodes")


@workflow.command("plan")
@click.argument("workflow_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid"]), default="text",
              show_default=True, help="Text, JSON or a Mermaid flowchart.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
def plan(workflow_id: str, fmt: str, as_json: bool) -> None:
    """The order, levels and critical path of workflow ID, validated (action keys too)."""

    async def planning(engine: Any) -> Any:
        found = engine.get(workflow_id)
        found.check_actions(engine.lifecycle.resolver.keys("action"))
        return engine.plan(workflow_id)

    result = _call(planning)
    if _as_json(as_json) or fmt == "json":
        _print(result.as_dict())
    elif fmt == "mermaid":
        click.echo(result.as_mermaid())
    else:
        click.echo(result.as_text())


@workflow.command("run")
@click.argument("workflow_id", metavar="ID")
@click.option("--input", "input_text", default="null", show_default=True,
              help="The run's input: JSON, @file, or @- for stdin.")
@click.option("--run-id", default=None,
              help="The run id (the idempotency key: an existing run is returned or resumed).")
@click.option("--json", "as_json", is_flag=True, help="The run result as JSON.")
def run(workflow_id: str, input_text: str, run_id: str | None, as_json: bool) -> None:
    """Run workflow ID here to the end; exit 1 unless it succeeded."""
    from oneiric.cli import read_json_option

    value = read_json_option(input_text, "--input")
    _result(_call(lambda engine: engine.run(workflow_id, value, run_id=run_id)), as_json)


@workflow.command("resume")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--force", is_flag=True,
              help="Resume on a changed definition (its version must be higher).")
@click.option("--json", "as_json", is_flag=True, help="The run result as JSON.")
def resume(run_id: str, force: bool, as_json: bool) -> None:
    """Re-run the failed, skipped and in-flight nodes of RUN_ID here; never a finished one."""
    _result(_call(lambda engine: engine.resume(run_id, force=force)), as_json)


@workflow.command("cancel")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--json", "as_json", is_flag=True, help="The run's state as JSON.")
def cancel(run_id: str, as_json: bool) -> None:
    """Cancel RUN_ID: its executor (in any process) stops its nodes; pending ones never start."""

    async def cancelling(engine: Any) -> Any:
        result = await engine.cancel(run_id)
        if result.status == "running":  # an executor elsewhere reads the request soon
            for _ in range(200):
                await asyncio.sleep(0.05)
                result = engine.status(run_id)
                if result.status != "running" or not engine.store.executor_alive(run_id):
                    break
        return result

    result = _call(cancelling)
    if _as_json(as_json):
        _print(result.as_dict())
    else:
        pending = " (requested; its executor stops it)" if result.status == "running" else ""
        click.echo(f"run {result.run_id}: {result.status}{pending}")


@workflow.command("runs")
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only these.")
@click.option("--workflow", "workflow_id", default=None, help="Only runs of this workflow.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs(status: str | None, workflow_id: str | None, limit: int | None, as_json: bool) -> None:
    """Runs in the state dir's checkpoint store, newest first."""

    async def listing(engine: Any) -> Any:
        return engine.runs(status=status, workflow_id=workflow_id, limit=limit)

    records = _call(listing)
    if _as_json(as_json):
        _print({"runs": [r.as_dict() for r in records]})
        return
    if not records:
        click.echo("no workflow runs")
    for r in records:
        data = r.as_dict()
        error = f"  {r.error}" if r.error else ""
        click.echo(f"{r.run_id}  {r.workflow_id} v{r.version}  {r.status}  "
                   f"{data['created_at']}{error}")


@workflow.command("show")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--json", "as_json", is_flag=True, help="The run and its nodes as JSON.")
def show(run_id: str, as_json: bool) -> None:
    """One run: its record and every node's state, attempts, output or error."""

    async def showing(engine: Any) -> Any:
        return engine.store.get_run(run_id), engine.status(run_id)

    record, result = _call(showing)
    if _as_json(as_json):
        _print(result.as_dict() | {"run": record.as_dict()})
        return
    data = record.as_dict()
    click.echo(f"run {record.run_id} (workflow {record.workflow_id} v{record.version}): "
               f"{record.status}")
    click.echo(f"  created {data['created_at']}, updated {data['updated_at']}, "
               f"recoveries {record.recoveries}" + (f", error: {record.error}"
                                                     if record.error else ""))
    width = max((len(n) for n in result.nodes), default=0)
    for node_id, state in result.nodes.items():
        detail = (json.dumps(state.output, sort_keys=True)[:120] if state.status == "succeeded"
                  else state.error or "")
        click.echo(f"  {node_id:<{width}}  {state.status:<9} x{state.attempts}  {detail}")
