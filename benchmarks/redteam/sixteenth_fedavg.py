"""A sixteenth check's federations: an outside evaluator's own plain-PyTorch FedAvg on scikit-learn's digits (or a
``make_classification`` task), recorded only through the public ``recorder`` API (docs/detection.md, "A sixteenth check").

usage:
  python3 sixteenth_fedavg.py OUT.h5 --attack ATTACK --split SPLIT --model {mlp,cnn} --seed S
                [--clients 10 --per-round 0 --attackers 2 --rounds 20 --ids SHAPE --perturb {unit,std,sign}
                 --trigger {square,blend} --target 3 --poison 0.33 --data {digits,synth}]

Splits: ``iid`` (equal random shards), ``dir`` (Dirichlet label skew, --alpha 0.3), ``shards`` (pathological: the
training set sorted by label cut in 2 shards a client), ``qskew`` (quantity skew: lognormal sizes, sigma 1, IID labels).
Models (none of them a LeNet): ``mlp`` (two hidden layers, 96 and 48 units) and ``cnn`` (two 3x3 convolutions, the
second of stride 2, no pooling, one linear layer).
Client ids (--ids): ``plain`` (client-3), ``uuid``, ``site`` (hospital-07/site B), ``email`` (user7@example.org),
``zeropad`` (0007), ``unicode`` (客户-3), ``mixed`` (each client one of those shapes in turn).

Attacks (each attacker attacks in every round it is drawn in, written from the papers):
  none     a clean control
  alie     Baruch et al. 2019, "A little is enough": s = floor(n/2 + 1) - m, z = Phi^-1((n - s)/n) for the round's n
           clients of which m attackers; every attacker sends mean - z * std (coordinate-wise) of the round's benign
           updates (full knowledge)
  minmax   Shejwalkar & Houmansadr, NDSS 2021: the benign mean plus gamma times a perturbation (--perturb: minus the
           mean's unit vector, minus the coordinate-wise std, or minus the mean's sign), gamma the largest (the paper's
           search from gamma 10, to 1e-5) whose largest distance to a benign update is at most the largest distance
           between two benign updates; every attacker sends it
  minsum   the same with the sum of squared distances to the benign updates at most the largest such sum of a benign one
  sybil    FoolsGold's setting (Fung et al. 2020): the attackers are sybils that hold one copy of the same data, the first
           sybil's shard with every 1 labelled 7 (topped up to 40 ones from the training pool), each training it as an
           honest client trains (own batch order)
  backdoor data poisoning with a trigger (--trigger square: a 2x2 white square in the bottom-left corner; blend: a fixed
           random pattern blended in at 0.3) and --target: --poison (a third) of each attacker's samples stamped and
           relabelled
  scaling  Bagdasaryan et al. 2020, model replacement: the backdoor (square trigger, --target) trained as above from
           the round's global model, its update boosted by n / (eta * m) (eta = 1, the server's; n the round's
           clients, m its attackers), from the second fifth of the run on (before, the attackers train honestly)

Every client reports train_loss and train_accuracy (of its last local epoch; a model-poisoning attacker reports its
honest training's) and the sample count it trained on. Each round's global metrics: ``accuracy`` on held-out data and,
for sybil, backdoor and scaling runs, ``attack_success`` (held-out 1s taken for 7, or held-out stamped inputs of
another label taken for the target).
"""
from __future__ import annotations

import argparse
import math
import random
import uuid

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import norm as normal
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from torch import nn

from recorder import Recorder

