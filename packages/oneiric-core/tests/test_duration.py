"""``parse_duration``: the one reader of timeouts, grace periods and retention."""

from __future__ import annotations

import pytest

from oneiric.core import ConfigError
from oneiric.core.helpers import parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), (1.5, 1.5), ("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0),
     ("1d", 86400.0), ("1h30m", 5400.0), ("1.5s", 1.5), (" 10s ", 10.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    "value", ["30", "", "s", "-5s", "5 s", "5x", "1h-30m", -1, float("inf"), float("nan"),
              True, None, [5]],
)
def test_bad_durations_name_what(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_duration(value, what="handler timeout")
    assert str(info.value).startswith("handler timeout")
    assert "\n" not in str(info.value)
