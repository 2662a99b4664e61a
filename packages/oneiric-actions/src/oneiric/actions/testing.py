"""The action conformance suite: an opt-in pytest plugin for any action provider.

A third party proves its action honours the protocol (ARCHITECTURE §10) by
running these tests against the real thing, through a real resolver,
``LifecycleManager`` and ``Actions``, exactly as applications invoke it.
Nothing is auto-loaded (no ``pytest11`` entry point); a test module opts in::

    import pytest
    from oneiric.actions.testing import ActionConformance

    pytest_plugins = ["oneiric.actions.testing"]

    class TestMyAction(ActionConformance):
        @pytest.fixture
        def action_factory(self):
            return lambda: MyAction(MySettings(level=3))   # a fresh provider instance

        valid_payloads = ({"data": "hello"}, {"data": ""})
        invalid_payloads = (None, {"data": 3}, {"nosuch": 1})

Fixtures and attributes a subclass provides
-------------------------------------------
``action_factory`` (fixture, required)
    A callable with no arguments returning a new provider instance (or an
    awaitable of one).  The suite registers it as the only candidate of key
    ``conformance.action``, provider ``under-test``.
``valid_payloads`` (required)
    Payloads that must succeed; each result must be JSON-compatible (bytes
    allowed, rendered ``{"base64": ...}``) and survive a JSON round trip.
``invalid_payloads`` (default: none)
    Payloads that must raise ``ActionInputError`` - a typed, one-line error
    with a ``path`` - never a raw ``ValueError``/``KeyError``/library error.
``slow_payload`` (default ``None``: the timeout test skips)
    A payload that keeps an *async* action busy for at least a second (e.g. a
    request to a server that does not answer).  The suite invokes it with a
    short timeout and expects ``ActionTimeout``, then cancels it and expects
    the cancellation to propagate.
``deterministic`` (default ``False``)
    True when equal payloads give equal results; the suite then also checks
    that concurrent invocations agree with sequential ones.

Payloads that depend on a fixture (the URL of a server the test starts): set
them on ``self`` inside ``action_factory`` - pytest binds a fixture defined in
the class to the test's instance, and the tests read ``self.valid_payloads``
(etc.) after the fixtures ran::

    @pytest.fixture
    def action_factory(self, server_url):
        self.valid_payloads = [{"url": f"{server_url}/ok"}]
        self.slow_payload = {"url": f"{server_url}/hang"}
        return lambda: MyFetch(MySettings(allowed_hosts=["127.0.0.1"]))

(``tests/test_conformance_kits.py`` runs every first-party provider this way.)

What it never does: assert on timing, or call anything but the public API.
Async tests run on asyncio through anyio's pytest plugin (the ``testing``
extra installs pytest and anyio).

PYTEST_DONT_REWRITE: the suite states expected and actual values itself.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

import pytest

from oneiric.core import Candidate, Resolver
from oneiric.lifecycle import LifecycleConfig, LifecycleManager

from ._errors import ActionInputError, ActionTimeout
from ._invoke import Actions
from ._json import find_non_json, from_json, to_json
from ._spec import ActionSpec

__all__ = ["ActionConformance"]

KEY = "conformance.action"
PROVIDER = "under-test"


def _check(condition: bool, message: str) -> None:
    if not condition:
        pytest.fail(message, pytrace=False)


class ActionConformance:
    """Subclass in a test module and provide ``action_factory`` (see the module docs)."""

    valid_payloads: ClassVar[Sequence[Any]] = ()
    invalid_payloads: ClassVar[Sequence[Any]] = ()
    slow_payload: ClassVar[Any] = None
    deterministic: ClassVar[bool] = False
    concurrency: ClassVar[int] = 8

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    async def actions(self, action_factory: Callable[[], Any]) -> AsyncIterator[Actions]:
        async def build() -> Any:
            made = action_factory()
            return await made if inspect.isawaitable(made) else made

        resolver = Resolver()
        resolver.register(Candidate("action", KEY, PROVIDER, build))
        manager = LifecycleManager(
            resolver, activity_store=False, write_status=False,
            config=LifecycleConfig(grace_period=0, health_interval=0),
        )
        try:
            yield Actions(manager)
        finally:
            await manager.shutdown()

    # -------------------------------------------------------------- the spec

    @pytest.mark.anyio
    async def test_declares_an_action_spec(self, actions: Actions) -> None:
        await actions.lifecycle.activate("action", KEY)
        spec = getattr(type(actions.spec(KEY)), "__name__", "")
        _check(spec == "ActionSpec", f"the provider's spec is a {spec}, expected ActionSpec")
        raw = getattr(type(await actions.lifecycle.activate("action", KEY)), "spec", None)
        _check(isinstance(raw, ActionSpec),
               "the provider class declares no `spec = ActionSpec(...)` attribute")

    @pytest.mark.anyio
    async def test_has_an_invoke_method(self, actions: Actions) -> None:
        instance = await actions.lifecycle.activate("action", KEY)
        _check(callable(getattr(instance, "invoke", None)),
               "the provider has no invoke(payload, context) method")

    # --------------------------------------------------------------- outputs

    @pytest.mark.anyio
    async def test_valid_payloads_give_json_compatible_values(self, actions: Actions) -> None:
        _check(bool(self.valid_payloads), "set valid_payloads to at least one payload")
        for payload in self.valid_payloads:
            result = await actions.invoke(KEY, payload)
            _check(result.provider == PROVIDER, f"result names provider {result.provider!r}")
            bad = find_non_json(result.value)
            _check(bad is None, f"payload {payload!r}: value not JSON-compatible at {bad}")
            text = json.dumps(to_json(result.value))
            _check(from_json(json.loads(text)) == _normal(result.value),
                   f"payload {payload!r}: value does not survive a JSON round trip")

    @pytest.mark.anyio
    async def test_json_payloads_work_as_well_as_python_ones(self, actions: Actions) -> None:
        """What the CLI sends: each valid payload after a JSON round trip (bytes as base64)."""
        for payload in self.valid_payloads:
            wire = from_json(json.loads(json.dumps(to_json(payload))))
            await actions.invoke(KEY, wire)

    # ---------------------------------------------------------------- inputs

    @pytest.mark.anyio
    async def test_invalid_payloads_raise_typed_one_line_input_errors(
        self, actions: Actions
    ) -> None:
        for payload in self.invalid_payloads:
            try:
                await actions.invoke(KEY, payload)
            except ActionInputError as exc:
                _check("\n" not in str(exc), f"payload {payload!r}: multi-line error {exc!s}")
                _check(bool(str(exc)), f"payload {payload!r}: empty error message")
                _check(isinstance(exc.path, str), f"payload {payload!r}: error has no path")
            except Exception as exc:
                pytest.fail(
                    f"payload {payload!r} raised {type(exc).__name__}: {exc}; "
                    "expected ActionInputError", pytrace=False,
                )
            else:
                pytest.fail(f"payload {payload!r} was accepted; expected ActionInputError",
                            pytrace=False)

    # -------------------------------------------------- deadlines and cancel

    @pytest.mark.anyio
    async def test_honours_the_timeout(self, actions: Actions) -> None:
        if self.slow_payload is None:
            pytest.skip("no slow_payload: the provider has no slow path to time out")
        try:
            await actions.invoke(KEY, self.slow_payload, timeout=0.05)
        except ActionTimeout:
            pass
        else:
            pytest.fail("slow_payload finished within 0.05 s; expected ActionTimeout",
                        pytrace=False)

    @pytest.mark.anyio
    async def test_cancellation_propagates_and_releases_the_lease(
        self, actions: Actions
    ) -> None:
        payload = self.slow_payload if self.slow_payload is not None else self.valid_payloads[0]
        await actions.lifecycle.activate("action", KEY)
        task = asyncio.ensure_future(actions.invoke(KEY, payload))
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            pytest.fail(f"cancelling raised {type(exc).__name__}: {exc}", pytrace=False)
        (entry,) = [k for k in actions.lifecycle.status()["keys"] if k["key"] == KEY]
        left = entry["activity"]["in_flight"]
        _check(left == 0, f"{left} lease(s) still held after the cancelled invocation")

    # ------------------------------------------------------------ concurrency

    @pytest.mark.anyio
    async def test_concurrent_invocations_all_succeed(self, actions: Actions) -> None:
        payloads = [self.valid_payloads[i % len(self.valid_payloads)]
                    for i in range(self.concurrency)]
        results = await asyncio.gather(*(actions.invoke(KEY, p) for p in payloads))
        if self.deterministic:
            for payload, result in zip(payloads, results, strict=True):
                alone = await actions.invoke(KEY, payload)
                _check(_normal(alone.value) == _normal(result.value),
                       f"payload {payload!r}: concurrent and sequential results differ")


def _normal(value: Any) -> Any:
    """bytearray/memoryview as bytes, tuples as lists: what a JSON round trip gives back."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value