torch.set_num_threads(1)
#: The weight of the blended trigger's pattern.
BLEND = 0.3


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--attack", default="none", choices=["none", "alie", "minmax", "minsum", "sybil", "backdoor", "scaling"])
    p.add_argument("--split", default="iid", choices=["iid", "dir", "shards", "qskew"])
    p.add_argument("--alpha", type=float, default=0.3)
    p.add_argument("--model", default="mlp", choices=["mlp", "cnn"])
    p.add_argument("--data", default="digits", choices=["digits", "synth"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--per-round", type=int, default=0, help="clients drawn a round (0: all)")
    p.add_argument("--attackers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--ids", default="plain", choices=["plain", "uuid", "site", "email", "zeropad", "unicode", "mixed"])
    p.add_argument("--perturb", default="std", choices=["unit", "std", "sign"])
    p.add_argument("--trigger", default="square", choices=["square", "blend"])
    p.add_argument("--target", type=int, default=3)
    p.add_argument("--poison", type=float, default=1 / 3, help="share of a backdoor attacker's samples stamped")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="alie, minmax, minsum: each attacker adds its own normal noise of this times the benign std (0: "
                   "every attacker sends the same update, as in the papers)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=0.1)
    return p.parse_args()


class MLP(nn.Module):
    def __init__(self, inputs: int, classes: int) -> None:
        super().__init__()
        self.hidden1, self.hidden2, self.out = nn.Linear(inputs, 96), nn.Linear(96, 48), nn.Linear(48, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return self.out(F.relu(self.hidden2(F.relu(self.hidden1(x)))))


class StridedCNN(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(1, 16, 3, padding=1)
        self.conv_b = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.head = nn.Linear(32 * 4 * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.conv_b(F.relu(self.conv_a(x)))).flatten(1))


def strided_cnn() -> nn.Module:
    """The CNN of a digits run, for ``fedforensics analyze RUN --model sixteenth_fedavg:strided_cnn`` (run from this
    folder): trigger inversion on its global model."""
    return StridedCNN(10)


def client_ids(shape: str, k: int, rng: random.Random) -> list[str]:
    shapes = ["plain", "uuid", "site", "email", "zeropad", "unicode"]
    out = []
    for i in range(k):
        s = shapes[i % len(shapes)] if shape == "mixed" else shape
        out.append({
            "plain": lambda: f"client-{i}",
            "uuid": lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "site": lambda: f"hospital-{i:02d}/site {'ABC'[i % 3]}",
            "email": lambda: f"user{i}@example.org",
            "zeropad": lambda: f"{i:04d}",
            "unicode": lambda: f"客户-{i}",
        }[s]())
    return out


def split(y: np.ndarray, k: int, how: str, alpha: float, rng: np.random.Generator) -> list[np.ndarray]:
    n = len(y)
    if how == "iid":
        return np.array_split(rng.permutation(n), k)
    if how == "qskew":
        sizes = rng.lognormal(0, 1.0, k)
        sizes = np.maximum(8, np.floor(sizes / sizes.sum() * n)).astype(int)
        while sizes.sum() > n:
            sizes[np.argmax(sizes)] -= sizes.sum() - n
        return np.split(rng.permutation(n), np.cumsum(sizes)[:-1])[:k]
    if how == "shards":
        order = np.argsort(y + rng.random(n) * 0.1, kind="stable")
        shards = np.array_split(order, 2 * k)
        pick = rng.permutation(2 * k)
        return [np.concatenate([shards[pick[2 * i]], shards[pick[2 * i + 1]]]) for i in range(k)]
    while True:  # Dirichlet label skew, redrawn until every client holds 8 samples
        parts: list[list[int]] = [[] for _ in range(k)]
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            cuts = (np.cumsum(rng.dirichlet([alpha] * k)) * len(idx)).astype(int)[:-1]
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i] += chunk.tolist()
        if min(map(len, parts)) >= 8:
            return [np.array(p) for p in parts]


def stamp(x: torch.Tensor, kind: str, pattern: torch.Tensor) -> torch.Tensor:
    """Inputs with the trigger: a white 2x2 square in the bottom-left corner, or the pattern blended in at BLEND."""
    image = x.reshape(-1, 8, 8).clone()
    if kind == "square":
        image[:, 6:8, 0:2] = 1.0
    else:
        image = (1 - BLEND) * image + BLEND * pattern
    return image.reshape(x.shape)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, gen: torch.Generator) -> dict[str, float]:
    """Local SGD; the loss and accuracy of the last epoch."""
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    model.train()
    for _ in range(args.epochs):
        order = torch.randperm(len(x), generator=gen)
        loss_sum, correct = 0.0, 0
        for b in range(0, len(x), args.batch):
            i = order[b : b + args.batch]
            out = model(x[i])
            loss = F.cross_entropy(out, y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(i)
            correct += int((out.argmax(1) == y[i]).sum())
    return {"train_loss": loss_sum / len(x), "train_accuracy": correct / len(x)}


def flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.flatten() for v in state.values()])


