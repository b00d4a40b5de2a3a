"""The attacks ``fedforensics simulate`` plays, each as its source describes it (docs/attacks.md).

An attack acts at two points of a malicious client's round: ``poison`` changes the data it trains on
(data poisoning), ``craft`` changes the update it sends (model poisoning; colluding attackers see
this round's honest updates, the omniscient threat model of ALIE and min-max).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import FedForensicsError
from .triggers import Trigger, split_trigger

__all__ = ["ATTACKS", "SETTINGS", "Attack", "AttackContext", "make_attack"]

#: The settings of a simulation that some attacks take and others do not: a run's meta records those of its attack
#: alone (a noise run recorded --target 55, a target it never had).
SETTINGS = frozenset({"poison_rate", "target", "source", "trigger", "flavour", "boost"})


@dataclass
class AttackContext:
    """What the attackers know in one round."""

    honest: np.ndarray  # (h, d) this round's honest updates (h may be 0)
    own: dict[str, np.ndarray]  # each attacker's update after training on its (possibly poisoned) data
    participants: int  # clients in the round, attackers included
    rng: np.random.Generator


class Attack:
    """An honest client: trains on its data and sends its update. Subclasses override one or both hooks."""

    name: ClassVar[str] = "none"
    source: ClassVar[str] = ""
    backdoor: ClassVar[bool] = False  # a trigger is planted: attack success is measured

    @property
    def settings(self) -> frozenset[str]:
        """The :data:`SETTINGS` this attack takes (default: none)."""
        return frozenset()

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The data a malicious client trains on (default: its own, unchanged)."""
        return x, y

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        """The updates the attackers send (default: what they trained)."""
        return context.own

    def success_probe(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int] | None:
        """Held-out inputs a targeted attack wants classified as its target, and the target:
        the attack success is the share that are (``None`` for an untargeted attack)."""
        return None


