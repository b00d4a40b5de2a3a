"""``fedforensics simulate``: FedAvg federations with known attackers, recorded like any user's loop."""

from .attacks import ATTACKS, Attack, AttackContext, make_attack
from .data import Dataset, load_dataset, partition, train_test_split
from .federation import FederationPlan, SimulationConfig, SimulationResult, plan, simulate
from .triggers import TRIGGERS, Trigger, make_trigger

__all__ = [
    "ATTACKS", "Attack", "AttackContext", "Dataset", "FederationPlan", "SimulationConfig", "SimulationResult", "TRIGGERS",
    "Trigger", "load_dataset", "make_attack", "make_trigger", "partition", "plan", "simulate", "train_test_split",
]  # fmt: skip
