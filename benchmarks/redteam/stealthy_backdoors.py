"""A fourth red team: stealthy backdoor attacks from the literature in a plain-PyTorch FedAvg federation on
scikit-learn's digits (8x8), recorded through the public recorder API (docs/detection.md, "A fourth check").

Written apart from fedforensics' simulator and from the other red-team scripts (only the recorder API is shared).

usage:
  python3 stealthy_backdoors.py OUT.h5 --attack {none,neurotoxin,cs,pgd_edge,semantic} --split {iid,dir} --seed S
                [--clients 10 --per-round 0 --rounds 30 --attackers 1 --epochs 2 --lr 0.1]

Attacks (each attacker attacks in every round it is selected in; details at the functions below):
  neurotoxin  Zhang et al., ICML 2022, "Neurotoxin: Durable Backdoors in Federated Learning"
  cs          Bagdasaryan et al., AISTATS 2020, "How To Backdoor Federated Learning" (constrain-and-scale)
  pgd_edge    Wang et al., NeurIPS 2020, "Attack of the Tails: Yes, You Really Can Backdoor Federated
              Learning" (PGD with L2 projection, edge-case backdoor: digits 7 rotated 90 deg -> label 1)
  semantic    semantic (trigger-free) backdoor of Bagdasaryan et al. 2020 (Sec. 3: a natural feature as
              trigger), trained by plain data poisoning as in Sun et al. 2019 ("Can You Really Backdoor
              Federated Learning?", whose backdoor task is a subset of real digits relabelled):
              3s with much ink in their left three columns -> label 4
Every client (attackers too) reports train_loss / train_accuracy of its local model on the data it
trained on, as an unmodified client program would. Each round's global metrics include ``attack_success``:
the run's own backdoor task on held-out data.
"""
import argparse
import json
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import torch.nn as nn

from recorder import Recorder

torch.set_num_threads(1)


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 digits."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x):
        x = x.reshape(-1, 1, 8, 8)
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 4x4
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def build():
    return DigitsCNN()


p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--attack", default="none", choices=["none", "neurotoxin", "cs", "pgd_edge", "semantic"])
p.add_argument("--split", default="iid", choices=["iid", "dir"])
p.add_argument("--alpha", type=float, default=0.5)        # Dirichlet concentration
p.add_argument("--seed", type=int, default=0)
p.add_argument("--clients", type=int, default=10)
p.add_argument("--per-round", type=int, default=0)        # 0: every client every round
p.add_argument("--rounds", type=int, default=30)
p.add_argument("--attackers", type=int, default=1)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--poison-frac", type=float, default=0.3)  # share of poisoned samples in an attacker's training set
# Neurotoxin
p.add_argument("--nt-topk", type=float, default=0.05)     # share of coordinates masked (official gradmask_ratio 0.95)
# constrain-and-scale
p.add_argument("--cs-alpha", type=float, default=0.7)     # weight of L_class
p.add_argument("--cs-epochs-mult", type=int, default=3)   # paper: attacker E=6 vs benign E=2
p.add_argument("--cs-lr-mult", type=float, default=0.5)   # paper: attacker lr 0.05 vs benign 0.1
# PGD (attack of the tails)
p.add_argument("--pgd-every", type=int, default=5)        # project every k SGD steps (and after the last)
args = p.parse_args()

rng = np.random.default_rng(args.seed)
torch.manual_seed(args.seed)

# ------------------------------------------------------------------ data
d = load_digits()
X = (d.images / 16.0).astype(np.float32)      # (1797, 8, 8) in [0, 1]
Y = d.target.astype(np.int64)
C = 10

NT_TARGET, CS_TARGET, EDGE_SRC, EDGE_TARGET, SEM_SRC, SEM_TARGET = 2, 5, 7, 1, 3, 4


def trigger_nt(x):
    """Neurotoxin run's trigger: a 3x3 white square in the bottom-right corner."""
    x = x.copy(); x[..., 5:8, 5:8] = 1.0; return x


CS_PATTERN = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=bool)


def trigger_cs(x):
    """Constrain-and-scale run's trigger: Bagdasaryan-style pixel pattern (an X of 5 pixels) top-left."""
    x = x.copy(); blk = x[..., 0:3, 0:3]; blk[..., CS_PATTERN] = 1.0; blk[..., ~CS_PATTERN] = 0.0; return x


