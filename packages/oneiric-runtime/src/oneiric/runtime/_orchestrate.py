"""``oneiric orchestrate``: a ``Host`` with every installed service, behind an HTTP endpoint.

The order (ARCHITECTURE §11 "Orchestrator"):

1. Before anything loads: the listening address is parsed, the token read
   (``--token-file``, mode 0600, or ``ONEIRIC_TOKEN``) and a non-loopback
   address without one refused (exit 6).  The profile comes from
   ``--profile`` or ``ONEIRIC_PROFILE``.
2. The endpoint listens first, so ``/healthz`` answers while the host starts
   (``/readyz`` says ``starting``: a slow start is not a dead process).
3. The ``Host`` starts: plugins, settings, the ``[remote]`` sources' last-good
   manifests, ``--app``, ``[host] activate``, the watcher (not in the
   serverless profile) and every ``oneiric_host_services`` service (event
   consumers, workflow workers, the scheduler...).  Only what services and
   ``[host] activate`` ask is activated; kits and handlers activate lazily.
4. SIGTERM or SIGINT: the listener closes (no new requests), in-flight leases
   get ``--drain-timeout`` to end (a second signal skips the wait), then the
   host stops: services exit in reverse - event consumers stop, a workflow
   executor that is cancelled checkpoints its in-flight nodes as
   ``cancelled``, so ``oneiric workflow resume`` / ``WorkflowEngine.resume``
   completes the run later - and the lifecycle cleans up.  Exit 0.

The serverless profile: no settings watcher and no periodic health probes
(``--health-interval`` turns probes back on); remote manifests come from what
is on local disk (the last-good cache), never the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import click

from oneiric.core import OneiricError
from oneiric.core.helpers import PROFILES

from ._bind import DEFAULT_HTTP, Bind, check_bind, load_token, parse_http

__all__ = ["orchestrate"]


class ShutdownTimeout(OneiricError):
    """The host did not stop within its bound after the drain."""

    category = "unavailable"


def _seconds(text: str, what: str) -> float:
    """A number of seconds or a duration (``20s``, ``500ms``); ``BadParameter`` otherwise."""
    from oneiric.core import ConfigError
    from oneiric.core.helpers import parse_duration

    try:
        value = float(text)
    except ValueError:
        try:
            return parse_duration(text, what=what)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    if not value >= 0 or value == float("inf"):
        raise click.BadParameter(f"{what} must be a finite number of seconds >= 0")
    return value


@click.command("orchestrate")
@click.option("--profile", type=click.Choice(PROFILES), default=None,
              help="default, or serverless: no watcher, no periodic probes, local "
                   "manifests only (env ONEIRIC_PROFILE).")
@click.option("--http", "http", metavar="HOST:PORT", default=None,
              help=f"Listen on HOST:PORT (default {DEFAULT_HTTP}); any non-loopback "
                   "address requires a token.")
@click.option("--unix", "unix", metavar="PATH", default=None,
              help="Listen on a Unix socket (mode 0600) instead of TCP.")
@click.option("--token-file", "token_file", metavar="FILE", default=None,
              help="File (mode 0600) holding the bearer token (else env ONEIRIC_TOKEN).")
@click.option("--drain-timeout", "drain_timeout", metavar="DURATION", default="20s",
              show_default=True, help="How long in-flight work may take to finish on SIGTERM.")
@click.option("--health-interval", "health_interval", metavar="SECONDS", default=None,
              help="Period of health probes (default: [lifecycle] health_interval, 15 s; "
                   "off in the serverless profile).")
@click.option("--json", "as_json", is_flag=True, help="Announce the address as JSON on stderr.")
def orchestrate(profile: str | None, http: str | None, unix: str | None,
                token_file: str | None, drain_timeout: str, health_interval: str | None,
                as_json: bool) -> int:
    """Run a Host with every installed service plus /healthz, /readyz, /metrics, /status."""
    from oneiric.cli import current_context
    from oneiric.core import ConfigError
    from oneiric.core.helpers import profile_from_environment

    if http is not None and unix is not None:
        raise click.UsageError("--http and --unix exclude each other; pass one")
    if unix is not None:
        bind = Bind(path=Path(unix).expanduser())
    else:
        try:
            bind = parse_http(http or DEFAULT_HTTP)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--http") from None
    token = load_token(token_file)
    check_bind(bind, token)
    chosen = profile or profile_from_environment()
    drain = _seconds(drain_timeout, "--drain-timeout")
    interval = _seconds(health_interval, "--health-interval") if health_interval else None
    ctx = current_context()
    app = None
    if ctx["app"]:
        from oneiric.cli._context import load_app  # the CLI's --app import (cwd on the path)

        app = load_app(ctx["app"])
    options = _Options(bind, token, chosen, drain, interval, ctx["config_dir"],
                       ctx["state_dir"], app, as_json or ctx.json)
    return asyncio.run(_Orchestrator(options).run())


class _Options:
    def __init__(self, bind: Bind, token: str | None, profile: str, drain: float,
                 health_interval: float | None, config: str | None, state_dir: str | None,
                 app: Any, as_json: bool) -> None:
        self.bind = bind
        self.token = token
        self.profile = profile
        self.drain = drain
        self.health_interval = health_interval
        self.config = config
        self.state_dir = state_dir
        self.app = app
        self.as_json = as_json


class _Orchestrator:
    """One run of the endpoint and the host, from listening to exit."""

    def __init__(self, options: _Options) -> None:
        self.options = options
        self.host: Any = None
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.signals = 0
        self._starting: asyncio.Task[Any] | None = None

    def _on_signal(self) -> None:
        self.signals += 1
        self.stop.set()
        if self.signals > 1:
            self.force.set()
        elif self._starting is not None:
            self._starting.cancel()

    def _state_path(self) -> Path | None:
        from oneiric.core import state_dir

        if self.host is None:
            return None
        return state_dir(self.host.state_dir, create=False)

    async def run(self) -> int:
        from ._http import HttpEndpoint
        from ._metrics import StateCollector, exposition
        from ._probes import Routes

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        collector = StateCollector(
            lambda: self.host if routes.phase == "serving" else None, self._state_path)
        routes = Routes(token=self.options.token, status=lambda: self.host.lifecycle.status(),
                        metrics=exposition(collector))
        endpoint = HttpEndpoint(routes)
        try:
            address = await self._listen(endpoint)
            self._announce(address)
            started = await self._start()
            if not started:
                return 0
            routes.phase = "serving"
            await self.stop.wait()
            routes.phase = "stopping"
            await endpoint.close()  # stop intake: no new requests from here on
            await self._drain()
            await self._stop_host()
            return 0
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await endpoint.close()
            collector.close()
            if self.host is not None:  # an error after the start: still clean up
                host, self.host = self.host, None
                with contextlib.suppress(Exception):
                    await host.__aexit__(None, None, None)

    async def _listen(self, endpoint: Any) -> str:
        bind = self.options.bind
        try:
            if bind.path is not None:
                return str(await endpoint.start_unix(bind.path))
            assert bind.host is not None
            return str(await endpoint.start_tcp(bind.host, bind.port))
        except OSError as exc:
            from oneiric.core import NotActiveError

            raise NotActiveError(f"cannot listen on {bind}: {exc.strerror or exc}; pick "
                                 "another address or stop what holds it") from None

    def _announce(self, address: str) -> None:
        import json

        fields = {"event": "listening", "address": address, "profile": self.options.profile,
                  "token": self.options.token is not None}
        if self.options.as_json:
            click.echo(json.dumps(fields, sort_keys=True), err=True)
        else:
            click.echo(f"oneiric orchestrate: listening on {address} "
                       f"(profile {self.options.profile})", err=True)

    async def _start(self) -> bool:
        """Enter the host; False when a signal came first (the start is undone)."""
        from oneiric.lifecycle import Host

        options = self.options
        kwargs: dict[str, Any] = {}
        if options.health_interval is not None:
            kwargs["health_interval"] = options.health_interval
        elif options.profile == "serverless":
            kwargs["health_interval"] = 0.0
        host = Host(options.config, state_dir=options.state_dir, profile=options.profile,
                    watch=options.profile == "default", app=options.app, **kwargs)
        # Entered in this task (services may bind context to it); a first signal
        # while starting cancels it, and Host undoes a start that did not finish.
        self._starting = asyncio.current_task()
        try:
            await host.__aenter__()
        except asyncio.CancelledError:
            if not self.stop.is_set():
                raise
            assert self._starting is not None
            self._starting.uncancel()
            return False
        finally:
            self._starting = None
        self.host = host
        return True

    def _in_flight(self) -> int:
        document = self.host.lifecycle.status()
        return sum(int(key["activity"]["in_flight"]) for key in document["keys"])

    async def _drain(self) -> None:
        """Wait until no lease is held, ``--drain-timeout`` at most (a second signal: now)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.drain
        while not self.force.is_set() and self._in_flight() > 0:
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.force.wait(), min(0.05, left))

    async def _stop_host(self) -> None:
        """Services exit in reverse (cancelled work checkpoints), then the lifecycle."""
        host, self.host = self.host, None
        bound = max(self.options.drain, 5.0)
        try:
            await asyncio.wait_for(host.__aexit__(None, None, None), bound)
        except TimeoutError:
            raise ShutdownTimeout(
                f"the host did not stop within {bound:g} s after the drain; in-flight "
                "workflow nodes are re-run by the next resume") from None
