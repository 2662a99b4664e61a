"""``data.sanitize`` (provider ``builtin``): mask, hash or drop personal data and secrets.

Payload ``{"data", "rules"?}`` -> ``{"data"}`` (a sanitized copy; the input
is never mutated).  Without ``rules`` the default rules run: e-mail
addresses, card numbers that pass the Luhn check (13-19 digits, spaces or
dashes between them; a number failing Luhn is left alone, it is an order id
or a phone number) and bearer tokens (``Bearer <token>`` in any string, and
the whole value of an ``Authorization``/``Proxy-Authorization`` field or
header pair) are masked wherever they are: nested objects, arrays, strings
inside.  Which defaults run is the setting ``patterns``.

``rules`` replaces the defaults; each rule is an object with one selector:

- ``{"path": "user.email", "action": "mask"|"hash"|"drop"}``: the value at a
  field path (``items[*].card``: every item); ``drop`` removes the field or item;
- ``{"pattern": "email"|"card"|"bearer", "action": "mask"|"hash"}``: every match
  inside strings;
- ``{"regex": "...", "action": "mask"|"hash"}``: a custom pattern (at most
  ``max_regex_length`` characters; a nested unbounded repeat such as
  ``(a+)+``, which can backtrack exponentially, is refused).

``action`` defaults to ``mask``: the value or match becomes the ``mask``
setting.  ``hash`` is HMAC-SHA256 keyed with the ``salt`` setting (hex; the
same input gives the same hash across calls and processes, so hashed fields
still join, but without the salt nobody can test guesses); a ``hash`` rule
without a configured salt is refused.  Path rules decide first (the first
matching rule in list order wins) and what they produce is not scanned
again; pattern rules then run in order over every remaining string.  Values
that contain a secret the settings resolved (``${secret:...}``) are always
redacted (``oneiric.core.helpers.redact``).  Keys are not scanned.

``redact_secrets`` is the same walk configured for output that must not leak
secrets (``debug.console``, ``workflow.audit``): registered secrets, bearer
tokens and the values of secret-looking keys (password, token, secret,
authorization, api key, cookie...).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from oneiric.core.helpers import one_line, redact

from .._errors import ActionInputError
from .._json import to_json
from .._spec import ActionContext, ActionSpec
from ._common import fields_of, take
from ._paths import WILDCARD, Part, check_depth, parse_path

__all__ = [
    "DEFAULT_MASK",
    "PATTERNS",
    "Sanitize",
    "SanitizeSettings",
    "Sanitizer",
    "luhn_valid",
    "redact_secrets",
]

KEY = "data.sanitize"

#: The default mask: the same text core's redaction writes.
DEFAULT_MASK: Final = "**********"

#: The built-in patterns.  Every quantifier is bounded or anchored by a
#: lookbehind, so a search is linear in the text (no catastrophic backtracking).
PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "email": re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
        r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
        r"(?![A-Za-z0-9-])"
    ),
    "card": re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])"),
    "bearer": re.compile(r"(?i)\b(bearer)\s{1,8}([A-Za-z0-9\-._~+/]{1,4096}=*)"),
}

_AUTH_KEYS = frozenset({"authorization", "proxy-authorization", "proxy_authorization"})
_SECRET_KEY = re.compile(
    r".{0,64}(password|passwd|passphrase|secret|token|authorization|apikey|api_key|"
    r"privatekey|private_key|accesskey|access_key|cookie|credentials?|sessionid|session_id)"
)
_ACTIONS = ("mask", "hash", "drop")

PatternName = Literal["email", "card", "bearer"]


def _all_patterns() -> list[PatternName]:
    return ["email", "card", "bearer"]


class SanitizeSettings(BaseModel):
    """Provider settings of ``data.sanitize`` ``builtin``."""

    model_config = ConfigDict(extra="forbid")

    #: What a masked value or match becomes.
    mask: str = Field(default=DEFAULT_MASK, min_length=1, max_length=64)
    #: The HMAC key of ``hash`` rules (usually ``${secret:...}``); without it ``hash`` is refused.
    salt: SecretStr | None = None
    #: The default rules (used when a payload has no ``rules``).
    patterns: list[PatternName] = Field(default_factory=_all_patterns)
    #: The longest custom ``regex`` a rule may give.
    max_regex_length: int = Field(default=256, ge=1, le=4096)


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum of card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


@dataclass(frozen=True, slots=True)
class _PathRule:
    parts: tuple[Part, ...]
    action: str


@dataclass(frozen=True, slots=True)
class _PatternRule:
    regex: re.Pattern[str]
    kind: str  # email | card | bearer | regex
    action: str


class Sanitizer:
    """One configured walk: path rules, pattern rules, key rules; never mutates its input."""

    __slots__ = ("_auth", "_mask", "_paths", "_patterns", "_salt", "_secret_keys")

    def __init__(
        self,
        *,
        paths: list[_PathRule],
        patterns: list[_PatternRule],
        mask: str = DEFAULT_MASK,
        salt: bytes | None = None,
        secret_keys: bool = False,
    ) -> None:
        self._paths = paths
        self._patterns = patterns
        self._mask = mask
        self._salt = salt
        bearer = next((p for p in patterns if p.kind == "bearer"), None)
        #: The action on Authorization values (the bearer rule's), or None.
        self._auth = bearer.action if bearer is not None else None
        self._secret_keys = secret_keys

    # ---------------------------------------------------------------- actions

    def _hash(self, value: Any) -> str:
        assert self._salt is not None  # checked when the rule was parsed
        if isinstance(value, str):
            text = value
        else:
            text = json.dumps(to_json(value), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False)
        return hmac.new(self._salt, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _replace(self, value: Any, action: str) -> str:
        return self._hash(value) if action == "hash" else self._mask

    def _sub(self, rule: _PatternRule) -> Callable[[re.Match[str]], str]:
        def card(match: re.Match[str]) -> str:
            text = match.group(0)
            digits = text.replace(" ", "").replace("-", "")
            if not luhn_valid(digits):
                return text
            return self._replace(digits, rule.action)

        def bearer(match: re.Match[str]) -> str:
            return f"{match.group(1)} {self._replace(match.group(2), rule.action)}"

        def whole(match: re.Match[str]) -> str:
            return self._replace(match.group(0), rule.action)

        return card if rule.kind == "card" else bearer if rule.kind == "bearer" else whole

    def _leaf(self, value: Any) -> Any:
        value = redact(value)  # registered secrets and SecretStr: always
        if isinstance(value, str):
            for rule in self._patterns:
                value = rule.regex.sub(self._sub(rule), value)
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            for rule in self._patterns:
                if rule.kind == "card" and 13 <= len(str(abs(value))) <= 19 and luhn_valid(
                    str(abs(value))
                ):
                    return self._replace(str(value), rule.action)
        return value

    def _key_action(self, key: Any) -> str | None:
        if not isinstance(key, str):
            return None
        folded = key.lower()
        if self._auth is not None and folded in _AUTH_KEYS:
            return self._auth
        if self._secret_keys and _SECRET_KEY.fullmatch(folded.replace("-", "_")):
            return "mask"
        return None

    # ------------------------------------------------------------------- walk

    def _step(
        self, states: list[tuple[int, int]], key: Any
    ) -> tuple[list[tuple[int, int]], str | None]:
        """Advance the path-rule states over ``key``; the action of the first completed rule."""
        following: list[tuple[int, int]] = []
        done: int | None = None
        for index, position in states:
            part = self._paths[index].parts[position]
            if isinstance(key, str):
                hit = part == key
            else:
                hit = part is WILDCARD or (isinstance(part, int) and part == key)
            if not hit:
                continue
            if position + 1 == len(self._paths[index].parts):
                done = index if done is None else min(done, index)
            else:
                following.append((index, position + 1))
        return following, self._paths[done].action if done is not None else None

    def apply(self, value: Any) -> Any:
        """A sanitized copy of ``value`` (iterative; depth is the caller's check)."""
        holder: list[Any] = [None]
        stack: list[tuple[Any, Any, Any, list[tuple[int, int]]]] = [
            (value, holder, 0, [(i, 0) for i in range(len(self._paths))])
        ]
        while stack:
            source, target, slot, states = stack.pop()
            if isinstance(source, Mapping):
                out: dict[Any, Any] = {}
                for key, child in source.items():
                    child_states, action = self._step(states, key)
                    if action is None:
                        action = self._key_action(key)
                    if action == "drop":
                        continue
                    shown = redact(key) if isinstance(key, str) else key
                    if action is not None:
                        out[shown] = self._replace(child, action)
                    else:
                        out[shown] = None
                        stack.append((child, out, shown, child_states))
                target[slot] = out
            elif isinstance(source, list | tuple):
                items: list[Any] = []
                pair = len(source) == 2 and self._key_action(source[0]) is not None
                for index, child in enumerate(source):
                    child_states, action = self._step(states, index)
                    if action is None and pair and index == 1:
                        action = self._key_action(source[0])  # ("Authorization", "Bearer x")
                    if action == "drop":
                        continue
                    if action is not None:
                        items.append(self._replace(child, action))
                    else:
                        items.append(None)
                        stack.append((child, items, len(items) - 1, child_states))
                target[slot] = items
            else:
                target[slot] = self._leaf(source)
        return holder[0]


# ------------------------------------------------------------------- rules


def _nested_repeat(pattern: str) -> bool:
    """True when an unbounded repeat contains a variable repeat: ``(a+)+``, ``(\\w*\\s?)*``."""
    parser: Any = importlib.import_module("re._parser")
    constants: Any = importlib.import_module("re._constants")
    repeats = {constants.MAX_REPEAT, constants.MIN_REPEAT}
    repeats |= {getattr(constants, "POSSESSIVE_REPEAT", constants.MAX_REPEAT)}

    def items(sub: Any) -> list[tuple[Any, Any]]:
        return list(getattr(sub, "data", sub))

    def children(op: Any, av: Any) -> list[Any]:
        if op in repeats:
            return [av[2]]
        if op is constants.SUBPATTERN:
            return [av[3]]
        if op is constants.BRANCH:
            return list(av[1])
        if op in (constants.ASSERT, constants.ASSERT_NOT):
            return [av[1]]
        if op is getattr(constants, "ATOMIC_GROUP", None):
            return [av]
        if op is constants.GROUPREF_EXISTS:
            return [s for s in av[1:] if s is not None]
        return []

    # (subpattern, inside an unbounded repeat?)
    stack: list[tuple[Any, bool]] = [(parser.parse(pattern), False)]
    while stack:
        sub, inside = stack.pop()
        for op, av in items(sub):
            unbounded = False
            if op in repeats:
                low, high = av[0], av[1]
                if inside and low != high:
                    return True
                unbounded = high == constants.MAXREPEAT or high > 64
            for child in children(op, av):
                stack.append((child, inside or unbounded))
    return False


def compile_regex(text: object, where: str, limit: int) -> re.Pattern[str]:
    """A custom rule's regex, compiled; refused when too long, invalid or catastrophic."""
    if not isinstance(text, str) or not text:
        raise ActionInputError(f"{where} must be a non-empty string", path=where)
    if len(text) > limit:
        raise ActionInputError(
            f"{where} is {len(text)} characters, longer than max_regex_length {limit}; "
            "use a shorter pattern",
            path=where,
        )
    try:
        compiled = re.compile(text)
    except (re.error, OverflowError, RecursionError) as exc:
        raise ActionInputError(
            f"{where} is not a valid regular expression: {one_line(str(exc))}", path=where
        ) from None
    if _nested_repeat(text):
        raise ActionInputError(
            f"{where}: {text[:40]!r} nests a variable repeat inside an unbounded one, which "
            "can backtrack for hours; rewrite it without nested quantifiers",
            path=where,
        )
    if compiled.fullmatch("") is not None:
        raise ActionInputError(
            f"{where}: {text[:40]!r} matches the empty string; a rule must match something",
            path=where,
        )
    return compiled


def parse_rules(rules: object, settings: SanitizeSettings) -> Sanitizer:
    """The ``rules`` payload field (or the default rules when ``None``) as a ``Sanitizer``."""
    salt = settings.salt.get_secret_value().encode("utf-8") if settings.salt else None
    if rules is None:
        defaults = [_PatternRule(PATTERNS[k], k, "mask") for k in dict.fromkeys(settings.patterns)]
        return Sanitizer(paths=[], patterns=defaults, mask=settings.mask, salt=salt)
    if not isinstance(rules, list):
        raise ActionInputError(
            f"action {KEY!r}: rules must be an array of rule objects, got {type(rules).__name__}",
            path="rules",
        )
    paths: list[_PathRule] = []
    patterns: list[_PatternRule] = []
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping):
            raise ActionInputError(
                f"{where} must be an object like {{\"path\": \"user.email\", \"action\": "
                f"\"mask\"}}, got {type(rule).__name__}",
                path=where,
            )
        unknown = sorted(str(k) for k in rule if k not in ("path", "pattern", "regex", "action"))
        if unknown:
            raise ActionInputError(
                f"{where}: unknown field {unknown[0]!r}; a rule has one of path, pattern, "
                "regex and an optional action",
                path=f"{where}.{unknown[0]}",
            )
        selectors = [k for k in ("path", "pattern", "regex") if k in rule]
        if len(selectors) != 1:
            raise ActionInputError(
                f"{where} must have exactly one of path, pattern or regex, "
                f"got {', '.join(selectors) or 'none'}",
                path=where,
            )
        action = rule.get("action", "mask")
        if action not in _ACTIONS:
            raise ActionInputError(
                f"{where}.action must be mask, hash or drop, got {action!r}",
                path=f"{where}.action",
            )
        if action == "hash" and salt is None:
            raise ActionInputError(
                f"{where}.action is hash, but the provider setting salt is not set; set "
                f"[action.provider_settings.\"{KEY}\".builtin] salt = \"${{secret:...}}\" "
                "or use mask",
                path=f"{where}.action",
            )
        selector = selectors[0]
        if selector == "path":
            paths.append(_PathRule(parse_path(rule["path"], f"{where}.path", wildcard=True),
                                   action))
            continue
        if action == "drop":
            raise ActionInputError(
                f"{where}.action drop needs a path rule; pattern and regex rules mask or hash "
                "what they match",
                path=f"{where}.action",
            )
        if selector == "pattern":
            kind = rule["pattern"]
            if kind not in PATTERNS:
                raise ActionInputError(
                    f"{where}.pattern must be one of {', '.join(PATTERNS)}, got {kind!r}; "
                    "give a custom pattern as regex",
                    path=f"{where}.pattern",
                )
            patterns.append(_PatternRule(PATTERNS[kind], kind, action))
        else:
            compiled = compile_regex(rule["regex"], f"{where}.regex", settings.max_regex_length)
            patterns.append(_PatternRule(compiled, "regex", action))
    return Sanitizer(paths=paths, patterns=patterns, mask=settings.mask, salt=salt)