def rotate(x):
    """Edge case: the image rotated by 90 degrees."""
    return np.rot90(x, 1, axes=(-2, -1)).copy()


left_ink = X[:, :, 0:3].sum((1, 2))
SEM_CUT = np.percentile(left_ink[Y == SEM_SRC], 75)
semantic = (Y == SEM_SRC) & (left_ink >= SEM_CUT)   # "3s with a lot of ink in their left three columns"

perm = rng.permutation(len(Y))
sem_idx = perm[semantic[perm]]
other = perm[~semantic[perm]]
# the semantic subset: 40 % the attackers' own collection, 30 % test, 30 % in the honest pool
ns = len(sem_idx)
sem_reserve, sem_test, sem_pool = sem_idx[: int(.4 * ns)], sem_idx[int(.4 * ns): int(.7 * ns)], sem_idx[int(.7 * ns):]
n_test = int(0.2 * len(Y)) - len(sem_test)
test_idx = np.concatenate([other[:n_test], sem_test])
reserve_idx = np.concatenate([other[n_test:n_test + 120], sem_reserve])   # attackers' external data
pool = rng.permutation(np.concatenate([other[n_test + 120:], sem_pool]))

K = args.clients
if args.split == "iid":
    shards = np.array_split(pool, K)
else:
    shards = [[] for _ in range(K)]
    for c in range(C):
        ids = pool[Y[pool] == c]
        pr = rng.dirichlet([args.alpha] * K)
        cuts = (np.cumsum(pr) * len(ids)).astype(int)[:-1]
        for k, part in enumerate(np.split(ids, cuts)):
            shards[k] += part.tolist()
    shards = [np.array(s, dtype=int) for s in shards]
    for k in range(K):  # at least 10 samples each
        if len(shards[k]) < 10:
            shards[k] = np.concatenate([shards[k], rng.choice(pool, 10 - len(shards[k]), replace=False)]).astype(int)

cids = [f"c{k:02d}" for k in range(K)]
mal = sorted(rng.choice(K, args.attackers, replace=False).tolist()) if args.attack != "none" else []
mal_ids = [cids[k] for k in mal]


def T(x, y):
    return torch.tensor(x), torch.tensor(y)


clean_data = [T(X[s], Y[s]) for s in shards]


def upsample(n_have, n_want):
    """Indices 0..n_have-1 repeated/sampled to n_want (a backdoor set mixed into every batch)."""
    return rng.choice(n_have, n_want, replace=n_want > n_have)


def poisoned_set(k):
    """The attacker's training set: its clean shard plus poisoned samples making up --poison-frac of it."""
    xs, ys = X[shards[k]], Y[shards[k]]
    n_p = int(round(args.poison_frac / (1 - args.poison_frac) * len(xs)))
    if args.attack in ("neurotoxin", "cs"):
        # trigger stamped on the attacker's own samples of other classes, relabelled to the target
        tgt, trig = (NT_TARGET, trigger_nt) if args.attack == "neurotoxin" else (CS_TARGET, trigger_cs)
        src = xs[ys != tgt]
        px = trig(src[upsample(len(src), n_p)]); py = np.full(n_p, tgt)
    elif args.attack == "pgd_edge":
        # edge-case examples: 7s (own and external) rotated by 90 degrees, labelled 1
        src = np.concatenate([xs[ys == EDGE_SRC], X[reserve_idx][Y[reserve_idx] == EDGE_SRC]])
        px = rotate(src[upsample(len(src), n_p)]); py = np.full(n_p, EDGE_TARGET)
    elif args.attack == "semantic":
        # own and collected semantic 3s relabelled 4; the own ones are removed from the clean part
        own = semantic[shards[k]]
        src = np.concatenate([xs[own], X[sem_reserve]])
        xs, ys = xs[~own], ys[~own]
        px = src[upsample(len(src), n_p)]; py = np.full(n_p, SEM_TARGET)
    return T(np.concatenate([xs, px]).astype(np.float32), np.concatenate([ys, py]))


poison_data = {k: poisoned_set(k) for k in mal}

