"""``compression.hash``: digests equal the reference libraries', settings, bad input, threads."""

from __future__ import annotations

import base64
import hashlib
import inspect
import subprocess
import sys
import threading
from typing import Any

import pytest

from oneiric.actions import ActionInputError
from oneiric.actions._kits import hashing
from oneiric.actions._spec import ActionContext
from oneiric.core import ConfigError

pytestmark = pytest.mark.anyio

CTX = ActionContext("compression.hash", "test", 1, float("inf"), "k")
DATA = bytes(range(256)) * 100


def reference(provider: str, data: bytes, digest_size: int = 64) -> str:
    if provider == "blake3":
        import blake3

        return str(blake3.blake3(data).hexdigest())
    if provider == "blake2b":
        return hashlib.blake2b(data, digest_size=digest_size).hexdigest()
    return hashlib.new(provider, data).hexdigest()


def select(provider: str, extra: str = "") -> str:
    return f'[action.selections]\n"compression.hash" = "{provider}"\n{extra}'


PROVIDERS = ["sha256", "sha512", "blake2b", "blake3"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_digest_matches_the_reference_for_every_input_form(
    provider: str, make_actions: Any
) -> None:
    actions = await make_actions(select(provider))
    expected = reference(provider, DATA)
    for data in (DATA, bytearray(DATA), {"base64": base64.b64encode(DATA).decode()}):
        result = await actions.invoke("compression.hash", {"data": data})
        assert result.provider == provider and result.value == {"digest": expected}
    text = await actions.invoke("compression.hash", {"data": "héllo"})
    assert text.value["digest"] == reference(provider, "héllo".encode())
    empty = await actions.invoke("compression.hash", {"data": b""})
    assert empty.value["digest"] == reference(provider, b"")


async def test_sha256_is_the_default_without_a_selection(make_actions: Any) -> None:
    actions = await make_actions("")
    result = await actions.invoke("compression.hash", {"data": b"abc"})
    assert result.provider == "sha256"
    assert result.value["digest"] == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("size", [1, 16, 32, 64])
async def test_blake2b_digest_size_setting(size: int, make_actions: Any) -> None:
    extra = f'[action.provider_settings."compression.hash".blake2b]\ndigest_size = {size}\n'
    actions = await make_actions(select("blake2b", extra))
    digest = (await actions.invoke("compression.hash", {"data": DATA})).value["digest"]
    assert len(digest) == 2 * size and digest == reference("blake2b", DATA, size)


@pytest.mark.parametrize("value", ["0", "65", "-1", '"big"', "32.5"])
async def test_attack_blake2b_digest_size_out_of_range_refused(
    value: str, make_actions: Any
) -> None:
    extra = f'[action.provider_settings."compression.hash".blake2b]\ndigest_size = {value}\n'
    with pytest.raises(ConfigError) as info:
        await make_actions(select("blake2b", extra))
    assert "digest_size" in str(info.value) and "\n" not in str(info.value)


BAD: list[tuple[Any, str]] = [
    (b"raw", "<payload>"),
    (None, "<payload>"),
    ({}, "data"),
    ({"data": 3}, "data"),
    ({"data": None}, "data"),
    ({"data": [1, 2]}, "data"),
    ({"data": {"base64": "%%%"}}, "data.base64"),
    ({"data": {"hex": "00"}}, "data"),
    ({"data": b"x", "algorithm": "md5"}, "algorithm"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("payload", "path"), BAD)
async def test_attack_malformed_payload_is_an_input_error_with_its_path(
    provider: str, payload: Any, path: str, make_actions: Any
) -> None:
    actions = await make_actions(select(provider))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("compression.hash", payload)
    assert info.value.path == path and "\n" not in str(info.value)


def test_small_input_is_hashed_inline_and_returned_directly() -> None:
    value = hashing.Sha256().invoke({"data": b"abc"}, CTX)
    assert value == {"digest": hashlib.sha256(b"abc").hexdigest()}


async def test_input_above_the_threshold_is_hashed_in_a_worker_thread() -> None:
    seen: list[str] = []

    def digest(data: bytes) -> str:
        seen.append(threading.current_thread().name)
        return hashlib.sha256(data).hexdigest()

    provider = hashing._Hash(digest)
    small = provider.invoke({"data": bytes(hashing._THREAD_ABOVE)}, CTX)
    assert not inspect.isawaitable(small)
    big_data = bytes(hashing._THREAD_ABOVE + 1)
    big = provider.invoke({"data": big_data}, CTX)
    assert inspect.isawaitable(big)
    assert await big == {"digest": hashlib.sha256(big_data).hexdigest()}
    assert seen[0] == threading.current_thread().name
    assert seen[1] != threading.current_thread().name


async def test_big_input_through_actions_invoke(make_actions: Any) -> None:
    actions = await make_actions(select("sha512"))
    data = bytes(hashing._THREAD_ABOVE + 7)
    result = await actions.invoke("compression.hash", {"data": data})
    assert result.value == {"digest": hashlib.sha512(data).hexdigest()}


def test_specs_declare_a_pure_inline_transform() -> None:
    for name in ("Sha256", "Sha512", "Blake2b", "Blake3"):
        spec = getattr(hashing, name).spec
        assert spec.idempotent and not spec.side_effects and not spec.blocking


def test_importing_the_module_does_not_import_blake3() -> None:
    code = "import sys, oneiric.actions._kits.hashing; print('blake3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_missing_blake3_fails_in_one_line_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['blake3'] = None\n"
        "from oneiric.actions._kits.hashing import Blake3\n"
        "try:\n    Blake3()\nexcept Exception as exc:\n    print(type(exc).__name__, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("ConfigError |") and "oneiric-actions[blake3]" in out