_SECRETS = Sanitizer(
    paths=[], patterns=[_PatternRule(PATTERNS["bearer"], "bearer", "mask")], secret_keys=True
)


def redact_secrets(value: Any, where: str = "data") -> Any:
    """``value`` without secrets, for output (console lines, audit records); a copy.

    Registered settings secrets and ``SecretStr`` values, ``Bearer`` tokens in
    strings, and the values of secret-looking keys (``password``,
    ``api_key``, ``Authorization``, ``*_token``...) become ``**********``.
    ``ActionInputError`` at ``where`` if ``value`` nests deeper than
    ``MAX_DEPTH``.
    """
    check_depth(value, where)
    return _SECRETS.apply(value)


class Sanitize:
    """``data.sanitize`` provider ``builtin``."""

    spec = ActionSpec(
        description="mask/hash/drop by field path and pattern (e-mail, cards, bearer tokens)",
        idempotent=True,
        side_effects=False,
        blocking=True,
    )

    def __init__(self, settings: SanitizeSettings | None = None) -> None:
        self.settings = settings if settings is not None else SanitizeSettings()
        self._defaults = parse_rules(None, self.settings)

    def invoke(self, payload: Any, context: ActionContext) -> dict[str, Any]:
        fields = fields_of(payload, KEY, {"data", "rules"})
        data = take(fields, KEY, "data", (dict, list, str, int, float, bool, type(None)))
        rules = fields.get("rules")
        sanitizer = self._defaults if rules is None else parse_rules(rules, self.settings)
        check_depth(data, "data")
        return {"data": sanitizer.apply(data)}
