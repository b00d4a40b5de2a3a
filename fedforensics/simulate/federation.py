"""A FedAvg federation in PyTorch with known malicious clients, recorded through the public recorder API."""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch
from torch import nn

from recorder import Recorder, RecorderError
from recorder.journal import journal_path, longest_run_name
from recorder.lock import FileBusyError, WriterLock

from .. import zoo
from ..errors import FedForensicsError
from ..interrupts import raise_if_interrupted
from .attacks import ATTACKS, SETTINGS, Attack, AttackContext, make_attack
from .data import Dataset, load_dataset, partition, train_test_split
from .triggers import make_trigger

#: The settings of the attackers themselves: a clean run (``--attack none``) records neither (it recorded the default
#: 0.2 of malicious clients and an attack start round it never had).
ATTACKER_SETTINGS = frozenset({"malicious_fraction", "attack_start_round"})

__all__ = ["FederationPlan", "SimulationConfig", "SimulationResult", "plan", "simulate"]

Progress = Callable[[int, int], None]


@dataclass
class SimulationConfig:
    """Every knob of a simulated federation; the defaults are the demo's backdoor run (docs/attacks.md)."""

    attack: str = "backdoor"
    malicious_fraction: float = 0.2
    clients: int = 10
    clients_per_round: int | None = None  # None: every client in every round
    rounds: int = 30
    seed: int = 0
    model: str = "cnn"
    dataset: str = "digits"
    partition: str = "iid"
    alpha: float = 0.5
    lr: float = 0.1
    momentum: float = 0.9
    local_epochs: int = 2
    batch_size: int = 32
    poison_rate: float = 1 / 3
    target: int = 6
    source: int = 7  # class-flip: the class whose images are labelled as the target
    trigger: str = "plus"
    flavour: str = "labels"
    boost: float = 5.0
    attack_start_round: int = 0
    test_fraction: float = 1 / 6

    def check(self) -> None:
        """Refuse settings that cannot make a federation, with the option's name."""
        if self.clients < 1:
            raise FedForensicsError(f"--clients must be at least 1, got {self.clients}")
        per_round = self.clients if self.clients_per_round is None else self.clients_per_round
        if not 1 <= per_round <= self.clients:
            raise FedForensicsError(f"--clients-per-round must be between 1 and --clients ({self.clients}), got {per_round}")
        if not 1 <= self.rounds < 2**63:  # round numbers are stored as int64 (docs/format.md)
            raise FedForensicsError(f"--rounds must be at least 1 and below 2**63, got {self.rounds}")
        if not 0 <= self.malicious_fraction < 1:
            raise FedForensicsError(f"--malicious-fraction must be in [0, 1), got {self.malicious_fraction}")
        if self.attack != "none" and self.malicious_count == 0:
            raise FedForensicsError(
                f"--malicious-fraction {self.malicious_fraction} of {self.clients} clients is no attacker: raise it or use --attack none"
            )
        if self.attack != "none" and self.malicious_count == self.clients:
            raise FedForensicsError(
                f"--malicious-fraction {self.malicious_fraction} of {self.clients} clients makes every client an attacker "
                f"({self.malicious_count} of {self.clients}, rounded to the nearest): lower it or add clients"
            )
        if self.model not in zoo.MODELS:
            raise FedForensicsError(f"unknown model {self.model!r}: choose one of {', '.join(zoo.MODELS)}")
        if self.partition not in ("iid", "dirichlet"):
            raise FedForensicsError(f"unknown partition {self.partition!r}: use 'iid' or 'dirichlet'")
        # every value is checked whatever the partition or attack it serves: one ignored here would be used in the
        # next command that changes --partition or --attack (a fresh-eyes user found --alpha checked only with dirichlet)
        for name in ("lr", "local_epochs", "batch_size", "boost", "alpha"):
            if not getattr(self, name) > 0 or not math.isfinite(getattr(self, name)):  # `not >` catches NaN
                raise FedForensicsError(f"--{name.replace('_', '-')} must be a positive, finite number, got {getattr(self, name)}")
        if not 0 < self.poison_rate <= 1:
            raise FedForensicsError(f"--poison-rate must be in (0, 1], got {self.poison_rate}")
        if self.flavour not in ("labels", "target-class"):
            raise FedForensicsError(f"unknown backdoor flavour {self.flavour!r}: use 'labels' or 'target-class'")
        # the other backdoors relabel (the labels flavour) whatever --flavour says: a run asked for as a clean-label
        # scaling attack was a poisoned-label one, its meta saying target-class (a review for researchers)
        if self.flavour != "labels" and self.attack in ATTACKS and ATTACKS[self.attack].backdoor and self.attack != "backdoor":
            raise FedForensicsError(
                f"--flavour {self.flavour} is a flavour of --attack backdoor only: {self.attack} relabels the images it "
                "stamps (the labels flavour); drop --flavour or use --attack backdoor"
            )
        if not 0 <= self.momentum < 1:
            raise FedForensicsError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.seed < 2**63:  # torch's seeds are 64-bit integers
            raise FedForensicsError(f"--seed must be 0 or more and below 2**63, got {self.seed}")
        if self.attack_start_round < 0:  # was refused as one after which 'the attackers would never attack'
            raise FedForensicsError(f"--attack-start-round must be 0 or more (the first round), got {self.attack_start_round}")
        if self.attack != "none" and self.attack_start_round >= self.rounds:
            raise FedForensicsError(
                f"--attack-start-round {self.attack_start_round} is not one of the rounds 0..{self.rounds - 1}: "
                "the attackers would never attack, yet be recorded as malicious"
            )

    @property
    def malicious_count(self) -> int:
        """How many clients attack: the fraction of the clients, rounded to the nearest (a half to the even number)."""
        return 0 if self.attack == "none" else round(self.malicious_fraction * self.clients)


