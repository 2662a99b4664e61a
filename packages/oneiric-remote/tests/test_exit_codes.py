"""One path from a remote error to an exit code: each class's category, through core.

The codes are the ones docs/remote.md's error table promises (invalid 4,
unavailable 5, refused 6; a fetch answered 404 is "not found", 3).  They come
from ``oneiric.core.exit_code_for`` - the path every ``oneiric`` command takes -
and the ``manifest``/``remote`` groups run on their own (tests, embedding) take
the same path: one line on stderr, that code.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import oneiric.remote as remote_api
from oneiric.core import exit_code_for
from oneiric.remote import _errors
from oneiric.remote._cli import StandaloneGroup

#: docs/remote.md, "Errors: what they mean and what to do"
DOCUMENTED = {
    "RemoteError": 4,
    "FetchError": 5,
    "CircuitOpenError": 5,
    "DownloadTooLargeError": 4,
    "DeadlineExceeded": 5,
    "ManifestFormatError": 4,
    "SignatureError": 4,
    "WrongRepositoryError": 4,
    "ExpiredManifestError": 4,
    "FutureIssuedError": 4,
    "RollbackError": 4,
    "EquivocationError": 4,
    "StateError": 4,
    "InsecureURLError": 6,
    "ArtifactDigestError": 4,
    "ArtifactSizeError": 4,
    "UnsafeArchiveError": 4,
    "ModuleShadowingError": 4,
    "FactoryNotAllowedError": 6,
    "ScopeError": 6,
}


def test_every_remote_error_class_has_a_documented_exit_code() -> None:
    assert set(DOCUMENTED) == set(_errors.__all__)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_remote_error_exit_code_comes_from_its_category(name: str) -> None:
    error = getattr(remote_api, name)("something failed")
    assert exit_code_for(error) == DOCUMENTED[name]
    assert error.exit_code == DOCUMENTED[name]


@pytest.mark.parametrize(
    ("status", "code"), [(404, 3), (403, 5), (500, 5), (503, 5), (None, 5)]
)
def test_fetch_error_404_is_not_found_through_core(status: int | None, code: int) -> None:
    """A manifest URL answering 404 is "not found" (3) for every caller, not only remote's CLI."""
    error = remote_api.FetchError("https://x/m.json answered 404; check the URL", status=status)
    assert exit_code_for(error) == code


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_standalone_group_prints_one_line_and_the_category_code(name: str) -> None:
    """``remote``/``manifest`` run without ``oneiric``: same one line, same code as under it."""
    error_type = getattr(remote_api, name)

    @click.group(cls=StandaloneGroup)
    def group() -> None:
        """A group like ``remote``."""

    @group.command("fail")
    def fail() -> None:
        raise error_type("first line\nsecond line")

    out = CliRunner().invoke(group, ["fail"])
    assert out.exit_code == DOCUMENTED[name]
    assert out.stderr == "Error: first line second line\n"
    assert out.stdout == ""


def test_standalone_group_usage_error_keeps_click_exit_2() -> None:
    from oneiric.remote._cli import manifest

    out = CliRunner().invoke(manifest, ["sign"])
    assert out.exit_code == 2
