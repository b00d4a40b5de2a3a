"""Trigger inversion: is the federation's model backdoored, towards which label, through what trigger?

Neural Cleanse (Wang et al., IEEE S&P 2019), batched over every label, on a
run's global model, and the trigger probe of the backdoor blog post.

>>> from fedforensics import open_run
>>> from fedforensics.inversion import invert_run, load_clean_data, load_model_factory
>>> run = open_run("run.h5")                                            # doctest: +SKIP
>>> x, y = load_clean_data("clean.npz")                                 # doctest: +SKIP
>>> report = invert_run(run, load_model_factory("fedforensics.zoo:digits_cnn"), x, y)  # doctest: +SKIP
>>> report.flagged_labels                                               # doctest: +SKIP
[6]
"""

from __future__ import annotations

from .inputs import (
    build_model,
    check_clean_data,
    check_model,
    check_trigger,
    load_clean_data,
    load_model_factory,
    load_state,
    load_trigger,
)
from .invert import RoundInversion, TriggerInversionReport, check_inputs, invert_run
from .neural_cleanse import LabelTrigger, NeuralCleanse, NeuralCleanseResult, anomaly_index, chance_index, stamp
from .probe import ProbeSet, TriggerProbe, partial_triggers, probe_triggers

__all__ = [
    "LabelTrigger",
    "NeuralCleanse",
    "NeuralCleanseResult",
    "ProbeSet",
    "RoundInversion",
    "TriggerInversionReport",
    "TriggerProbe",
    "anomaly_index",
    "chance_index",
    "build_model",
    "check_clean_data",
    "check_inputs",
    "check_model",
    "check_trigger",
    "invert_run",
    "load_clean_data",
    "load_model_factory",
    "load_state",
    "load_trigger",
    "partial_triggers",
    "probe_triggers",
    "stamp",
]