@dataclass
class SimulationResult:
    """What a simulation did: where it wrote, who attacked, how the global model ended."""

    path: Path
    malicious: list[str]
    accuracy: float
    attack_success: float | None  # None unless the attack is targeted (a backdoor, a class flip)
    history: list[dict[str, float]] = field(default_factory=list)  # per round: accuracy (and attack_success)
    seconds: float = 0.0
    idle: dict[str, str] = field(default_factory=dict)  # attackers that never attacked, and why (:func:`_idle_attackers`)


class FederationPlan(NamedTuple):
    """What a simulation settles from its seed before the first round: the data's split, each client's shard, who
    attacks, and the generator it goes on drawing from (the poisoned copies, each round's sample of clients)."""

    data: Dataset
    train: Dataset
    test: Dataset
    shards: list[np.ndarray]  # per client, its samples' positions in ``train``
    malicious: list[int]  # the attackers' client indices, ascending
    rng: np.random.Generator


def plan(config: SimulationConfig) -> FederationPlan:
    """The set-up :func:`simulate` runs ``config`` with, drawn the same way: what a benchmark needs to know of a run
    beside its file (a class flipper's images of the source class, say) without simulating it again."""
    config.check()
    rng = np.random.default_rng(config.seed)
    data = load_dataset(config.dataset)
    train, test = train_test_split(data, config.test_fraction, rng)
    shards = partition(train.y, config.clients, rng, config.alpha if config.partition == "dirichlet" else None)
    malicious = sorted(rng.choice(config.clients, size=config.malicious_count, replace=False).tolist())
    return FederationPlan(data, train, test, shards, malicious, rng)


def client_id(index: int) -> str:
    """The id a simulated federation records for its client number ``index``: ``c0``, ``c1``, ..."""
    return f"c{index}"


