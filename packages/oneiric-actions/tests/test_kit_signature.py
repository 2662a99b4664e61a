"""``security.signature`` (hmac): sign/verify, key from ``${secret:...}``, forgeries, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from typing import Any

import pytest

from oneiric.actions import ActionInputError
from oneiric.actions._kits.signature import HmacSettings, HmacSignature
from oneiric.actions._spec import ActionContext
from oneiric.core import ConfigError

pytestmark = pytest.mark.anyio

KEY = "security.signature"
SECRET = "s3cr3t-SIGNING-key-9f2c"
DATA = b'{"event": "push", "id": 42}'
CTX = ActionContext(KEY, "hmac", 1, float("inf"), "k")


def settings(algorithm: str | None = None, key: str | None = "${secret:HMAC_KEY}") -> str:
    lines = [f'[action.provider_settings."{KEY}".hmac]']
    if key is not None:
        lines.append(f'key = "{key}"')
    if algorithm is not None:
        lines.append(f'algorithm = "{algorithm}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_HMAC_KEY", SECRET)


def reference(data: bytes, key: str | bytes = SECRET, algorithm: str = "sha256") -> str:
    raw = key.encode() if isinstance(key, str) else key
    return hmac.new(raw, data, getattr(hashlib, algorithm)).hexdigest()


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
async def test_sign_with_the_secret_setting_matches_hmac(
    algorithm: str, make_actions: Any
) -> None:
    actions = await make_actions(settings(algorithm))
    result = await actions.invoke(KEY, {"op": "sign", "data": DATA})
    assert result.value == {"signature": reference(DATA, algorithm=algorithm)}
    verified = await actions.invoke(
        KEY, {"op": "verify", "data": DATA, "signature": result.value["signature"]})
    assert verified.value == {"valid": True}


async def test_sha256_is_the_default_algorithm(make_actions: Any) -> None:
    actions = await make_actions(settings())
    result = await actions.invoke(KEY, {"op": "sign", "data": "text"})
    assert result.value["signature"] == reference(b"text")


async def test_payload_key_overrides_the_setting_in_every_form(make_actions: Any) -> None:
    actions = await make_actions(settings())
    raw = b"\x00payload-key\xff"
    forms = [raw, {"base64": base64.b64encode(raw).decode()}]
    for key in forms:
        result = await actions.invoke(KEY, {"op": "sign", "data": DATA, "key": key})
        assert result.value["signature"] == reference(DATA, raw)
    text = await actions.invoke(KEY, {"op": "sign", "data": DATA, "key": "plain"})
    assert text.value["signature"] == reference(DATA, "plain")


async def test_payload_key_works_without_any_setting(make_actions: Any) -> None:
    actions = await make_actions(settings(key=None))
    result = await actions.invoke(KEY, {"op": "sign", "data": DATA, "key": "k"})
    assert result.value["signature"] == reference(DATA, "k")


@pytest.mark.parametrize("form", ["upper", "prefixed", "prefixed-upper", "padded"])
async def test_verify_accepts_case_prefix_and_whitespace(form: str, make_actions: Any) -> None:
    actions = await make_actions(settings())
    good = reference(DATA)
    claimed = {"upper": good.upper(), "prefixed": f"sha256={good}",
               "prefixed-upper": f"SHA256={good.upper()}", "padded": f" {good}\n"}[form]
    result = await actions.invoke(KEY, {"op": "verify", "data": DATA, "signature": claimed})
    assert result.value == {"valid": True}


def _forgeries() -> dict[str, tuple[bytes, str]]:
    good = reference(DATA)
    return {
        "tampered-data": (DATA + b" ", good),
        "other-key": (DATA, reference(DATA, "other")),
        "flipped-digit": (DATA, good[:-1] + ("0" if good[-1] != "0" else "1")),
        "truncated": (DATA, good[:32]),
        "extended": (DATA, good + "00"),
        "empty": (DATA, ""),
        "not-hex": (DATA, "z" * 64),
        "non-ascii": (DATA, "é" * 64),
        "other-algorithm": (DATA, reference(DATA, algorithm="sha512")),
        "wrong-prefix": (DATA, f"sha512={good}"),
        "raw-digest-as-text": (DATA, hmac.new(SECRET.encode(), DATA, "sha256").digest()
                               .decode("latin-1")),
    }


@pytest.mark.parametrize("case", sorted(_forgeries()))
async def test_attack_forged_signature_is_not_valid(case: str, make_actions: Any) -> None:
    actions = await make_actions(settings())
    data, claimed = _forgeries()[case]
    result = await actions.invoke(KEY, {"op": "verify", "data": data, "signature": claimed})
    assert result.value == {"valid": False}


async def test_attack_no_key_anywhere_says_where_to_set_it(make_actions: Any) -> None:
    actions = await make_actions(settings(key=None))
    for op in ({"op": "sign", "data": DATA}, {"op": "verify", "data": DATA, "signature": "00"}):
        with pytest.raises(ActionInputError) as info:
            await actions.invoke(KEY, op)
        message = str(info.value)
        assert info.value.path == "key" and "\n" not in message
        assert 'provider_settings."security.signature".hmac' in message and "key" in message


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "SHA-1", "MD5"])
async def test_attack_weak_algorithm_refused_in_one_line(
    algorithm: str, make_actions: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        await make_actions(settings(algorithm))
    message = str(info.value)
    assert "refused" in message and "algorithm" in message and "\n" not in message


@pytest.mark.parametrize(("toml", "word"), [
    (settings("whirlpool"), "unknown algorithm"),
    (settings(key=""), "key is empty"),
    (settings() + "salt = 1\n", "unknown setting"),
])
async def test_attack_bad_settings_refused_in_one_line(
    toml: str, word: str, make_actions: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        await make_actions(toml)
    assert word in str(info.value) and "\n" not in str(info.value)


BAD: list[tuple[Any, str]] = [
    ("sign", "<payload>"),
    ({"data": DATA}, "op"),
    ({"op": "encrypt", "data": DATA}, "op"),
    ({"op": 1, "data": DATA}, "op"),
    ({"op": "sign"}, "data"),
    ({"op": "sign", "data": 5}, "data"),
    ({"op": "sign", "data": DATA, "signature": "00"}, "signature"),
    ({"op": "verify", "data": DATA}, "signature"),
    ({"op": "verify", "data": DATA, "signature": 12}, "signature"),
    ({"op": "verify", "data": DATA, "signature": b"00"}, "signature"),
    ({"op": "sign", "data": DATA, "key": 7}, "key"),
    ({"op": "sign", "data": DATA, "key": ""}, "key"),
    ({"op": "sign", "data": DATA, "key": {"base64": "%"}}, "key.base64"),
    ({"op": "sign", "data": DATA, "algorithm": "md5"}, "algorithm"),
]


@pytest.mark.parametrize(("payload", "path"), BAD)
async def test_attack_malformed_payload_is_an_input_error_with_its_path(
    payload: Any, path: str, make_actions: Any
) -> None:
    actions = await make_actions(settings())
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, payload)
    assert info.value.path == path and "\n" not in str(info.value)
    assert SECRET not in str(info.value)


async def test_the_key_never_appears_in_reprs_errors_or_results(make_actions: Any) -> None:
    model = HmacSettings(key=SECRET)
    provider = HmacSignature(model)
    assert SECRET not in repr(model) and SECRET not in str(model)
    assert SECRET not in repr(provider)
    actions = await make_actions(settings())
    result = await actions.invoke(KEY, {"op": "sign", "data": DATA})
    assert SECRET not in repr(result) and SECRET not in str(result.as_dict())
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"op": "verify", "data": DATA, "signature": SECRET.encode()})
    assert SECRET not in str(info.value)


def test_spec_declares_a_pure_inline_action() -> None:
    spec = HmacSignature.spec
    assert spec.idempotent and not spec.side_effects and not spec.blocking


def test_direct_use_without_a_lifecycle() -> None:
    provider = HmacSignature(HmacSettings(key="k", algorithm="sha512"))
    signature = provider.invoke({"op": "sign", "data": b"x"}, CTX)["signature"]
    assert signature == reference(b"x", "k", "sha512")


def test_importing_the_module_imports_no_kit_library() -> None:
    code = ("import sys, oneiric.actions._kits.signature; print(sorted(m for m in "
            "('httpx', 'argon2', 'zstandard', 'yaml', 'cryptography') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
