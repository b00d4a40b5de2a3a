"""Detector and verdict parameters given on the command line: ``--set DETECTOR.PARAMETER=VALUE``.

Thresholds are parameters (docs/detectors.md says how the defaults were set); an auditor who
calibrates them on a clean federation of their own passes them here, e.g.
``--set norm.threshold=4.5 --set verdict.strong=3``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .detectors import Detector, all_detectors, get_detector
from .errors import FedForensicsError
from .json_values import setting_json
from .verdict import PUSH_PARAMETERS, ConsensusRule

#: The name that addresses the verdict rule's parameters (:class:`~fedforensics.verdict.ConsensusRule`).
VERDICT = "verdict"

Value = float | int | bool | str | None


@dataclass
class Settings:
    """Parameters by detector name, and the verdict rule's; each validated against its signature."""

    detectors: dict[str, dict[str, Value]] = field(default_factory=dict)
    rule: dict[str, Value] = field(default_factory=dict)

    def build_detectors(self, names: Sequence[str] | None = None) -> list[Detector]:
        """Fresh instances of the detectors ``names`` (default: every registered one) with these parameters."""
        chosen = list(dict.fromkeys(names)) if names else list(all_detectors())  # `-d norm -d norm` runs it once
        for name, params in self.detectors.items():
            if name not in chosen:
                raise FedForensicsError(
                    f"--set {name}.{next(iter(params))}: {name} is not among the detectors chosen with --detector "
                    f"({', '.join(chosen)})"
                )
        return [get_detector(name, **self.detectors.get(name, {})) for name in chosen]

    def refuse_push_settings(self, where: str) -> None:
        """Refuse ``verdict.push`` and ``verdict.push_score`` where no clean push is measured (``where`` says why):
        set there, they would change nothing and say nothing."""
        given = [name for name in PUSH_PARAMETERS if name in self.rule]
        if given:
            raise FedForensicsError(
                f"--set verdict.{given[0]}: the clean push is measured only by trigger inversion (analyze --model), "
                f"so it does nothing {where}"
            )

    def build_rule(self) -> ConsensusRule:
        """The verdict rule with the parameters given under ``verdict``, the others at their defaults."""
        return ConsensusRule(**self.rule)  # type: ignore[arg-type]

    @classmethod
    def of(cls, detectors: Sequence[Detector], rule: ConsensusRule) -> Settings:
        """The parameters of ``detectors`` and ``rule`` that differ from their classes' defaults, however they were
        made (``--set``, or Python: ``get_detector("norm", threshold=1000)``)."""
        changed = {}
        for detector in detectors:
            defaults = {
                p.name: p.default for p in inspect.signature(type(detector).__init__).parameters.values()
                if p.default is not inspect.Parameter.empty
            }
            params = {k: v for k, v in detector.get_params().items() if k in defaults and v != defaults[k]}
            if params:
                changed[detector.name] = params
        default_rule = ConsensusRule()
        rule_params = {
            f.name: getattr(rule, f.name) for f in dataclasses.fields(ConsensusRule)
            if getattr(rule, f.name) != getattr(default_rule, f.name)
        }
        return cls(changed, rule_params)  # type: ignore[arg-type]

    def describe(self) -> str:
        """The parameters given, as they were written (``norm.threshold=4.5, verdict.strong=3``), or '' for none."""
        given = {**self.detectors, VERDICT: self.rule} if self.rule else dict(self.detectors)
        return ", ".join(f"{name}.{k}={_shown(v)}" for name, params in given.items() for k, v in params.items())

    def to_json(self) -> dict[str, dict[str, object]]:
        """The parameters given, by detector name and under ``verdict`` (infinities as ``"inf"``: JSON has none)."""
        given = {**self.detectors, VERDICT: self.rule} if self.rule else dict(self.detectors)
        return {name: {k: setting_json(v) for k, v in params.items()} for name, params in given.items()}