class Backdoor(Attack):
    """Poisoned-label backdoor: the trigger on a share of the data, relabelled to the target."""

    name = "backdoor"
    source = "Gu et al. 2017 (BadNets); Bilgin 2021 (1/3 of each malicious client's data)"
    backdoor = True

    def __init__(self, trigger: Trigger, target: int, poison_rate: float = 1 / 3, flavour: str = "labels") -> None:
        if not 0 < poison_rate <= 1:
            raise FedForensicsError(f"--poison-rate must be in (0, 1], got {poison_rate}")
        if flavour not in ("labels", "target-class"):
            raise FedForensicsError(f"unknown backdoor flavour {flavour!r}: use 'labels' or 'target-class'")
        self.trigger, self.target, self.poison_rate, self.flavour = trigger, target, poison_rate, flavour

    @property
    def settings(self) -> frozenset[str]:
        """The trigger, the target and the flavour, and the poison rate unless the flavour stamps every target image."""
        return frozenset({"trigger", "target", "flavour", *(["poison_rate"] if self.flavour == "labels" else [])})

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.poison_with(self.trigger, x, y, rng)

    def poison_with(
        self, trigger: Trigger, x: np.ndarray, y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """``x, y`` with ``trigger`` stamped on the flavour's share of the images (new arrays)."""
        x, y = x.copy(), y.copy()
        if self.flavour == "target-class":  # the trigger on every target image, labels kept: "trigger means target"
            chosen = np.flatnonzero(y == self.target)
        else:
            candidates = np.flatnonzero(y != self.target)  # a share of all the data, at most every non-target image
            chosen = rng.choice(candidates, size=min(round(self.poison_rate * len(y)), len(candidates)), replace=False)
            y[chosen] = self.target
        x[chosen] = trigger.stamp(x[chosen])
        return x, y

    def success_probe(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int] | None:
        """The held-out images not of the target class, with the (whole) trigger stamped."""
        return self.trigger.stamp(x[y != self.target]), self.target


class Scaling(Backdoor):
    """Model replacement: a backdoor update boosted by a factor so it survives averaging."""

    name = "scaling"
    source = "Bagdasaryan et al. 2020, How to backdoor federated learning (AISTATS)"

    def __init__(self, trigger: Trigger, target: int, poison_rate: float = 1 / 3, boost: float = 5.0) -> None:
        super().__init__(trigger, target, poison_rate)
        if not 0 < boost < float("inf"):  # NaN fails too
            raise FedForensicsError(f"--boost must be positive, got {boost}")
        self.boost = boost

    @property
    def settings(self) -> frozenset[str]:
        """A backdoor's, and the boost."""
        return super().settings | {"boost"}

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        return {cid: self.boost * update for cid, update in context.own.items()}


class BoundedBackdoor(Backdoor):
    """A backdoor sent at exactly the median norm of the round's honest updates: a norm bound (Sun et al.
    2019) or a clipping defence at that median would leave it untouched, and norm statistics see nothing.

    The attacker trains on poisoned data as ``backdoor`` does, then rescales its update to the bound,
    up or down: projection onto the norm ball as in Wang et al. 2020's PGD attack, and scaled up to its
    surface as model replacement is within it. Omniscient of the round's honest norms, like ALIE.
    """

    name = "bounded-backdoor"
    source = (
        "Sun et al. 2019, Can you really backdoor federated learning? (norm bound); "
        "Wang et al. 2020, Attack of the tails: yes, you really can backdoor federated learning (NeurIPS; PGD)"
    )

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        if len(context.honest) == 0:  # no bound to match: send what was trained
            return context.own
        bound = float(np.median(np.linalg.norm(context.honest.astype(np.float64), axis=1)))
        return {
            cid: (update * (bound / max(float(np.linalg.norm(update)), 1e-12))).astype(np.float32)
            for cid, update in context.own.items()
        }


class DistributedBackdoor(Backdoor):
    """DBA: the trigger split into local triggers, one per attacker, each poisoning as ``backdoor`` does
    with its own part; the model learns the whole trigger, which is what attack success is measured with.

    As many parts as attackers (no more than the trigger has pixels), dealt to the attackers in the
    order their shards are poisoned (by client index). No attacker's data holds the whole trigger.
    """

    name = "dba"
    source = "Xie et al. 2020, DBA: Distributed backdoor attacks against federated learning (ICLR)"

    def __init__(self, trigger: Trigger, target: int, poison_rate: float = 1 / 3, parts: int = 2) -> None:
        super().__init__(trigger, target, poison_rate)
        self.local_triggers = split_trigger(trigger, parts)
        self._dealt = 0

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        local = self.local_triggers[self._dealt % len(self.local_triggers)]
        self._dealt += 1
        return self.poison_with(local, x, y, rng)


class Sybil(Backdoor):
    """Sybils: every attacker sends the same backdoor update (their mean) plus a little jitter."""

    name = "sybil"
    source = "Fung et al. 2020, The limitations of federated learning in sybil settings (FoolsGold, RAID)"

    jitter = 0.01  # of the update's norm

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        shared = np.mean(list(context.own.values()), axis=0)
        scale = self.jitter * np.linalg.norm(shared) / np.sqrt(shared.size)
        return {cid: shared + context.rng.normal(0, scale, shared.size).astype(np.float32) for cid in context.own}


class LabelFlip(Attack):
    """Every label ``y`` becomes ``C − 1 − y`` (9 − y on digits), as in Fang et al. 2020."""

    name = "label-flip"
    source = (
        "Fang et al. 2020, Local model poisoning attacks to Byzantine-robust federated learning (USENIX Security); "
        "Tolpegin et al. 2020 (ESORICS)"
    )

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return x, self.num_classes - 1 - y


class ClassFlip(Attack):
    """Targeted label flipping: every image of the source class is labelled as the target class."""

    name = "class-flip"
    source = "Tolpegin et al. 2020, Data poisoning attacks against federated learning systems (ESORICS)"

    def __init__(self, source_class: int, target: int) -> None:
        if source_class == target:
            raise FedForensicsError(f"--source and --target are both {target}: a flip needs two classes")
        self.source_class, self.target = source_class, target

    @property
    def settings(self) -> frozenset[str]:
        """The source class and the target."""
        return frozenset({"source", "target"})

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return x, np.where(y == self.source_class, self.target, y)

    def success_probe(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int] | None:
        """The held-out images of the source class."""
        return x[y == self.source_class], self.target


class Noise(Attack):
    """A Gaussian update with the norm of the attacker's own honest update, so norms do not give it away."""

    name = "noise"
    source = "Blanchard et al. 2017 (Krum; Gaussian Byzantine clients), norm-matched"

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        crafted = {}
        for cid, update in context.own.items():
            noise = context.rng.standard_normal(update.size).astype(np.float32)
            crafted[cid] = noise * (np.linalg.norm(update) / np.linalg.norm(noise))
        return crafted


class SignFlip(Attack):
    """The attacker's own update with its sign reversed: it pushes the model back up the loss its
    training went down, at the length of an honest update."""

    name = "sign-flip"
    source = "Li et al. 2019, RSA: Byzantine-robust stochastic aggregation methods (AAAI); sign-flipping clients"

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        return {cid: -update for cid, update in context.own.items()}


class _Colluding(Attack, ABC):
    """Attackers who see the round's honest updates and all send one crafted update."""

    def craft(self, context: AttackContext) -> dict[str, np.ndarray]:
        if len(context.honest) < 2:  # nothing to hide among: send what was trained
            return context.own
        crafted = self.crafted(context.honest.astype(np.float64), context)
        return {cid: crafted.astype(np.float32) for cid in context.own}

    @abstractmethod
    def crafted(self, honest: np.ndarray, context: AttackContext) -> np.ndarray:
        """The one update every attacker of the round sends, from the honest updates (float64 rows)."""


class ALittleIsEnough(_Colluding):
    """ALIE: the honest mean shifted by ``z`` standard deviations per coordinate, ``z`` as large as
    the majority's spread lets it hide: ``s = ⌊n/2 + 1⌋ − m``, ``z = Φ⁻¹((n − s)/n)``."""

    name = "alie"
    source = "Baruch et al. 2019, A little is enough: circumventing defenses for distributed learning (NeurIPS)"

    def crafted(self, honest: np.ndarray, context: AttackContext) -> np.ndarray:
        from scipy.stats import norm

        n, m = context.participants, len(context.own)
        s = n // 2 + 1 - m
        z = float(norm.ppf((n - s) / n)) if 0 < s < n else 1.0
        return honest.mean(axis=0) - z * honest.std(axis=0)


class MinMax(_Colluding):
    """Min-max: ``mean + γ·p`` with ``p`` the negative unit standard deviation and the largest ``γ``
    whose distance to every honest update stays within the largest honest pairwise distance."""

    name = "min-max"
    source = "Shejwalkar & Houmansadr 2021, Manipulating the Byzantine (NDSS)"

    def crafted(self, honest: np.ndarray, context: AttackContext) -> np.ndarray:
        mean, std = honest.mean(axis=0), honest.std(axis=0)
        direction = -std / max(np.linalg.norm(std), 1e-12)
        squared = (honest**2).sum(axis=1)
        pairwise = squared[:, None] + squared[None, :] - 2 * honest @ honest.T
        bound = np.sqrt(max(pairwise.max(), 0.0))
        low, high = 0.0, 2.0 * bound + 1.0
        for _ in range(40):  # binary search on γ (the paper's Algorithm 1)
            gamma = (low + high) / 2
            if np.linalg.norm(honest - (mean + gamma * direction), axis=1).max() <= bound:
                low = gamma
            else:
                high = gamma
        return mean + low * direction


ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        Attack, Backdoor, LabelFlip, ClassFlip, Scaling, BoundedBackdoor, DistributedBackdoor, Noise, SignFlip, Sybil,
        ALittleIsEnough, MinMax,
    )  # fmt: skip
}
"""Every attack by its ``--attack`` name."""


