"""Topic grammar and pattern matching (the one home oneiric-runtime and -remote share)."""

from __future__ import annotations

import pytest

from oneiric.core.helpers import MAX_TOPIC_LENGTH, is_topic, is_topic_pattern, topic_matcher


@pytest.mark.parametrize("topic", ["orders", "orders.created", "a-b.c_d.9", "x" * 255])
def test_valid_topics(topic: str) -> None:
    assert is_topic(topic) and is_topic_pattern(topic)


@pytest.mark.parametrize(
    "topic",
    ["", ".", "a..b", "a.", ".a", "Orders", "a b", "a.*", "a.#", "#", "*", "é", "a/b",
     "x" * (MAX_TOPIC_LENGTH + 1), None, 3, "a\n"],
)
def test_invalid_topics(topic: object) -> None:
    assert not is_topic(topic)


@pytest.mark.parametrize("pattern", ["#", "*", "a.*", "*.b", "a.#", "a.*.#", "*.*"])
def test_valid_patterns(pattern: str) -> None:
    assert is_topic_pattern(pattern)


@pytest.mark.parametrize("pattern", ["", "a.#.b", "#.a", "a*", "a.**", "a..b", "a.# ", "##"])
def test_invalid_patterns(pattern: str) -> None:
    assert not is_topic_pattern(pattern)
    with pytest.raises(ValueError):
        topic_matcher(pattern)


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("orders.created", "orders.created", True),
        ("orders.created", "orders.created.eu", False),
        ("orders.*", "orders.created", True),
        ("orders.*", "orders", False),
        ("orders.*", "orders.created.eu", False),
        ("*.created", "orders.created", True),
        ("orders.#", "orders", True),  # zero further segments, as AMQP
        ("orders.#", "orders.created.eu", True),
        ("orders.#", "ordersx.created", False),
        ("orders.*.#", "orders", False),
        ("orders.*.#", "orders.a.b.c", True),
        ("#", "anything.at.all", True),
        ("a.b", "a-b", False),  # the dot is literal
    ],
)
def test_matching(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matcher(pattern)(topic) is matches