def simulate(
    config: SimulationConfig,
    path: str | Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    source: str = "fedforensics simulate",
) -> SimulationResult:
    """Run the federation ``config`` describes and record it to ``path`` with its ground truth,
    the global model's accuracy (and attack success) per round, and the held-out split as clean data;
    ``source``: what the run's ``meta`` says wrote it."""
    started = time.perf_counter()
    torch.set_num_threads(1)  # small batches: a second thread only contends (12-30x slower here)
    data, train, test, shards, malicious, rng = plan(config)  # checks the config first
    # at full intensity: the data's brightest value (1.0 for the built-in digits and for grey levels read from 0..255;
    # a literal 1.0 on floats of 0..16 was a faint trigger, 56 % attack success against 96 %: QA)
    brightest = float(data.x.max())
    trigger = make_trigger(config.trigger, data.image_shape, value=brightest if brightest > 0 else 1.0)
    attack = make_attack(
        config.attack, trigger=trigger, target=config.target, num_classes=data.num_classes,
        poison_rate=config.poison_rate, flavour=config.flavour, boost=config.boost, attackers=len(malicious),
        source=config.source,
    )  # fmt: skip
    clients = [_Client(i, train, shard, attack if i in malicious else None, rng) for i, shard in enumerate(shards)]

    torch.manual_seed(config.seed)
    model = zoo.build(config.model, data.image_shape, data.num_classes)
    names = list(model.state_dict())
    shapes = [tuple(v.shape) for v in model.state_dict().values()]
    global_vector = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    evaluation = _Evaluation(test, attack.success_probe(test.x, test.y))
    per_round = config.clients if config.clients_per_round is None else config.clients_per_round

    def state(vector: torch.Tensor) -> dict[str, np.ndarray]:
        return {n: p.reshape(s).numpy() for n, s, p in zip(names, shapes, vector.split([int(np.prod(s)) for s in shapes]))}

    history: list[dict[str, float]] = []
    attacked: set[str] = set()  # the attackers sampled in a round they attacked in
    # Every refusal of the input (options, data, attack, model) happens above: only now is OUT
    # created, or its replacement started, so bad input leaves an existing run untouched.
    made: Path | None = None  # a new OUT, which the recorder made (it refuses an existing one without overwrite)
    try:
        with _recording_to(Path(path), overwrite) as target, Recorder(
            target, meta=_meta(config, data, clients, attack, source), overwrite=target != Path(path)
        ) as rec:
            # the file the recorder made, through a symbolic link too (review: the link went, the partial run stayed)
            made = Path(os.path.realpath(target)) if target == Path(path) else None
            rec.ground_truth([client_id(i) for i in malicious])
            rec.attach("clean_data", x=test.x, y=test.y)
            if attack.backdoor:
                rec.attach("trigger", mask=trigger.mask, pattern=trigger.pattern, target=np.int64(config.target))
            if progress is not None:  # the total from the start: a long first round showed '0/?' (a researcher's review)
                progress(0, config.rounds)
            for r in range(config.rounds):
                chosen = [clients[i] for i in sorted(rng.choice(config.clients, size=per_round, replace=False))]
                attacking = r >= config.attack_start_round
                attacked.update(c.cid for c in chosen if c.malicious and attacking)
                trained = {c.cid: c.train(model, global_vector, config, _generator(config.seed, r, c.index), attacking) for c in chosen}
                updates = _attack(attack if attacking else None, trained, [c.cid for c in chosen if c.malicious], rng)
                with rec.round(r, state(global_vector)) as rnd:
                    for c in chosen:
                        rnd.client(c.cid, state(torch.from_numpy(updates[c.cid])), num_samples=len(c.y), metrics=trained[c.cid][1], delta=True)
                    weights = np.array([len(c.y) for c in chosen], np.float64)
                    step = (weights / weights.sum()) @ np.stack([updates[c.cid] for c in chosen]).astype(np.float64)
                    global_vector = global_vector + torch.from_numpy(step.astype(np.float32))
                    scores = evaluation(model, global_vector)
                    rnd.global_metrics(scores)
                history.append(scores)
                if progress is not None:
                    progress(r + 1, config.rounds)
            raise_if_interrupted()  # a Ctrl-C dropped where it landed: no finished run
            rec.final(state(global_vector))
    except BaseException as exc:
        # Interrupted (Ctrl-C, SIGTERM), a partial run at a new OUT only blocked the same command run again ("exists
        # already"; QA): it goes. Failing on an error (a full disk), the rounds recorded stay, as the recorder keeps them.
        if made is not None and not isinstance(exc, Exception):
            made.unlink(missing_ok=True)
            journal_path(made).unlink(missing_ok=True)
        raise
    last = history[-1]
    return SimulationResult(
        Path(path), [client_id(i) for i in malicious], last["accuracy"], last.get("attack_success"),
        history, time.perf_counter() - started, _idle_attackers(config, attack, clients, attacked),
    )  # fmt: skip


