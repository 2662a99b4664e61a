"""``data.sanitize`` (builtin): default rules, path/pattern/regex rules, keyed hashes, bad rules."""

from __future__ import annotations

import copy
import hashlib
import hmac
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from oneiric.actions import ActionInputError
from oneiric.actions._kits.sanitize import (
    DEFAULT_MASK,
    Sanitize,
    SanitizeSettings,
    luhn_valid,
    redact_secrets,
)
from oneiric.actions._spec import ActionContext
from oneiric.core._redact import register_secret, reset_registry

pytestmark = pytest.mark.anyio

CTX = ActionContext("data.sanitize", "builtin", 1, float("inf"), "k")
M = DEFAULT_MASK


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    yield
    reset_registry()


def run(data: Any, rules: Any = None, **settings: Any) -> Any:
    payload = {"data": data} if rules is None else {"data": data, "rules": rules}
    return Sanitize(SanitizeSettings(**settings)).invoke(payload, CTX)["data"]


# ----------------------------------------------------------------- defaults


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5500 0000 0000 0004",
        "378282246310005",  # 15-digit Amex
        "4222222222222",  # 13 digits
        "6011000990139424",
        "3530111333300000",
    ],
)
def test_default_rules_mask_luhn_valid_card_numbers(card: str) -> None:
    assert luhn_valid(card.replace(" ", "").replace("-", ""))
    out = run({"pay": {"note": f"card {card} ok", "card": card}})
    assert out == {"pay": {"note": f"card {M} ok", "card": M}}


@pytest.mark.parametrize(
    "number",
    [
        "4111111111111112",  # 16 digits failing Luhn: an order id, not a card
        "4111 1111 1111 1112",
        "123456789012",  # 12 digits: too short
        "41111111111111111111",  # 20 digits: too long
    ],
)
def test_numbers_failing_luhn_or_length_are_not_masked(number: str) -> None:
    assert run({"ref": number}) == {"ref": number}


def test_an_integer_card_number_is_masked_but_a_failing_one_is_kept() -> None:
    assert run({"a": 4111111111111111, "b": 4111111111111112, "c": 42}) == {
        "a": M, "b": 4111111111111112, "c": 42,
    }


@pytest.mark.parametrize(
    "email",
    ["ada@example.com", "bob.smith+tag@mail.example.co.uk", "X_Y%z@sub-domain.io"],
)
def test_default_rules_mask_email_addresses_anywhere(email: str) -> None:
    data = {"users": [{"contact": {"mail": email}}, ["to:", f"<{email}>, thanks"]]}
    assert run(data) == {"users": [{"contact": {"mail": M}}, ["to:", f"<{M}>, thanks"]]}


def test_default_rules_mask_bearer_tokens_and_authorization_values() -> None:
    data = {
        "log": "GET / with bearer eyJhbGciOi.J9.eyJzdWIi-Ij_x= done",
        "headers": {"Authorization": "Basic dXNlcjpwdw==", "Accept": "*/*"},
        "lower": {"authorization": "Token abc"},
        "proxy": {"Proxy-Authorization": "Bearer zzz"},
        "pairs": [["Authorization", "Digest x"], ["Accept", "text/plain"]],
    }
    assert run(data) == {
        "log": f"GET / with bearer {M} done",
        "headers": {"Authorization": M, "Accept": "*/*"},
        "lower": {"authorization": M},
        "proxy": {"Proxy-Authorization": M},
        "pairs": [["Authorization", M], ["Accept", "text/plain"]],
    }


def test_plain_text_without_personal_data_is_unchanged() -> None:
    data = {"a": "nothing to see @ here", "b": [1, 2.5, True, None], "c": "bearer"}
    assert run(data) == data


def test_attack_input_is_never_mutated() -> None:
    data = {"u": {"email": "a@b.io", "cards": ["4111111111111111"]},
            "h": {"Authorization": "Bearer x"}, "t": ("4111111111111111",)}
    before = copy.deepcopy(data)
    run(data)
    run(data, [{"path": "u.email", "action": "drop"}, {"path": "u.cards[*]"}])
    assert data == before


def test_patterns_setting_chooses_the_default_rules() -> None:
    data = {"m": "a@b.io", "c": "4111111111111111", "t": "Bearer x"}
    assert run(data, patterns=["email"]) == {"m": M, "c": "4111111111111111", "t": "Bearer x"}
    assert run(data, mask="[x]") == {"m": "[x]", "c": "[x]", "t": "Bearer [x]"}


