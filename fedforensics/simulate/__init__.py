"""``fedforensics simulate``: FedAvg federations with known attackers, recorded like any user's loop."""

from .attacks import ATTACKS, Attack, AttackContext, make_attack
from .data import Dataset, load_dataset, partition, train_test_split
from .federation import SimulationConfig, SimulationResult, simulate
from .triggers import TRIGGERS, Trigger, make_trigger

__all__ = [
    "ATTACKS", "Attack", "AttackContext", "Dataset", "SimulationConfig", "SimulationResult", "TRIGGERS",
    "Trigger", "load_dataset", "make_attack", "make_trigger", "partition", "simulate", "train_test_split",
]  # fmt: skip