def _idle_attackers(config: SimulationConfig, attack: Attack, clients: list[_Client], attacked: set[str]) -> dict[str, str]:
    """The attackers recorded as malicious that never attacked, each with why: none of the rounds sampled it once
    the attack had started, or its attack only poisons data and changed none of its own (a class flipper without an
    image of the source class, common on label-skewed shards). ``evaluate`` counts one that took part as missed."""
    data_only = type(attack).craft is Attack.craft
    since = f" from --attack-start-round {config.attack_start_round} on" if config.attack_start_round else ""
    idle = {}
    for c in clients:
        if c.malicious and c.cid not in attacked:
            idle[c.cid] = f"not sampled in any round{since}"
        elif c.malicious and data_only and c.poisoned_samples == 0:
            idle[c.cid] = f"its {config.attack} poisoning changed none of its {len(c.y)} samples: it trained as an honest client"
    return idle


@contextmanager
def _recording_to(path: Path, overwrite: bool) -> Iterator[Path]:
    """Where to record a run bound for ``path``: ``path`` itself, unless an existing file is to be replaced.

    Then a hidden sibling, moved onto ``path`` only once the simulation is complete: a simulation that
    fails or is interrupted part way removes its partial run and leaves the earlier one as it was
    (replacing it at the start had lost it for nothing). ``path`` is locked meanwhile, as a recorder locks
    the file it writes, so that no other writer starts on it and none is replaced under its feet. The new
    run keeps the old one's permissions, not its other names: a hard link to the old run keeps the old run;
    a symbolic link is followed. A process killed outright (SIGKILL) leaves the sibling behind; the next
    ``overwrite`` replaces it. The sibling is ``.NAME.simulating``, or ``.fedforensics-HASH.simulating`` where
    that name would be too long for a run (its journal's name must fit too).
    """
    if not (overwrite and path.exists()):
        yield path
        return
    path = Path(os.path.realpath(path))  # through a symbolic link, as the recorder writes: the link stays
    try:
        lock = WriterLock(path)
    except FileBusyError as exc:
        raise RecorderError(str(exc)) from None
    staging = path.with_name(f".{path.name}.simulating")
    if len(os.fsencode(staging.name)) > longest_run_name(staging):
        staging = path.with_name(f".fedforensics-{hashlib.sha256(os.fsencode(path.name)).hexdigest()[:16]}.simulating")
    try:
        yield staging
        os.chmod(staging, stat.S_IMODE(os.stat(path).st_mode))  # a run kept private stays so
        os.replace(staging, path)
        _sync_folder(path)
    except BaseException:
        staging.unlink(missing_ok=True)
        journal_path(staging).unlink(missing_ok=True)
        raise
    finally:
        lock.release()


def _sync_folder(path: Path) -> None:
    """Make the folder's entry for ``path`` durable (a replaced file's new name is in the folder, not the file)."""
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta(config: SimulationConfig, data: Dataset, clients: list[_Client], attack: Attack, source: str) -> dict[str, Any]:
    """The run's meta: the settings (of the attack's own, :data:`~.attacks.SETTINGS`, those it takes alone; of a clean
    run, no :data:`ATTACKER_SETTINGS`), the data's
    shape, the ground truth and, for an attack that poisons data, how many of each attacker's samples it changed (none:
    the attacker trained as an honest client)."""
    malicious = [c.index for c in clients if c.malicious]
    poisoned = {c.cid: c.poisoned_samples for c in clients if c.malicious}
    left_out = (SETTINGS - attack.settings) | (ATTACKER_SETTINGS if config.attack == "none" else frozenset())
    return {
        "source": source,
        "dataset": data.name,
        "image_shape": list(data.image_shape),
        "num_classes": data.num_classes,
        "model_factory": zoo.model_path(config.model, data.image_shape, data.num_classes),
        "config": {k: v for k, v in asdict(config).items() if k not in left_out},
        "data_sha256": data.sha256(),
        "versions": {name: _installed(name) for name in ("fedforensics", "torch", "numpy")},
        "malicious": [client_id(i) for i in malicious],
    } | ({"poisoned_samples": poisoned} if type(attack).poison is not Attack.poison else {})


