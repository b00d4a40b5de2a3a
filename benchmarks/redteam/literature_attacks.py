"""A fourteenth check: attacks from the literature the earlier red teams did not simulate in this form, in a PyTorch
FedAvg (or trimmed-mean) federation of the zoo's digits CNN, recorded through the public recorder API
(docs/detection.md, "A fourteenth check").

usage:
  python3 literature_attacks.py OUT.h5 --attack ATTACK --split {iid,dir} --seed S
                [--clients 10 --per-round 0 --attackers 2 --rounds 25 --server {mean,trim}]

Attacks (written from the papers' descriptions; each attacker attacks in every round it is drawn in):
  none        no attacker (a clean control; with --server trim, the control of the fang runs)
  fang        Fang et al., USENIX Security 2020, "Local Model Poisoning Attacks to Byzantine-Robust Federated
              Learning": the full-knowledge attack on the coordinate-wise trimmed mean (--server trim). From the
              round's honest updates the attackers take the benign direction s_j of every coordinate and push it
              the other way, just beyond the honest extreme on that side (a factor drawn in [1, b], b = 2)
  fang-pk     the same paper's partial-knowledge variant: the attackers see only their own clean updates, and
              send a value drawn in mu_j -/+ [3, 4] sigma_j against the direction of their mean mu_j
  edge        Wang et al., NeurIPS 2020, "Attack of the Tails": an edge-case backdoor, no trigger: the 7s of the
              distribution's tail (farthest from the 7s' mean image; no honest client holds one) labelled 1,
              mixed into the attacker's clean data and trained as an honest client trains ("black-box")
  edge-pgd    the same with projected gradient descent: every 5 steps and at the end the model is projected onto
              the L2 ball around the global model whose radius is the attacker's own honest update norm
  semantic    Bagdasaryan et al., AISTATS 2020, "How To Backdoor Federated Learning", Sec. 3's semantic
              backdoor: a natural feature as the trigger: thin-stroked 0s (the least ink of their class;
              honest clients hold some, correctly labelled) labelled 6, by data poisoning
  a3fl        an optimized trigger in the spirit of A3FL (Zhang et al., NeurIPS 2023): each round the attacker
              optimizes a 3x3 patch (bottom-left) against the current global model and against a copy of it
              trained to unlearn the patch (weighted by that copy's cosine similarity to the global model), by
              signed gradient steps, then trains on its data with 30 % of it stamped and labelled 3
  poisonedfl  Xie, Fang and Gong, CVPR 2024, "Model Poisoning Attacks to Federated Learning via Multi-Round
              Consistency": a random sign vector s drawn once; every round each attacker sends
              c * s * |last global update| (the same direction in every round); c starts at 8 and halves
              every 5th round in which the global model's movement over the last 5 rounds agrees with s on under 55 %
              of the coordinates

Every client (the attackers too) reports train_loss and train_accuracy of the model it trained on its own data (the
model-poisoning attackers report those of their honest training). Each round's global metrics hold ``accuracy`` on
held-out digits and, for the backdoors, ``attack_success`` on held-out inputs of the backdoor task; an a3fl run attaches
its last trigger (``a3fl_trigger``: ``pattern`` and ``mask``).
"""
import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from fedforensics.zoo import digits_cnn
from recorder import Recorder

torch.set_num_threads(1)

ATTACKS = ["none", "fang", "fang-pk", "edge", "edge-pgd", "semantic", "a3fl", "poisonedfl"]
BACKDOORS = {"edge": 1, "edge-pgd": 1, "semantic": 6, "a3fl": 3}  # attack -> target label