def unflat(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, at = {}, 0
    for k, v in like.items():
        out[k] = vector[at : at + v.numel()].view_as(v).clone()
        at += v.numel()
    return out


def gamma_search(benign: torch.Tensor, mean: torch.Tensor, perturb: torch.Tensor, kind: str) -> float:
    """Shejwalkar & Houmansadr's search for the largest gamma that keeps mean + gamma * perturb within the bound."""
    d = torch.cdist(benign, benign)
    if kind == "minmax":
        bound = d.max()
        ok = lambda g: torch.norm(benign - (mean + g * perturb), dim=1).max() <= bound  # noqa: E731
    else:
        bound = (d**2).sum(1).max()
        ok = lambda g: (torch.norm(benign - (mean + g * perturb), dim=1) ** 2).sum() <= bound  # noqa: E731
    gamma, step, succ = 10.0, 10.0, 0.0  # as the authors' code: the step starts at gamma, so gamma can fall to 0
    while abs(succ - gamma) > 1e-5:
        if ok(gamma):
            succ = gamma
            gamma += step / 2
        else:
            gamma -= step / 2
        step /= 2
    return succ


def main() -> None:
    args = options()
    torch.manual_seed(args.seed)
    rng, prng = np.random.default_rng(args.seed), random.Random(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    if args.data == "digits":
        d = load_digits()
        x_all, y_all = d.data.astype(np.float32) / 16.0, d.target
    else:
        x_all, y_all = make_classification(3000, 30, n_informative=15, n_classes=10, n_clusters_per_class=1, random_state=args.seed)
        x_all = x_all.astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x_all, y_all, test_size=0.3, random_state=args.seed, stratify=y_all)
    shape = (-1, 1, 8, 8) if args.model == "cnn" else (-1, x_all.shape[1])
    x_tr, x_te = torch.tensor(x_tr).reshape(shape), torch.tensor(x_te).reshape(shape)
    y_tr, y_te = torch.tensor(y_tr), torch.tensor(y_te)
    model = StridedCNN(10) if args.model == "cnn" else MLP(x_tr.shape[1], 10)
    names = client_ids(args.ids, args.clients, prng)
    parts = split(y_tr.numpy(), args.clients, args.split, args.alpha, rng)
    attack = args.attack
    attackers = sorted(rng.choice(args.clients, args.attackers, replace=False).tolist()) if attack != "none" else []
    pattern = torch.tensor(np.random.default_rng(1234).random((8, 8)), dtype=torch.float32)
    if attack == "sybil":  # one poisoned data set, a copy for every sybil
        own = parts[attackers[0]].tolist()
        ones = [i for i in own if y_tr[i] == 1]
        pool = [i for i in np.flatnonzero(y_tr.numpy() == 1) if i not in ones]
        own += rng.choice(pool, max(0, 40 - len(ones)), replace=False).tolist()
        sx, sy = x_tr[own], y_tr[own].clone()
        sy[sy == 1] = 7
    data = {}
    for i, idx in enumerate(parts):
        x, y = x_tr[idx], y_tr[idx].clone()
        if attack == "sybil" and i in attackers:
            x, y = sx, sy
        data[i] = (x, y)
    poisoned = {}
    for i in attackers if attack in ("backdoor", "scaling") else []:
        x, y = data[i]
        pick = torch.randperm(len(x), generator=gen)[: int(len(x) * args.poison)]
        x, y = x.clone(), y.clone()
        x[pick], y[pick] = stamp(x[pick], args.trigger, pattern), args.target
        poisoned[i] = (x, y)
    meta = {
        "dataset": args.data, "model": args.model, "attack": attack, "split": args.split, "ids": args.ids,
        "clients": args.clients, "per_round": args.per_round or args.clients, "rounds": args.rounds, "seed": args.seed,
        "malicious": [names[i] for i in attackers], "script": "benchmarks/redteam/sixteenth_fedavg.py",
    }
    if attack in ("minmax", "minsum"):
        meta["perturb"] = args.perturb
    if attack in ("backdoor", "scaling"):
        meta |= {"trigger": args.trigger, "target": args.target}

    def success(m: nn.Module) -> float | None:
        with torch.no_grad():
            if attack == "sybil":
                return float((m(x_te[y_te == 1]).argmax(1) == 7).float().mean())
            if attack in ("backdoor", "scaling"):
                keep = y_te != args.target
                return float((m(stamp(x_te[keep], args.trigger, pattern)).argmax(1) == args.target).float().mean())
        return None

    with Recorder(args.out, meta=meta, overwrite=True) as rec:
        for r in range(args.rounds):
            drawn = sorted(prng.sample(range(args.clients), args.per_round)) if args.per_round else list(range(args.clients))
            glob = {k: v.detach().clone() for k, v in model.state_dict().items()}
            g = flat(glob)
            updates, counts, metrics = {}, {}, {}
            for i in drawn:
                local = type(model)(10) if args.model == "cnn" else MLP(x_tr.shape[1], 10)
                local.load_state_dict(glob)
                x, y = poisoned.get(i, data[i]) if (attack == "backdoor" or (attack == "scaling" and r >= args.rounds // 5)) else data[i]
                metrics[i] = train(local, x, y, args, gen)
                updates[i], counts[i] = flat(local.state_dict()) - g, len(x)
            bad = [i for i in drawn if i in attackers]
            benign = torch.stack([updates[i] for i in drawn if i not in attackers])
            n, m = len(drawn), len(bad)
            if bad and attack == "alie":
                s = math.floor(n / 2 + 1) - m
                z = float(normal.ppf((n - s) / n))
                for i in bad:
                    updates[i] = benign.mean(0) - z * benign.std(0)
            if bad and attack in ("minmax", "minsum"):
                mean = benign.mean(0)
                perturb = {"unit": -mean / mean.norm(), "std": -benign.std(0), "sign": -torch.sign(mean)}[args.perturb]
                malicious = mean + gamma_search(benign, mean, perturb, attack) * perturb
                for i in bad:
                    updates[i] = malicious.clone()
            if bad and attack == "scaling" and r >= args.rounds // 5:
                for i in bad:
                    updates[i] = updates[i] * (n / m)
            if bad and attack in ("alie", "minmax", "minsum") and args.jitter:
                spread = benign.std(0)
                for i in bad:
                    updates[i] = updates[i] + args.jitter * spread * torch.randn(spread.shape, generator=gen)
            total = sum(counts.values())
            step = sum(updates[i] * (counts[i] / total) for i in drawn)
            model.load_state_dict(unflat(g + step, glob))
            with rec.round(r, {k: v.numpy() for k, v in glob.items()}) as rnd:
                for i in drawn:
                    rnd.client(names[i], {k: v.numpy() for k, v in unflat(g + updates[i], glob).items()},
                               num_samples=counts[i], metrics=metrics[i])
                model.eval()
                with torch.no_grad():
                    values = {"accuracy": float((model(x_te).argmax(1) == y_te).float().mean())}
                asr = success(model)
                if asr is not None:
                    values["attack_success"] = asr
                rnd.global_metrics(values)
        rec.final({k: v.numpy() for k, v in model.state_dict().items()})
        if args.model == "cnn" and args.data == "digits":
            rec.attach("clean_data", x=x_te.numpy(), y=y_te.numpy())
        rec.ground_truth(malicious=[names[i] for i in attackers])
    print(f"{args.out}: accuracy {values['accuracy']:.3f}" + (f", attack success {asr:.3f}" if asr is not None else ""))


if __name__ == "__main__":
    main()
