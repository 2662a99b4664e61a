"""Lazy ``"module:attr"`` references: good ones import, bad ones fail in one line."""

from __future__ import annotations

import itertools
import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from oneiric.core import (
    Candidate,
    FactoryError,
    import_reference,
    resolve_factory,
    resolve_settings_model,
)

_counter = itertools.count()


@pytest.fixture
def make_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write a uniquely named importable module; returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(source: str) -> str:
        name = f"oneiric_test_loading{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        created.append(name)
        return name

    yield make
    for name in created:
        sys.modules.pop(name, None)


def assert_one_line(error: pytest.ExceptionInfo[BaseException], *fragments: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_good_references() -> None:
    assert import_reference("json:loads") is json.loads
    assert import_reference("json.decoder:JSONDecoder.decode") is json.decoder.JSONDecoder.decode
    assert import_reference("os.path:join") is __import__("os").path.join


def test_module_that_does_not_exist() -> None:
    with pytest.raises(FactoryError) as error:
        import_reference("oneiric_no_such_module.sub:attr", what="factory of adapter/cache/x")
    assert_one_line(
        error,
        "factory of adapter/cache/x",
        "'oneiric_no_such_module.sub:attr'",
        "no module named 'oneiric_no_such_module'",
        "install the distribution that provides it",
    )


def test_module_whose_dependency_is_missing(make_module: Callable[[str], str]) -> None:
    name = make_module("import oneiric_missing_dependency\n")
    with pytest.raises(FactoryError) as error:
        import_reference(f"{name}:thing")
    assert_one_line(error, f"module {name!r} needs 'oneiric_missing_dependency'", "install it")


def test_module_whose_import_raises(make_module: Callable[[str], str]) -> None:
    name = make_module("raise RuntimeError('settings were\\nnot there')\n")
    with pytest.raises(FactoryError) as error:
        import_reference(f"{name}:thing")
    assert_one_line(
        error,
        f"importing module {name!r} raised RuntimeError: settings were; not there",
        "fix that module",
    )
    assert isinstance(error.value.__cause__, RuntimeError)


def test_module_whose_import_raises_without_message(make_module: Callable[[str], str]) -> None:
    name = make_module("raise KeyError\n")
    with pytest.raises(FactoryError) as error:
        import_reference(f"{name}:thing")
    assert_one_line(error, "raised KeyError;")


@pytest.mark.parametrize(
    ("reference", "owner", "missing"),
    [
        ("json:no_such_function", "json", "no_such_function"),
        ("json:JSONDecoder.no_such_method", "json.JSONDecoder", "no_such_method"),
    ],
)
def test_missing_attribute(reference: str, owner: str, missing: str) -> None:
    with pytest.raises(FactoryError) as error:
        import_reference(reference)
    assert_one_line(error, f"{owner!r} has no attribute {missing!r}", "check the spelling")


@pytest.mark.parametrize(
    "reference",
    ["json", "json:", ":loads", "json:loads:x", "json loads", "1json:loads", "json:a..b", "", 42],
)
def test_malformed_references(reference: object) -> None:
    with pytest.raises(FactoryError) as error:
        import_reference(reference)  # type: ignore[arg-type]
    assert_one_line(error, f"invalid reference {reference!r}", "'package.module:attr'")


def test_resolve_factory() -> None:
    def build() -> str:
        return "built"

    assert resolve_factory(Candidate("adapter", "cache", "x", "json:loads")) is json.loads
    assert resolve_factory(Candidate("adapter", "cache", "x", build)) is build


def test_resolve_factory_not_callable() -> None:
    candidate = Candidate("adapter", "cache", "memory", "json.decoder:NaN")
    with pytest.raises(FactoryError) as error:
        resolve_factory(candidate)
    assert_one_line(
        error, "factory of adapter/cache/memory is a float, not callable", "class or function"
    )


def test_resolve_factory_import_error_names_the_candidate() -> None:
    candidate = Candidate("adapter", "cache", "redis", "oneiric_missing_redis:Redis")
    with pytest.raises(FactoryError) as error:
        resolve_factory(candidate)
    assert_one_line(error, "factory of adapter/cache/redis", "no module named")


def test_resolve_settings_model(make_module: Callable[[str], str]) -> None:
    name = make_module(
        """
        import pydantic

        class Model(pydantic.BaseModel):
            url: str

        not_a_model = dict
        """
    )
    module = sys.modules.get(name) or __import__(name)
    assert resolve_settings_model(Candidate("a", "b", "c", "json:loads")) is None
    by_string = Candidate("a", "b", "c", "json:loads", settings_model=f"{name}:Model")
    assert resolve_settings_model(by_string) is module.Model
    by_class = Candidate("a", "b", "c", "json:loads", settings_model=module.Model)
    assert resolve_settings_model(by_class) is module.Model

    with pytest.raises(FactoryError) as error:
        resolve_settings_model(
            Candidate("a", "b", "c", "json:loads", settings_model=f"{name}:not_a_model")
        )
    assert_one_line(error, "settings_model of a/b/c is <class 'dict'>, not a pydantic model class")
    with pytest.raises(FactoryError) as error:
        resolve_settings_model(
            Candidate("a", "b", "c", "json:loads", settings_model=f"{name}:Missing")
        )
    assert_one_line(error, "settings_model of a/b/c", "has no attribute 'Missing'")
