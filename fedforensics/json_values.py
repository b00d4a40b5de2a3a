"""Numbers and parameter values as the JSON reports write them (strict JSON has no NaN or infinity)."""

from __future__ import annotations

import math


def setting_json(value: object) -> object:
    """A parameter's value as JSON: a non-finite float as the string ``"inf"``/``"-inf"``/``"nan"`` (strict JSON has
    none, and ``null`` means "off" for the parameters that take ``None``); anything else as it is."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def json_float(value: float | None) -> float | None:
    """A number for a JSON report: rounded to 6 decimals, ``None`` for a missing or non-finite one (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(round(value, 6))
