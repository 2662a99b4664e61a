"""``security.secure`` (scrypt, argon2): hash/verify, tokens, planted hashes, hidden password."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import traceback
from typing import Any

import pytest

from oneiric.actions import ActionError, ActionInputError
from oneiric.actions._kits import secure
from oneiric.actions._spec import ActionContext
from oneiric.core import ConfigError

pytestmark = pytest.mark.anyio

KEY = "security.secure"
PASSWORD = "correct-HORSE-battery-staple-7731"
CTX = ActionContext(KEY, "test", 1, float("inf"), "k")
# cheap costs so the suite stays fast (the defaults are tested for shape only)
CHEAP = {
    "scrypt": {"n": 1024, "r": 8, "p": 1},
    "argon2": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
}
PROVIDERS = ["scrypt", "argon2"]


def toml(provider: str, **overrides: Any) -> str:
    values = {**CHEAP[provider], **overrides}
    body = "\n".join(f"{k} = {v}" for k, v in values.items())
    return (f'[action.selections]\n"{KEY}" = "{provider}"\n'
            f'[action.provider_settings."{KEY}".{provider}]\n{body}\n')


def direct(provider: str, **overrides: Any) -> Any:
    if provider == "scrypt":
        return secure.ScryptSecure(secure.ScryptSettings(**{**CHEAP["scrypt"], **overrides}))
    return secure.Argon2Secure(secure.Argon2Settings(**{**CHEAP["argon2"], **overrides}))


def hashed(provider: str, password: Any = PASSWORD) -> str:
    return str(direct(provider).invoke({"op": "hash", "password": password}, CTX)["hash"])


def assert_hidden(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert PASSWORD not in text and PASSWORD not in repr(exc)
    assert "\n" not in str(exc)


# ------------------------------------------------------------------ hash / verify

@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hash_then_verify_right_and_wrong_password(
    provider: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    stored = (await actions.invoke(KEY, {"op": "hash", "password": PASSWORD})).value["hash"]
    assert PASSWORD not in stored
    right = await actions.invoke(KEY, {"op": "verify", "password": PASSWORD, "hash": stored})
    assert right.provider == provider and right.value == {"valid": True}
    for wrong in (PASSWORD + "x", PASSWORD[:-1], "", PASSWORD.upper()):
        result = await actions.invoke(KEY, {"op": "verify", "password": wrong, "hash": stored})
        assert result.value == {"valid": False}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_two_hashes_of_one_password_differ_and_both_verify(provider: str) -> None:
    first, second = hashed(provider), hashed(provider)
    assert first != second
    for stored in (first, second):
        out = direct(provider).invoke({"op": "verify", "password": PASSWORD, "hash": stored}, CTX)
        assert out == {"valid": True}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_password_forms_bytes_text_base64_are_the_same_bytes(provider: str) -> None:
    stored = hashed(provider, PASSWORD.encode())
    b64 = {"base64": base64.b64encode(PASSWORD.encode()).decode()}
    for form in (PASSWORD, PASSWORD.encode(), b64):
        out = direct(provider).invoke({"op": "verify", "password": form, "hash": stored}, CTX)
        assert out == {"valid": True}


def test_scrypt_hash_is_self_describing_and_reproducible_with_hashlib() -> None:
    stored = hashed("scrypt")
    match = re.fullmatch(r"scrypt\$1024\$8\$1\$([^$]+)\$([^$]+)", stored)
    assert match is not None
    salt, digest = (base64.b64decode(match.group(i)) for i in (1, 2))
    assert len(salt) == 16 and len(digest) == 32
    assert hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1024, r=8, p=1, dklen=32) == digest


def test_scrypt_verify_reads_the_parameters_from_the_hash_not_the_settings() -> None:
    stored = hashed("scrypt")
    other = direct("scrypt", n=2048, r=4, salt_bytes=32, hash_bytes=64)
    assert other.invoke({"op": "verify", "password": PASSWORD, "hash": stored}, CTX) == {
        "valid": True}
    assert re.match(r"scrypt\$2048\$4\$1\$", other.invoke(
        {"op": "hash", "password": PASSWORD}, CTX)["hash"])


def test_argon2_hash_is_standard_argon2id_with_the_settings() -> None:
    import argon2

    stored = hashed("argon2")
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert argon2.PasswordHasher().verify(stored, PASSWORD)


def test_default_settings_are_the_documented_costs() -> None:
    assert secure.ScryptSettings().model_dump() == {
        "n": 32768, "r": 8, "p": 1, "salt_bytes": 16, "hash_bytes": 32}
    assert secure.Argon2Settings().model_dump() == {
        "time_cost": 3, "memory_cost": 65536, "parallelism": 4, "hash_len": 32, "salt_len": 16}


# ------------------------------------------------------------------ tokens

@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("size", [16, 32, 1024])
async def test_token_has_the_requested_entropy(
    provider: str, size: int, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    token = (await actions.invoke(KEY, {"op": "token", "bytes": size})).value["token"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) == size
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)


def test_token_defaults_to_32_bytes_and_repeats_never() -> None:
    tokens = {direct("scrypt").invoke({"op": "token"}, CTX)["token"] for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) == 43 for t in tokens)


# ------------------------------------------------------------------ planted hashes

def _planted(provider: str) -> dict[str, str]:
    good = hashed(provider)
    if provider == "scrypt":
        _, n, r, p, salt, digest = good.split("$")
        return {
            "garbage": "not a hash",
            "empty": "",
            "truncated": good[:-10],
            "missing-part": f"scrypt${n}${r}${salt}${digest}",
            "bad-base64": f"scrypt${n}${r}${p}$!!!!${digest}",
            "n-not-power-of-two": f"scrypt$1000${r}${p}${salt}${digest}",
            "n-huge": f"scrypt${1 << 24}${r}${p}${salt}${digest}",
            "memory-too-big": f"scrypt${1 << 22}$32$16${salt}${digest}",
            "short-salt": f"scrypt${n}${r}${p}$AAAA${digest}",
            "signed-n": f"scrypt$+1024${r}${p}${salt}${digest}",
            "too-long": good + "A" * 2000,
        }
    head, salt, digest = good.rsplit("$", 2)
    return {
        "garbage": "not a hash",
        "empty": "",
        "truncated": good[:-10],
        "bad-params": "$argon2id$v=19$m=xx,t=1,p=1$" + salt + "$" + digest,
        "memory-too-big": f"$argon2id$v=19$m={1 << 24},t=1,p=1${salt}${digest}",
        "time-too-big": f"$argon2id$v=19$m=1024,t=99,p=1${salt}${digest}",
        "lanes-too-many": f"$argon2id$v=19$m=1024,t=1,p=64${salt}${digest}",
        "bad-salt": f"{head}$!!!!${digest}",
        "too-long": good + "A" * 2000,
    }


_PLANTED_CASES = {
    "scrypt": ["garbage", "empty", "truncated", "missing-part", "bad-base64",
               "n-not-power-of-two", "n-huge", "memory-too-big", "short-salt", "signed-n",
               "too-long"],
    "argon2": ["garbage", "empty", "truncated", "bad-params", "memory-too-big",
               "time-too-big", "lanes-too-many", "bad-salt", "too-long"],
}
PLANTED = [(p, case) for p, cases in _PLANTED_CASES.items() for case in cases]


@pytest.mark.parametrize(("provider", "case"), PLANTED)
async def test_attack_malformed_or_costly_hash_is_an_input_error(
    provider: str, case: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    planted = _planted(provider)[case]
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"op": "verify", "password": PASSWORD, "hash": planted})
    assert info.value.path == "hash" and f"not a {provider} hash" in str(info.value)
    assert_hidden(info.value)


@pytest.mark.parametrize(("provider", "other"), [("scrypt", "argon2"), ("argon2", "scrypt")])
async def test_a_hash_from_the_other_provider_names_the_provider_that_reads_it(
    provider: str, other: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, {"op": "verify", "password": PASSWORD,
                                   "hash": hashed(other)})
    message = str(info.value)
    assert info.value.path == "hash"
    assert f"is an {other} hash, not {provider}" in message
    assert f"verify it with provider {other}" in message
    assert_hidden(info.value)


# ------------------------------------------------------------------ bad settings

BAD_SETTINGS = [
    ("scrypt", {"n": 1000}), ("scrypt", {"n": 512}), ("scrypt", {"n": 1 << 23}),
    ("scrypt", {"r": 0}), ("scrypt", {"r": 33}), ("scrypt", {"p": 17}),
    ("scrypt", {"n": 1 << 22, "r": 16}), ("scrypt", {"salt_bytes": 8}),
    ("scrypt", {"hash_bytes": 65}), ("argon2", {"time_cost": 0}),
    ("argon2", {"memory_cost": 512}), ("argon2", {"memory_cost": 1 << 21}),
    ("argon2", {"parallelism": 17}), ("argon2", {"salt_len": 8}),
    ("argon2", {"hash_len": 8}), ("argon2", {"type": 1}),
]


@pytest.mark.parametrize(("provider", "settings"), BAD_SETTINGS)
async def test_attack_out_of_range_cost_setting_refused_in_one_line(
    provider: str, settings: dict[str, Any], make_actions: Any
) -> None:
    with pytest.raises(ConfigError) as info:
        await make_actions(toml(provider, **settings))
    assert "\n" not in str(info.value) and KEY in str(info.value)


# ------------------------------------------------------------------ bad payloads

BAD: list[tuple[Any, str]] = [
    (PASSWORD, "<payload>"),
    ({"password": PASSWORD}, "op"),
    ({"op": "encrypt", "password": PASSWORD}, "op"),
    ({"op": None}, "op"),
    ({"op": "hash"}, "password"),
    ({"op": "hash", "password": ""}, "password"),
    ({"op": "hash", "password": 12345}, "password"),
    ({"op": "hash", "password": "x" * 4097}, "password"),
    ({"op": "hash", "password": PASSWORD, "hash": "x"}, "hash"),
    ({"op": "hash", "password": PASSWORD, "extra": 1}, "extra"),
    ({"op": "verify", "password": PASSWORD}, "hash"),
    ({"op": "verify", "hash": "scrypt$1"}, "password"),
    ({"op": "verify", "password": PASSWORD, "hash": b"bytes"}, "hash"),
    ({"op": "verify", "password": [PASSWORD], "hash": "x"}, "password"),
    ({"op": "token", "bytes": 15}, "bytes"),
    ({"op": "token", "bytes": 1025}, "bytes"),
    ({"op": "token", "bytes": "32"}, "bytes"),
    ({"op": "token", "bytes": True}, "bytes"),
    ({"op": "token", "password": PASSWORD}, "password"),
]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("payload", "path"), BAD)
async def test_attack_malformed_payload_is_an_input_error_without_the_password(
    provider: str, payload: Any, path: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    with pytest.raises(ActionInputError) as info:
        await actions.invoke(KEY, payload)
    assert info.value.path == path
    assert_hidden(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_password_appears_in_no_result_repr_or_error(
    provider: str, make_actions: Any
) -> None:
    actions = await make_actions(toml(provider))
    result = await actions.invoke(KEY, {"op": "hash", "password": PASSWORD})
    assert PASSWORD not in repr(result) and PASSWORD not in str(result.as_dict())
    instance = direct(provider)
    instance.invoke({"op": "hash", "password": PASSWORD}, CTX)
    assert PASSWORD not in repr(instance) and PASSWORD not in repr(vars(instance))
    errors: list[ActionError] = []
    for payload in ({"op": "verify", "password": PASSWORD, "hash": PASSWORD},
                    {"op": "verify", "password": PASSWORD, "hash": "$argon2id$" + PASSWORD},
                    {"op": "verify", "password": PASSWORD, "hash": "scrypt$" + PASSWORD},
                    {"op": "hash", "password": PASSWORD, "salt": PASSWORD}):
        with pytest.raises(ActionError) as info:
            await actions.invoke(KEY, payload)
        errors.append(info.value)
    for exc in errors:
        assert_hidden(exc)


def test_spec_is_blocking_random_and_free_of_side_effects() -> None:
    spec = secure.ScryptSecure.spec
    assert spec is secure.Argon2Secure.spec
    assert spec.blocking and not spec.idempotent and not spec.side_effects


# ------------------------------------------------------------------ lazy imports

def test_importing_the_module_does_not_import_argon2() -> None:
    code = "import sys, oneiric.actions._kits.secure; print('argon2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_missing_argon2_fails_in_one_line_naming_the_extra() -> None:
    code = (
        "import sys; sys.modules['argon2'] = None\n"
        "from oneiric.actions._kits import secure as s\n"
        "try:\n    s.Argon2Secure(s.Argon2Settings())\n"
        "except Exception as exc:\n    print(type(exc).__name__, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out.startswith("ConfigError |") and "oneiric-actions[argon2]" in out