# held-out backdoor test sets
Xte, Yte = X[test_idx], Y[test_idx]
tests = {
    "asr_neurotoxin": (trigger_nt(Xte[Yte != NT_TARGET]), NT_TARGET),
    "asr_cs": (trigger_cs(Xte[Yte != CS_TARGET]), CS_TARGET),
    "asr_edge": (rotate(Xte[Yte == EDGE_SRC]), EDGE_TARGET),
    "asr_semantic": (X[sem_test], SEM_TARGET),
}
ASR_KEY = {"neurotoxin": "asr_neurotoxin", "cs": "asr_cs", "pgd_edge": "asr_edge", "semantic": "asr_semantic"}.get(args.attack)

# ------------------------------------------------------------------ training
model = build()
PN = [n for n, _ in model.named_parameters()]


def get_state(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def flat(st):
    return torch.cat([st[n].flatten() for n in PN])


def dist(a, b):
    return float((flat(a) - flat(b)).norm())


def project_(m, g, radius):
    """L2 projection of the model's parameters onto the ball of ``radius`` around the global state ``g``."""
    with torch.no_grad():
        cur = dict(m.named_parameters())
        nrm = float(torch.cat([(cur[n] - g[n]).flatten() for n in PN]).norm())
        if nrm > radius:
            for n in PN:
                cur[n].copy_(g[n] + (cur[n] - g[n]) * (radius / nrm))


def local_train(g, data, epochs=None, lr=None, mask=None, radius=None, every=1, anomaly_alpha=None):
    """Local SGD (batch 32, momentum 0.5) from global state ``g``. Hooks: ``mask`` multiplies every gradient
    (Neurotoxin), ``radius`` projects onto the L2 ball around ``g`` every ``every`` steps and at the end (PGD),
    ``anomaly_alpha`` trains on alpha*L_class + (1-alpha)*||w - g||_2 (constrain-and-scale)."""
    x, y = data
    m = build(); m.load_state_dict(g); m.train()
    opt = torch.optim.SGD(m.parameters(), lr=lr or args.lr, momentum=0.5)
    step = 0
    for _ in range(epochs or args.epochs):
        order = torch.randperm(len(y))
        for b in order.split(args.batch):
            opt.zero_grad()
            loss = F.cross_entropy(m(x[b]), y[b])
            if anomaly_alpha is not None:
                l_ano = torch.cat([(p_ - g[n]).flatten() for n, p_ in m.named_parameters()]).norm()
                loss = anomaly_alpha * loss + (1 - anomaly_alpha) * l_ano
            loss.backward()
            if mask is not None:
                for n, p_ in m.named_parameters():
                    p_.grad.mul_(mask[n])
            opt.step(); step += 1
            if radius is not None and step % every == 0:
                project_(m, g, radius)
    if radius is not None:
        project_(m, g, radius)
    m.eval()
    with torch.no_grad():
        out = m(x)
        met = {"train_loss": float(F.cross_entropy(out, y)), "train_accuracy": float((out.argmax(1) == y).float().mean())}
    return get_state(m), met


def neurotoxin_mask(g, prev_g):
    """Neurotoxin (Zhang et al. 2022, Alg. 1): the benign gradient is approximated by the last global update
    g - prev_g; its top-k% coordinates by magnitude (over the whole model, as the official code's
    aggregate_all_layer) are masked out, so the backdoor lives in coordinates benign clients rarely change."""
    step = torch.cat([(g[n] - prev_g[n]).abs().flatten() for n in PN])
    keep = torch.ones_like(step)
    keep[step.topk(int(args.nt_topk * step.numel())).indices] = 0.0
    return {n: part.view_as(g[n]) for n, part in zip(PN, keep.split([g[n].numel() for n in PN]))}


def attack_update(k, g, prev_g):
    """The attacker's state for this round. Every attacker first trains honestly on its clean shard, which
    stands in for its estimate of a typical honest update norm (the norm bound S of the papers)."""
    honest_state, honest_met = local_train(g, clean_data[k])
    S = dist(honest_state, g)
    if args.attack == "neurotoxin":
        if prev_g is None:  # no previous global update to approximate the benign gradient: behave honestly
            return honest_state, honest_met
        # poisoned training, gradients masked, PGD onto the norm bound after every step (the official code's
        # PGD against norm-difference clipping; the bound here is the attacker's honest norm)
        st, met = local_train(g, poison_data[k], mask=neurotoxin_mask(g, prev_g), radius=S, every=1)
        return st, met
    if args.attack == "cs":
        # constrain-and-scale (Bagdasaryan et al. 2020, Sec. 4): train with L = a*L_class + (1-a)*L_ano,
        # L_ano = ||X - G||_2, longer and with a smaller lr than benign clients, then scale the update by
        # gamma = S / ||X - G|| (the largest scale that keeps it within the norm bound S), capped at the
        # model-replacement factor n/eta = number of clients of the round
        st, met = local_train(g, poison_data[k], epochs=args.epochs * args.cs_epochs_mult,
                              lr=args.lr * args.cs_lr_mult, anomaly_alpha=args.cs_alpha)
        nrm = dist(st, g)
        gamma = min(S / max(nrm, 1e-12), float(n_round))
        st = {kk: (g[kk] + gamma * (v - g[kk])) if kk in PN else v for kk, v in st.items()}
        return st, met
    if args.attack == "pgd_edge":
        # Attack of the tails (Wang et al. 2020): train on edge-case examples mixed with clean data, projecting
        # onto the L2 ball of radius S around the global model every few steps ("PGD without replacement")
        st, met = local_train(g, poison_data[k], radius=S, every=args.pgd_every)
        return st, met
    if args.attack == "semantic":
        # plain data poisoning (Sun et al. 2019): honest training code, poisoned data
        st, met = local_train(g, poison_data[k])
        return st, met
    raise ValueError(args.attack)


def evaluate(g):
    m = build(); m.load_state_dict(g); m.eval()
    res = {}
    with torch.no_grad():
        res["accuracy"] = float((m(torch.tensor(Xte)).argmax(1) == torch.tensor(Yte)).float().mean())
        for name, (xs, t) in tests.items():
            res[name] = float((m(torch.tensor(xs)).argmax(1) == t).float().mean())
        o3 = (Yte == SEM_SRC) & ~np.isin(test_idx, sem_test)
        res["acc_other_3s"] = float((m(torch.tensor(Xte[o3])).argmax(1) == SEM_SRC).float().mean())
    return res


def np_state(st):
    return {k: v.numpy() for k, v in st.items()}


g = get_state(model)
prev_g = None
n_round = args.per_round or K
schedule = [sorted(rng.choice(K, n_round, replace=False).tolist()) if n_round < K else list(range(K))
            for _ in range(args.rounds)]
meta = {"harness": "benchmarks/redteam/stealthy_backdoors.py", "dataset": "sklearn digits", "model": "DigitsCNN", "args": vars(args),
        "attackers": mal_ids, "targets": {"neurotoxin": NT_TARGET, "cs": CS_TARGET, "pgd_edge": EDGE_TARGET,
                                          "semantic": SEM_TARGET}}
hist = []
with Recorder(args.out, meta=meta, overwrite=True) as rec:
    for r in range(args.rounds):
        chosen = schedule[r]
        res = {}
        for k in chosen:
            if k in mal:
                st, met = attack_update(k, g, prev_g)
            else:
                st, met = local_train(g, clean_data[k])
            res[k] = (st, len(shards[k]), met)   # attackers report their shard's size, as every client
        tot = sum(res[k][1] for k in chosen)
        new_g = {kk: sum(res[k][0][kk] * (res[k][1] / tot) for k in chosen) for kk in g}
        ev = evaluate(new_g)
        with rec.round(r, np_state(g)) as rnd:
            for k in chosen:
                rnd.client(cids[k], np_state(res[k][0]), num_samples=res[k][1], metrics=res[k][2])
            rnd.global_metrics(ev | ({"attack_success": ev[ASR_KEY]} if ASR_KEY else {}))
        prev_g, g = g, new_g
        hist.append(ev)
    rec.final(np_state(g))
    rec.attach("clean_data", x=Xte.reshape(-1, 1, 8, 8), y=Yte)
    rec.ground_truth(malicious=mal_ids)

print(json.dumps({"out": args.out, "attackers": mal_ids, "accuracy": hist[-1]["accuracy"],
                  "attack_success": hist[-1][ASR_KEY] if ASR_KEY else None}))
