"""``RetryPolicy``: the waits it yields, what it retries, and the errors for bad values."""

from __future__ import annotations

import dataclasses

import pytest

from oneiric.core import ConfigError, RetryPolicy


def test_delays_follow_the_contract_formula_without_jitter() -> None:
    policy = RetryPolicy(max_attempts=6, initial=0.5, multiplier=2.0, max_interval=3.0, jitter=0)
    assert list(policy.delays()) == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_jitter_scales_each_wait_into_the_documented_band() -> None:
    policy = RetryPolicy(max_attempts=4, initial=1.0, multiplier=2.0, jitter=0.25)
    assert list(policy.delays(rng=lambda: 0.0)) == [1.0, 2.0, 4.0]
    assert list(policy.delays(rng=lambda: 1.0)) == [0.75, 1.5, 3.0]


def test_one_attempt_means_no_waits() -> None:
    assert list(RetryPolicy(max_attempts=1).delays()) == []


def test_should_retry_honours_retry_on_and_non_retryable() -> None:
    policy = RetryPolicy(retry_on=(OSError,), non_retryable=(FileNotFoundError,))
    assert policy.should_retry(ConnectionError())
    assert not policy.should_retry(FileNotFoundError())
    assert not policy.should_retry(ValueError())


def test_policy_is_frozen_and_hashable() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]
    assert hash(policy) == hash(RetryPolicy())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"max_attempts": 0}, "retry.max_attempts must be >= 1"),
        ({"max_attempts": 2.5}, "retry.max_attempts must be an integer"),
        ({"max_attempts": True}, "retry.max_attempts must be an integer"),
        ({"initial": -1}, "retry.initial must be >= 0"),
        ({"multiplier": 0.5}, "retry.multiplier must be >= 1"),
        ({"max_interval": "soon"}, "retry.max_interval must be a number"),
        ({"jitter": 1.5}, "retry.jitter must be between 0.0 and 1.0"),
        ({"jitter": float("nan")}, "retry.jitter must be a number"),
        ({"retry_on": (ValueError, 3)}, "retry.retry_on entry 3 is not an exception class"),
        ({"retry_on": 7}, "retry.retry_on must be a tuple of exception classes"),
        ({"non_retryable": ("json:loads",)}, "is not an exception class"),
    ],
)
def test_bad_values_fail_in_one_line_naming_the_field(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_from_mapping_imports_exception_names_and_rejects_unknown_fields() -> None:
    policy = RetryPolicy.from_mapping(
        {"max_attempts": 2, "retry_on": ["builtins:TimeoutError"], "jitter": 0}
    )
    assert policy.retry_on == (TimeoutError,)
    assert policy.as_dict()["retry_on"] == ["builtins:TimeoutError"]
    with pytest.raises(ConfigError, match=r"workflow.n1.retry: unknown field 'attempts'"):
        RetryPolicy.from_mapping({"attempts": 2}, where="workflow.n1.retry")
    with pytest.raises(ConfigError, match=r"^handler.retry.initial must be >= 0"):
        RetryPolicy.from_mapping({"initial": -2}, where="handler.retry")
    with pytest.raises(ConfigError, match="no_such_module_xyz"):
        RetryPolicy.from_mapping({"retry_on": ["no_such_module_xyz:Boom"]})


def test_importing_core_does_not_import_the_retry_module() -> None:
    import subprocess
    import sys

    code = "import sys, oneiric.core; print('oneiric.core._retry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