def _defaults(name: str, item: str) -> dict[str, tuple[object, object]]:
    """The parameters ``name`` (a detector, or ``verdict``) takes, with their defaults and annotations (a string
    under ``from __future__ import annotations``: it says whether a parameter takes ``None``, as
    ``norm.extreme_share``, which is on by default and can be switched off, or text) (``item``: for the error)."""
    if name == VERDICT:
        return {f.name: (f.default, f.type) for f in dataclasses.fields(ConsensusRule)}
    registry = all_detectors()
    if name not in registry:
        raise FedForensicsError(
            f"--set {item}: no detector {name!r}; known: {', '.join(registry)}, and {VERDICT!r} for the verdict rule"
        )
    signature = inspect.signature(registry[name].__init__)
    return {
        p.name: (p.default, p.annotation)
        for p in signature.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _passes_on(name: str) -> bool:
    """Whether detector ``name``'s ``__init__`` takes ``**kwargs`` (whose parameters its signature does not name)."""
    registry = all_detectors()
    return name in registry and any(
        p.kind == p.VAR_KEYWORD for p in inspect.signature(registry[name].__init__).parameters.values()
    )


def _shown(value: Value) -> str:
    """A parameter's value as a user would write it: ``1000``, ``4.1234567``, ``inf``, ``none``, ``true``, text
    (not rounded)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, (int, str)) else repr(float(value)).removesuffix(".0")


def _kind(default: object, annotation: object) -> tuple[str, bool]:
    """What a parameter takes, ``"bool"``, ``"str"`` or ``"number"``, by its default or else its annotation (a
    custom detector's text or switch), and whether it admits ``None``."""
    words = set(re.findall(r"\w+", annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))))
    optional = default is None or bool(words & {"None", "Optional"})
    typed = default is None or default is inspect.Parameter.empty  # no default to go by: the annotation says
    if isinstance(default, bool) or (typed and "bool" in words and not words & {"int", "float"}):
        return "bool", optional
    if isinstance(default, str) or (typed and "str" in words and not words & {"int", "float"}):
        return "str", optional
    return "number", optional


#: How a switch may be written.
_SWITCH = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _value(text: str, default: object, annotation: object, item: str) -> Value:
    kind, optional = _kind(default, annotation)
    if text.lower() == "none":
        if not optional:
            raise FedForensicsError(f"--set {item}: this parameter needs {'a number' if kind == 'number' else 'a value'}")
        return None
    if kind == "str":
        return text
    if kind == "bool":
        if text.lower() not in _SWITCH:
            raise FedForensicsError(f"--set {item}: {text!r} is not a switch (true or false)")
        return _SWITCH[text.lower()]
    try:
        if "_" in text:  # Python's float() reads 3_0 as 30: a typo more likely than a digit separator
            raise ValueError
        number = float(text)
    except ValueError:
        raise FedForensicsError(f"--set {item}: {text!r} is not a number") from None
    if math.isnan(number):
        raise FedForensicsError(f"--set {item}: NaN is not a usable value")
    if isinstance(default, int) and not isinstance(default, bool):
        if not number.is_integer():
            raise FedForensicsError(f"--set {item}: this parameter takes a whole number")
        return int(number)
    return number


def parse_settings(items: Sequence[str]) -> Settings:
    """``["norm.threshold=4.5", "verdict.strong=3"]`` → :class:`Settings`, or one readable error."""
    settings = Settings()
    for item in items:
        key, sep, text = item.partition("=")
        name, dot, param = key.strip().rpartition(".")
        if not sep or not dot or not name or not param or not text.strip():
            raise FedForensicsError(f"--set {item}: write DETECTOR.PARAMETER=VALUE, e.g. norm.threshold=4.5")
        defaults = _defaults(name, item)
        if param not in defaults:
            hidden = (
                " (parameters passed on through **kwargs cannot be set: name them in __init__, scikit-learn's convention)"
                if _passes_on(name) else ""
            )
            raise FedForensicsError(
                f"--set {item}: {name} has no parameter {param!r}; its parameters: {', '.join(defaults)}{hidden}"
            )
        value = _value(text.strip(), *defaults[param], item)
        target = settings.rule if name == VERDICT else settings.detectors.setdefault(name, {})
        if param in target and target[param] != value:  # which one did the user mean?
            raise FedForensicsError(f"--set {item}: {name}.{param} is set twice, to {target[param]!r} and {value!r}")
        target[param] = value
    return settings
