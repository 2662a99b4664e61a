"""The fuzz runner: each ``test_fuzz_*`` spends a time budget on one Hypothesis property.

Why a runner instead of a plain ``@given`` test: Hypothesis bounds a run by a
number of examples, CI wants a bound in seconds.  ``fuzz(prop, strategy)``
first runs the property's ``@example`` regressions once, then calls a fresh
``given(strategy)(prop)`` in batches, each with a new random seed, until the
budget is spent.  A failure stops the loop and is shrunk by Hypothesis as usual.

Budget: ``ONEIRIC_FUZZ_SECONDS`` per parser (per ``test_fuzz_*.py`` module),
split evenly between the module's ``test_fuzz_*`` functions.  The default (3 s)
keeps a developer's plain ``pytest fuzz`` quick; ``nox -s fuzz`` sets 60.

Per input: ``deadline=1000 ms`` is the acceptance bound "no input takes more
than 1 s" (Hypothesis re-runs a slow input to confirm it before failing).
``database=None``: CI must not depend on, or write, a local example database;
the regressions live in the ``@example`` decorators.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

DEFAULT_SECONDS = 3.0
HARD_LIMIT = 3.0  # seconds; see _watchdog
BATCH = 40  # examples per Hypothesis call; small so the budget is honoured closely
_results: list[tuple[str, int, float]] = []


def budget_seconds() -> float:
    raw = os.environ.get("ONEIRIC_FUZZ_SECONDS", "")
    try:
        return float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        raise pytest.UsageError(f"ONEIRIC_FUZZ_SECONDS={raw!r} is not a number of seconds")


def _settings(phases: tuple[Phase, ...], max_examples: int) -> settings:
    return settings(
        phases=phases,
        max_examples=max_examples,
        deadline=timedelta(milliseconds=1000),
        database=None,
        derandomize=False,
        print_blob=True,
        # Inputs are deliberately big (zip bombs, deep nesting, 1 MiB envelopes):
        # generating them is slow and large by design, which is what these
        # health checks would complain about.  The deadline still bounds the
        # time the *parser* spends on each input.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


class InputTooSlow(Exception):
    """Raised inside a parser that is still running ``HARD_LIMIT`` seconds into one input."""


@contextlib.contextmanager
def _watchdog() -> Iterator[None]:
    """Interrupt one input after ``HARD_LIMIT`` s.

    Hypothesis' deadline is only checked when an input *returns*; an alias bomb
    may not return for hours.  SIGALRM raises in the main thread, where the
    parsers run, so such an input fails (and is shrunk) instead of hanging CI.
    """
    def expired(signum: int, frame: Any) -> None:
        raise InputTooSlow(f"one input ran over {HARD_LIMIT} s (the bound is 1 s)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, HARD_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Fuzzer:
    """Runs properties for a share of the module's budget and counts examples."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds

    def __call__(self, prop: Callable[..., None], *strategies: st.SearchStrategy[Any]) -> int:
        count = 0

        # wraps() keeps prop's signature and its @example regressions for given().
        @functools.wraps(prop)
        def counted(*args: Any, **kwargs: Any) -> None:
            nonlocal count
            count += 1
            with _watchdog():
                prop(*args, **kwargs)

        started = time.monotonic()
        failures: dict[str, str] = {}
        self._run(_settings((Phase.explicit,), 1)(given(*strategies)(counted)), failures)
        generate = (Phase.generate, Phase.target, Phase.shrink)
        while time.monotonic() - started < self.seconds:
            self._run(_settings(generate, BATCH)(given(*strategies)(counted)), failures)
        elapsed = time.monotonic() - started
        _results.append((self.name, count, elapsed))
        if failures:
            pytest.fail(
                f"{len(failures)} distinct failure(s) in {count} examples:\n\n"
                + "\n\n".join(failures.values()),
                pytrace=False,
            )
        return count

    @staticmethod
    def _run(test: Callable[[], None], failures: dict[str, str]) -> None:
        """Run one Hypothesis call; record each distinct failure instead of stopping.

        Fuzzing goes on after a failure so that one known bug does not hide the
        others; a failure is "distinct" by exception type and the line that raised.
        """
        try:
            test()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # every failure is reported below
            for leaf in _leaves(exc):
                failures.setdefault(_key(leaf), _describe(leaf))


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _key(exc: BaseException) -> str:
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__ and "/hypothesis/" not in f.filename
    ] or traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    where = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {where}"


def _clip(text: str, limit: int = 800) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _describe(exc: BaseException) -> str:
    """Type, message, the falsifying example Hypothesis attached, the innermost frames."""
    notes = "\n".join(_clip(n) for n in getattr(exc, "__notes__", []))
    frames = "".join(traceback.format_tb(exc.__traceback__)[-4:])
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"=== {_key(exc)}: {message[:300]}\n{notes}\n{frames}"


@pytest.fixture
def fuzz(request: pytest.FixtureRequest, record_testsuite_property: Any) -> Iterator[Fuzzer]:
    module = request.node.module
    targets = [n for n in dir(module) if n.startswith("test_fuzz_")]
    fuzzer = Fuzzer(request.node.nodeid, budget_seconds() / max(len(targets), 1))
    before = len(_results)
    yield fuzzer
    for name, count, elapsed in _results[before:]:  # in the JUnit file, per test
        record_testsuite_property(f"examples {name}", f"{count} in {elapsed:.1f} s")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _results:
        return
    terminalreporter.section("fuzz: examples run")
    for name, count, elapsed in _results:
        rate = count / elapsed if elapsed else 0.0
        terminalreporter.write_line(
            f"{name}: {count} examples in {elapsed:.1f} s ({rate:.0f}/s)"
        )