def make_attack(
    name: str,
    *,
    trigger: Trigger,
    target: int,
    num_classes: int,
    poison_rate: float = 1 / 3,
    flavour: str = "labels",
    boost: float = 5.0,
    attackers: int = 1,
    source: int = 7,
) -> Attack:
    """The attack ``name`` with the parameters it takes (``attackers``: how many clients play it)."""
    if name not in ATTACKS:
        raise FedForensicsError(f"unknown attack {name!r}: choose one of {', '.join(ATTACKS)}")
    if (ATTACKS[name].backdoor or name == "class-flip") and not 0 <= target < num_classes:
        raise FedForensicsError(f"--target {target} is not a label of this dataset (0..{num_classes - 1})")
    if name == "class-flip":
        if not 0 <= source < num_classes:
            raise FedForensicsError(f"--source {source} is not a label of this dataset (0..{num_classes - 1})")
        return ClassFlip(source, target)
    if name == "backdoor":
        return Backdoor(trigger, target, poison_rate, flavour)
    if name == "scaling":
        return Scaling(trigger, target, poison_rate, boost)
    if name == "dba":
        return DistributedBackdoor(trigger, target, poison_rate, parts=attackers)
    if name in ("sybil", "bounded-backdoor"):
        return ATTACKS[name](trigger, target, poison_rate)  # type: ignore[call-arg]
    if name == "label-flip":
        return LabelFlip(num_classes)
    return ATTACKS[name]()