def test_registered_settings_secrets_are_always_redacted() -> None:
    register_secret("hunter2-very-secret")
    out = run({"dsn": "redis://:hunter2-very-secret@host"}, [{"path": "other"}])
    assert out == {"dsn": M}


# -------------------------------------------------------------------- rules


def test_path_rules_mask_hash_and_drop() -> None:
    data = {
        "user": {"email": "a@b.io", "name": "Ada", "ssn": "123"},
        "items": [{"card": "x1", "sku": 1}, {"card": "x2", "sku": 2}],
        "tags": ["keep", "secret-tag"],
    }
    rules = [
        {"path": "user.email", "action": "hash"},
        {"path": "user.ssn"},
        {"path": "items[*].card", "action": "drop"},
        {"path": "tags[1]", "action": "drop"},
    ]
    out = run(data, rules, salt=SecretStr("pepper"))
    expected = hmac.new(b"pepper", b"a@b.io", hashlib.sha256).hexdigest()
    assert out == {
        "user": {"email": expected, "name": "Ada", "ssn": M},
        "items": [{"sku": 1}, {"sku": 2}],
        "tags": ["keep"],
    }


def test_hash_is_stable_across_calls_and_instances_and_keyed_by_the_salt() -> None:
    rules = [{"path": "id", "action": "hash"}, {"path": "obj", "action": "hash"}]
    data = {"id": "user-1", "obj": {"b": 1, "a": [1, 2]}}
    first = run(data, rules, salt=SecretStr("s1"))
    assert run(data, rules, salt=SecretStr("s1")) == first
    assert run({"obj": {"a": [1, 2], "b": 1}, "id": "user-1"}, rules,
               salt=SecretStr("s1"))["obj"] == first["obj"]  # canonical JSON for objects
    other = run(data, rules, salt=SecretStr("s2"))
    assert other["id"] != first["id"] and other["obj"] != first["obj"]
    assert first["id"] != hashlib.sha256(b"user-1").hexdigest()  # keyed, not a plain hash


def test_first_matching_path_rule_wins_and_its_output_is_not_rescanned() -> None:
    rules = [{"path": "a", "action": "hash"}, {"path": "a", "action": "drop"},
             {"pattern": "card"}]
    out = run({"a": "4111111111111111", "b": "4111111111111111"}, rules, salt=SecretStr("k"))
    assert len(out["a"]) == 64 and out["b"] == M


def test_pattern_and_regex_rules_mask_or_hash_matches() -> None:
    rules = [{"pattern": "email", "action": "hash"}, {"regex": r"EMP-\d{4}"}]
    out = run({"t": "a@b.io is EMP-1234"}, rules, salt=SecretStr("k"))
    digest = hmac.new(b"k", b"a@b.io", hashlib.sha256).hexdigest()
    assert out == {"t": f"{digest} is {M}"}


def test_rules_replace_the_defaults() -> None:
    assert run({"m": "a@b.io", "c": "4111111111111111"}, [{"pattern": "card"}]) == {
        "m": "a@b.io", "c": M,
    }