def _installed(package: str) -> str | None:
    """The installed version of ``package`` (``None`` where none is installed: fedforensics run from a source folder)."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Client:
    """One client's shard; a malicious client also holds the poisoned copy it trains on once the attack starts."""

    def __init__(self, index: int, train: Dataset, shard: np.ndarray, attack: Attack | None, rng: np.random.Generator) -> None:
        self.index, self.cid = index, client_id(index)
        self.x, self.y = train.x[shard], train.y[shard]
        self.malicious = attack is not None
        self.poisoned = attack.poison(self.x, self.y, rng) if attack is not None else None
        self.poisoned_samples = 0  # how many of its samples the poisoning changed (image or label)
        if self.poisoned is not None:
            x, y = self.poisoned
            self.poisoned_samples = int(((x != self.x).reshape(len(y), -1).any(axis=1) | (y != self.y)).sum())

    def train(
        self, model: nn.Module, global_vector: torch.Tensor, config: SimulationConfig, generator: torch.Generator, attacking: bool
    ) -> tuple[np.ndarray, dict[str, float]]:
        """Local SGD from the global model: the update (local − global) and the last epoch's loss and accuracy."""
        x, y = self.poisoned if attacking and self.poisoned is not None else (self.x, self.y)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        nn.utils.vector_to_parameters(global_vector.clone(), model.parameters())  # the parameters view the vector
        model.train()
        optimiser = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        for _ in range(config.local_epochs):
            loss_sum, correct = 0.0, 0
            for batch in torch.randperm(len(yt), generator=generator).split(config.batch_size):
                optimiser.zero_grad()
                logits = model(xt[batch])
                loss = nn.functional.cross_entropy(logits, yt[batch])
                loss.backward()
                optimiser.step()
                loss_sum += loss.item() * len(batch)
                correct += int((logits.argmax(1) == yt[batch]).sum())
        local = nn.utils.parameters_to_vector(model.parameters()).detach()
        metrics = {"train_loss": loss_sum / len(yt), "train_accuracy": correct / len(yt)}
        return (local - global_vector).numpy(), metrics


def _generator(seed: int, round: int, client: int) -> torch.Generator:
    """The batch order of one client in one round: the same seed gives the same updates, bit for bit."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, round, client]).generate_state(1)[0]))


def _attack(
    attack: Attack | None, trained: dict[str, tuple[np.ndarray, dict[str, float]]], attackers: list[str], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every participant's update, the attackers' replaced by what the attack crafts."""
    updates = {cid: update for cid, (update, _) in trained.items()}
    if attack is None or not attackers:
        return updates
    honest = [update for cid, update in updates.items() if cid not in attackers]
    size = next(iter(updates.values())).size
    context = AttackContext(
        np.stack(honest) if honest else np.empty((0, size), np.float32),
        {cid: updates[cid] for cid in attackers},
        len(updates),
        rng,
    )
    updates.update(attack.craft(context))
    return updates


class _Evaluation:
    """The global model's accuracy on the held-out split and, for a targeted attack, its attack
    success: the share of the attack's probe (:meth:`Attack.success_probe`: for a backdoor the
    held-out images not of the target class with the trigger stamped, for a class flip those of
    the source class) classified as the target."""

    def __init__(self, test: Dataset, probe: tuple[np.ndarray, int] | None) -> None:
        self.x = torch.from_numpy(test.x)
        self.y = torch.from_numpy(test.y)
        self.probe = (torch.from_numpy(probe[0]), probe[1]) if probe is not None and len(probe[0]) else None

    @torch.no_grad()
    def __call__(self, model: nn.Module, vector: torch.Tensor) -> dict[str, float]:
        nn.utils.vector_to_parameters(vector, model.parameters())
        model.eval()
        scores = {"accuracy": float((model(self.x).argmax(1) == self.y).float().mean())}
        if self.probe is not None:
            x, target = self.probe
            scores["attack_success"] = float((model(x).argmax(1) == target).float().mean())
        return scores