def options() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the run file to write")
    p.add_argument("--attack", default="none", choices=ATTACKS)
    p.add_argument("--split", default="iid", choices=["iid", "dir"], help="IID shards or Dirichlet label skew")
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--per-round", type=int, default=0, help="clients drawn a round (0: every client)")
    p.add_argument("--attackers", type=int, default=2)
    p.add_argument("--rounds", type=int, default=25)
    p.add_argument("--server", default="mean", choices=["mean", "trim"],
                   help="sample-weighted mean, or coordinate-wise trimmed mean (--trim from each side)")
    p.add_argument("--trim", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--poison", type=float, default=0.3, help="share of a backdoor attacker's training set poisoned")
    return p.parse_args()


args = options()
rng = np.random.default_rng(args.seed)
torch.manual_seed(args.seed)

# ------------------------------------------------------------------ data
digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
Y = digits.target.astype(np.int64)
order = rng.permutation(len(Y))
n_test = len(Y) // 5


def tail_sevens() -> np.ndarray:
    """Wang et al.'s edge cases: the third of the 7s farthest from the 7s' mean image."""
    sevens = np.flatnonzero(Y == 7)
    far = np.linalg.norm((X[sevens] - X[sevens].mean(0)).reshape(len(sevens), -1), axis=1)
    return sevens[far >= np.quantile(far, 2 / 3)]


def thin_zeros() -> np.ndarray:
    """The semantic backdoor's natural feature: the 0s with the least ink (the lowest 30 % of their class)."""
    zeros = np.flatnonzero(Y == 0)
    ink = X[zeros].sum((1, 2, 3))
    return zeros[ink <= np.quantile(ink, 0.3)]


def thirds(ids: np.ndarray, shares: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ids`` in a random order, cut at the two shares: the attackers' reserve, held-out test, the rest."""
    ids = rng.permutation(ids)
    a, b = int(shares[0] * len(ids)), int((shares[0] + shares[1]) * len(ids))
    return ids[:a], ids[a:b], ids[b:]


EDGE = tail_sevens()
THIN = thin_zeros()
edge_reserve, edge_test, _ = thirds(EDGE, (0.5, 0.5))        # the tail is not in any honest client's data
thin_reserve, thin_test, thin_pool = thirds(THIN, (0.4, 0.3))  # some thin 0s stay in the honest pool
special = np.isin(order, np.concatenate([EDGE, THIN]))
plain = order[~special]
test_idx = np.concatenate([plain[:n_test], thin_test])
pool = rng.permutation(np.concatenate([plain[n_test:], thin_pool]))


def shards_of(ids: np.ndarray, k: int) -> list[np.ndarray]:
    """IID shards, or per-class Dirichlet(alpha) proportions (every client at least 8 samples)."""
    if args.split == "iid":
        return np.array_split(ids, k)
    parts: list[list[int]] = [[] for _ in range(k)]
    for label in range(10):
        of_label = ids[Y[ids] == label]
        cuts = (np.cumsum(rng.dirichlet(np.full(k, args.alpha))) * len(of_label)).astype(int)[:-1]
        for i, piece in enumerate(np.split(of_label, cuts)):
            parts[i] += piece.tolist()
    out = [np.array(p, dtype=int) for p in parts]
    return [s if len(s) >= 8 else np.concatenate([s, rng.choice(ids, 8 - len(s), replace=False)]) for s in out]


K = args.clients
shards = shards_of(pool, K)
names = [f"client-{i:02d}" for i in range(K)]
attackers = sorted(rng.choice(K, args.attackers, replace=False).tolist()) if args.attack != "none" else []
per_round = args.per_round or K
schedule = [sorted(rng.choice(K, per_round, replace=False).tolist()) for _ in range(args.rounds)]


def tensors(ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(X[ids]), torch.from_numpy(Y[ids])


MASK = torch.zeros(1, 1, 8, 8)
MASK[..., 5:8, 0:3] = 1.0


def stamp(x: torch.Tensor, pattern: torch.Tensor) -> torch.Tensor:
    """A3FL's trigger: the 3x3 patch ``pattern`` pasted on the bottom-left corner."""
    return x * (1 - MASK) + pattern * MASK


def data_poisoned(i: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A data-poisoning backdoor attacker's set: its shard (its own thin 0s taken out) and poisoned samples making up
    ``--poison`` of the whole, drawn (with repeats where needed) from the attackers' reserve."""
    own = shards[i]
    if args.attack == "semantic":
        own = own[~np.isin(own, THIN)]
    source = edge_reserve if args.attack in ("edge", "edge-pgd") else thin_reserve
    n = int(round(args.poison / (1 - args.poison) * len(own)))
    picked = rng.choice(source, n, replace=n > len(source))
    x, y = tensors(own)
    return torch.cat([x, torch.from_numpy(X[picked])]), torch.cat([y, torch.full((n,), BACKDOORS[args.attack])])


clean = [tensors(s) for s in shards]
poisoned = {i: data_poisoned(i) for i in attackers} if args.attack in ("edge", "edge-pgd", "semantic") else {}
x_test, y_test = tensors(test_idx)

# ------------------------------------------------------------------ training
PARAMS = [name for name, _ in digits_cnn().named_parameters()]


def vector(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([state[n].reshape(-1) for n in PARAMS])


def unvector(v: torch.Tensor) -> dict[str, torch.Tensor]:
    template = digits_cnn().state_dict()
    out, at = {}, 0
    for n in PARAMS:
        out[n] = v[at: at + template[n].numel()].reshape(template[n].shape).clone()
        at += template[n].numel()
    return out


def model_at(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    m = digits_cnn()
    m.load_state_dict(state)
    return m


def train(state, x, y, pattern=None, radius=None):
    """Local SGD (momentum 0.9) from ``state``; with ``pattern`` (A3FL) ``--poison`` of each batch is stamped and
    relabelled; with ``radius`` (PGD) the model is projected onto the L2 ball of that radius around ``state`` every
    5 steps and at the end. Returns the trained state and its metrics on the client's own data."""
    m = model_at(state)
    start = vector(state)
    opt = torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9)
    steps = 0
    for _ in range(args.epochs):
        for batch in torch.randperm(len(y)).split(args.batch):
            xb, yb = x[batch], y[batch]
            if pattern is not None:
                k = max(1, int(args.poison * len(batch)))
                xb = torch.cat([stamp(xb[:k], pattern), xb[k:]])
                yb = torch.cat([torch.full((k,), BACKDOORS["a3fl"]), yb[k:]])
            opt.zero_grad()
            F.cross_entropy(m(xb), yb).backward()
            opt.step()
            steps += 1
            if radius is not None and (steps % 5 == 0):
                project(m, start, radius)
    if radius is not None:
        project(m, start, radius)
    with torch.no_grad():
        out = m(x)
        metrics = {"train_loss": float(F.cross_entropy(out, y)), "train_accuracy": float((out.argmax(1) == y).float().mean())}
    return {k: v.detach().clone() for k, v in m.state_dict().items()}, metrics


def project(m: torch.nn.Module, start: torch.Tensor, radius: float) -> None:
    with torch.no_grad():
        now = torch.cat([p.reshape(-1) for p in m.parameters()])
        length = float((now - start).norm())
        if length > radius:
            moved = start + (now - start) * (radius / length)
            torch.nn.utils.vector_to_parameters(moved, m.parameters())


def optimize_trigger(state, pattern, x, y, steps=10, unlearn_steps=5, step_size=0.05):
    """A3FL's trigger step: signed gradient descent on the patch against the global model and against a copy of it
    trained (``unlearn_steps`` SGD steps) to give stamped inputs their true labels, the latter weighted by the copy's
    cosine similarity to the global model. Inputs: the attacker's samples not of the target label."""
    keep = y != BACKDOORS["a3fl"]
    x, target = x[keep], torch.full((int(keep.sum()),), BACKDOORS["a3fl"])
    y = y[keep]
    glob = model_at(state)
    for p in glob.parameters():
        p.requires_grad_(False)
    g_vec = vector(state)
    pattern = pattern.clone()
    for _ in range(steps):
        adversary = model_at(state)
        opt = torch.optim.SGD(adversary.parameters(), lr=args.lr)
        for _ in range(unlearn_steps):
            batch = torch.randint(len(y), (args.batch,))
            opt.zero_grad()
            F.cross_entropy(adversary(stamp(x[batch], pattern)), y[batch]).backward()
            opt.step()
        a_vec = torch.cat([p.detach().reshape(-1) for p in adversary.parameters()])
        weight = float(F.cosine_similarity(a_vec, g_vec, dim=0))
        for p in adversary.parameters():
            p.requires_grad_(False)
        pattern.requires_grad_(True)
        stamped = stamp(x, pattern)
        loss = F.cross_entropy(glob(stamped), target) + weight * F.cross_entropy(adversary(stamped), target)
        (grad,) = torch.autograd.grad(loss, pattern)
        pattern = (pattern - step_size * grad.sign()).clamp(0, 1).detach()
    return pattern


def fang_update(honest: torch.Tensor, direction: torch.Tensor, b: float = 2.0) -> torch.Tensor:
    """Fang et al.'s full-knowledge trimmed-mean value: against ``direction`` (the benign change's sign), beyond the
    honest extreme on that side by a factor drawn in [1, b] (toward zero where the extreme has the other sign)."""
    top, bottom = honest.max(0).values, honest.min(0).values
    u = torch.from_numpy(rng.uniform(1.0, b, top.numel()).astype(np.float32))
    above = torch.where(top > 0, top * u, top / u)
    below = torch.where(bottom > 0, bottom / u, bottom * u)
    return torch.where(direction < 0, above, below)


def fang_pk_update(own: torch.Tensor) -> torch.Tensor:
    """Fang et al.'s partial-knowledge value: mean and spread of the attackers' own clean updates, then
    mu -/+ [3, 4] sigma against the mean's sign."""
    mu, sigma = own.mean(0), own.std(0, unbiased=False)
    u = torch.from_numpy(rng.uniform(3.0, 4.0, mu.numel()).astype(np.float32))
    return torch.where(mu > 0, mu - u * sigma, mu + u * sigma)


def aggregate(states: list[dict[str, torch.Tensor]], counts: list[int]) -> dict[str, torch.Tensor]:
    if args.server == "mean":
        w = torch.tensor(counts, dtype=torch.float32) / sum(counts)
        return unvector(sum(wi * vector(s) for wi, s in zip(w, states)))
    stacked = torch.stack([vector(s) for s in states]).sort(0).values
    t = min(args.trim, (len(states) - 1) // 2)
    return unvector(stacked[t: len(states) - t].mean(0))


def evaluate(state, pattern) -> dict[str, float]:
    m = model_at(state)
    with torch.no_grad():
        out = {"accuracy": float((m(x_test).argmax(1) == y_test).float().mean())}
        if args.attack in BACKDOORS:
            target = BACKDOORS[args.attack]
            if args.attack == "a3fl":
                xs = stamp(x_test[y_test != target], pattern)
            else:
                xs = torch.from_numpy(X[edge_test if args.attack.startswith("edge") else thin_test])
            out["attack_success"] = float((m(xs).argmax(1) == target).float().mean())
    return out


# ------------------------------------------------------------------ the federation
state = {k: v.clone() for k, v in digits_cnn().state_dict().items()}
history = [vector(state)]
pattern = torch.rand(1, 1, 8, 8)
sign = torch.from_numpy(rng.choice([-1.0, 1.0], vector(state).numel()).astype(np.float32))
scale = 8.0
meta = {"harness": "benchmarks/redteam/literature_attacks.py", "dataset": "sklearn digits", "model": "fedforensics.zoo:digits_cnn",
        "args": vars(args), "attackers": [names[i] for i in attackers], "target": BACKDOORS.get(args.attack)}
last: dict[str, float] = {}
with Recorder(args.out, meta=meta, overwrite=True) as rec:
    for r, drawn in enumerate(schedule):
        g = vector(state)
        results = {i: train(state, *clean[i]) for i in drawn if i not in attackers or args.attack in ("fang", "fang-pk", "poisonedfl")}
        bad = [i for i in drawn if i in attackers]
        if args.attack == "a3fl" and bad:
            pattern = optimize_trigger(state, pattern, *clean[bad[0]])
        for i in bad:
            if args.attack in ("edge", "semantic"):
                results[i] = train(state, *poisoned[i])
            elif args.attack == "edge-pgd":
                radius = float((vector(train(state, *clean[i])[0]) - g).norm())
                results[i] = train(state, *poisoned[i], radius=radius)
            elif args.attack == "a3fl":
                results[i] = train(state, *clean[i], pattern=pattern)
        if bad and args.attack in ("fang", "fang-pk"):
            if args.attack == "fang":
                honest = torch.stack([vector(results[i][0]) - g for i in drawn if i not in attackers])
                crafted = [fang_update(honest, honest.mean(0).sign()) for _ in bad]
            else:
                own = torch.stack([vector(train(state, *clean[i])[0]) - g for i in attackers])
                crafted = [fang_pk_update(own) for _ in bad]
            for i, update in zip(bad, crafted):
                results[i] = (unvector(g + update), results[i][1])
        if bad and args.attack == "poisonedfl" and len(history) > 1:
            if r % 5 == 0 and len(history) > 5 and float(((history[-1] - history[-6]).sign() == sign).float().mean()) < 0.55:
                scale /= 2
            for i in bad:
                results[i] = (unvector(g + scale * sign * (history[-1] - history[-2]).abs()), results[i][1])
        states = [results[i][0] for i in drawn]
        new_state = aggregate(states, [len(shards[i]) for i in drawn])
        last = evaluate(new_state, pattern)
        with rec.round(r, {k: v.numpy() for k, v in state.items()}) as rnd:
            for i in drawn:
                rnd.client(names[i], {k: v.numpy() for k, v in results[i][0].items()}, num_samples=len(shards[i]),
                           metrics=results[i][1])
            rnd.global_metrics(last)
        state = new_state
        history.append(vector(state))
    rec.final({k: v.numpy() for k, v in state.items()})
    rec.attach("clean_data", x=x_test.numpy(), y=y_test.numpy())
    if args.attack == "a3fl":  # the last trigger, to test it on the clean control's model
        rec.attach("a3fl_trigger", pattern=pattern.numpy(), mask=MASK.numpy())
    rec.ground_truth(malicious=[names[i] for i in attackers])

print(json.dumps({"out": args.out, "attackers": [names[i] for i in attackers]} | last))