async def test_through_actions_invoke_with_salt_from_secret(
    make_actions: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONEIRIC_SECRET_SANITIZE_SALT", "salt-from-secret")
    actions = await make_actions(
        '[action.provider_settings."data.sanitize".builtin]\n'
        'salt = "${secret:sanitize_salt}"\n'
        'patterns = ["email", "bearer"]\n'
    )
    result = await actions.invoke(
        "data.sanitize",
        {"data": {"id": "u1", "m": "a@b.io", "c": "4111111111111111"},
         "rules": [{"path": "id", "action": "hash"}, {"pattern": "email"}]},
    )
    digest = hmac.new(b"salt-from-secret", b"u1", hashlib.sha256).hexdigest()
    assert result.value == {"data": {"id": digest, "m": M, "c": "4111111111111111"}}
    defaults = await actions.invoke("data.sanitize", {"data": ["4111111111111111", "x@y.io"]})
    assert defaults.value == {"data": ["4111111111111111", M]}  # card is off in settings
    with pytest.raises(ActionInputError) as info:
        await actions.invoke("data.sanitize", {"data": {}, "rules": [{"regex": "(a+)+$"}]})
    assert info.value.path == "rules[0].regex"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("rules", "path"),
    [
        ({"path": "a"}, "rules"),
        (["a"], "rules[0]"),
        ([{}], "rules[0]"),
        ([{"path": "a", "pattern": "email"}], "rules[0]"),
        ([{"path": "a", "when": 1}], "rules[0].when"),
        ([{"path": "a", "action": "encrypt"}], "rules[0].action"),
        ([{"path": "a..b"}], "rules[0].path"),
        ([{"path": ""}], "rules[0].path"),
        ([{"path": 5}], "rules[0].path"),
        ([{"pattern": "phone"}], "rules[0].pattern"),
        ([{"pattern": "email", "action": "drop"}], "rules[0].action"),
        ([{"regex": "["}], "rules[0].regex"),
        ([{"regex": "(?P<x"}], "rules[0].regex"),
        ([{"regex": ""}], "rules[0].regex"),
        ([{"regex": 3}], "rules[0].regex"),
        ([{"regex": "x" * 300}], "rules[0].regex"),
        ([{"regex": "a*"}], "rules[0].regex"),
        ([{"path": "a"}, {"path": "b", "action": "hash"}], "rules[1].action"),  # no salt
    ],
)
def test_attack_bad_rules_are_one_line_input_errors(rules: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        run({"a": 1}, rules)
    assert info.value.path == path
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "regex",
    [r"(a+)+$", r"(\w+\s?)*$", r"(?:x*y?)+z", r"((ab)*c?)*", r"(a{1,3})+b", r"(?=(a+)+)b"],
)
def test_attack_catastrophic_regex_is_refused(regex: str) -> None:
    with pytest.raises(ActionInputError) as info:
        run({"a": "aaaa"}, [{"regex": regex}])
    assert info.value.path == "rules[0].regex"
    assert "nests" in str(info.value)


@pytest.mark.parametrize("regex", [r"(ab)+", r"\d{3}-\d{4}", r"(a{2})+", r"[a-z]+@x", r".*z"])
def test_ordinary_regexes_are_accepted(regex: str) -> None:
    run({"a": "ab"}, [{"regex": regex}])


def test_attack_builtin_patterns_are_linear_on_hostile_text() -> None:
    """Long runs that almost match each pattern finish (counted work: one call, no hang)."""
    hostile = ("a" * 20_000 + "@" + "b." * 10_000 + " " + "1 " * 20_000
               + "bearer " * 5_000)
    out = run({"t": hostile})
    assert isinstance(out["t"], str)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ("x", "<payload>"),
        ({}, "data"),
        ({"data": 1, "extra": 2}, "extra"),
        ({"data": b"x"}, "data"),
    ],
)
def test_attack_bad_payload_is_input_error(payload: Any, path: str) -> None:
    with pytest.raises(ActionInputError) as info:
        Sanitize().invoke(payload, CTX)
    assert info.value.path == path


def test_attack_deep_data_is_refused_not_recursion_error() -> None:
    deep: Any = "a@b.io"
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ActionInputError) as info:
        run(deep)
    assert info.value.path == "data"


def test_settings_are_strict() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SanitizeSettings(patterns=["phone"])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        SanitizeSettings(colour="red")  # type: ignore[call-arg]


# ----------------------------------------------------------- redact_secrets


def test_redact_secrets_masks_secret_keys_bearer_and_registered_values() -> None:
    register_secret("s3cr3t-value")
    data = {
        "password": "pw", "apiKey": "k", "client_secret": "c", "access_token": "t",
        "X-Api-Key": "h", "Cookie": "sid=1", "tokens_used": 3, "user": "ada",
        "note": "Authorization: Bearer abc.def", "dsn": "db://u:s3cr3t-value@h",
        "nested": [{"refresh_token": "r"}], "secret": SecretStr("x"),
    }
    out = redact_secrets(data)
    assert out == {
        "password": M, "apiKey": M, "client_secret": M, "access_token": M,
        "X-Api-Key": M, "Cookie": M, "tokens_used": 3, "user": "ada",
        "note": f"Authorization: Bearer {M}", "dsn": M,
        "nested": [{"refresh_token": M}], "secret": M,
    }


def test_import_of_the_kit_imports_no_third_party_library_but_pydantic() -> None:
    code = (
        "import sys, oneiric.actions._kits.sanitize\n"
        "heavy = {'jsonschema', 'httpx', 'yaml', 'structlog'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
