"""A second red team's FedAvg: a numpy MLP on synthetic 10-class data, written against the recorder's API alone.

    python benchmarks/redteam/numpy_mlp.py OUT.h5 --clients 50 --per-round 10 --rounds 20 --alpha 0.1 \
        --attack alie --n-mal 5 --seed 0

Written by a fresh-eyes check (no torch, no fedforensics.simulate): real local SGD of a 40-64-10 ReLU MLP
on Gaussian-mixture classes, Dirichlet label skew, lognormal sample counts, partial participation, odd
client ids, and the attacks of the literature as their papers state them: ALIE (Baruch et al. 2019),
min-max and min-sum (Shejwalkar & Houmansadr 2021), inner-product manipulation (Xie et al. 2020), sign
flipping, norm-matched noise, label flipping, jittered sybils, boosted updates, colluders adding a
shared direction, and (added later, from the paper) Fang et al. 2020's full-knowledge attacks on trimmed
mean and on Krum. benchmarks/numpy_bench.py runs the federations of numpy_runs.txt.
"""
import argparse
import uuid

import numpy as np
from scipy.stats import norm as _norm

from recorder import Recorder

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--clients", type=int, default=20)
p.add_argument("--per-round", type=int, default=0)
p.add_argument("--rounds", type=int, default=20)
p.add_argument("--alpha", type=float, default=0.0, help="Dirichlet label skew; 0 = iid")
p.add_argument("--qty", type=float, default=0.0, help="lognormal sigma of sample counts; 0 = equal")
p.add_argument("--attack", default="none")
p.add_argument("--n-mal", type=int, default=0)
p.add_argument("--attack-rounds", default="", help="comma list of rounds the attackers attack (default all)")
p.add_argument("--ids", default="plain", choices=["plain", "uuid", "unicode", "int", "long"])
p.add_argument("--seed", type=int, default=0)
p.add_argument("--hidden", type=int, default=64)
p.add_argument("--dim", type=int, default=40)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--batch", type=int, default=16)
p.add_argument("--lr", type=float, default=0.05)
p.add_argument("--samples", type=int, default=200, help="mean samples per client")
p.add_argument("--metrics", action="store_true")
p.add_argument("--zero-client", type=int, default=-1, help="index of an honest client sending a zero update in some rounds")
p.add_argument("--late", type=int, default=0, help="number of honest clients joining at mid-run")
p.add_argument("--drop", type=int, default=0, help="number of honest clients dropping at mid-run")
p.add_argument("--z", type=float, default=-1.0, help="ALIE z (default from n, m)")
p.add_argument("--scale", type=float, default=10.0)
p.add_argument("--jitter", type=float, default=0.05)
p.add_argument("--eps", type=float, default=0.5, help="IPM epsilon")
args = p.parse_args()
rng = np.random.default_rng(args.seed)
C, D, H = 10, args.dim, args.hidden

# ---- data: 10 classes, each a mixture of 3 gaussian blobs, plus a nonlinear feature warp
centers = rng.normal(0, 1.0, (C, 3, D))
def sample(labels):
    k = rng.integers(0, 3, len(labels))
    x = centers[labels, k] + rng.normal(0, 1.0, (len(labels), D))
    return np.tanh(x).astype(np.float32)

N = args.clients
if args.qty > 0:
    sizes = np.maximum(10, (args.samples * rng.lognormal(0, args.qty, N) / np.exp(args.qty**2 / 2))).astype(int)
else:
    sizes = np.full(N, args.samples)
if args.alpha > 0:
    props = rng.dirichlet([args.alpha] * C, N)
else:
    props = np.full((N, C), 1.0 / C)
client_y = [rng.choice(C, size=s, p=pr) for s, pr in zip(sizes, props)]
client_x = [sample(y) for y in client_y]

def make_ids(n):
    if args.ids == "plain":
        return [f"c{i}" for i in range(n)]
    if args.ids == "uuid":
        return [str(uuid.UUID(int=int(rng.integers(0, 2**62)) * 7 + i)) for i in range(n)]
    if args.ids == "unicode":
        names = ["Hôpital-Genève", "病院", "клиника", "🏥", "σ/ε", "a b", "client.1", "..", "' OR 1=1", "\t tab"]
        return [f"{names[i % len(names)]}#{i}" for i in range(n)]
    if args.ids == "int":
        return [i * 37 + 1 for i in range(n)]  # ints, stored as decimal strings
    if args.ids == "long":
        return [("x" * 300) + f"-{i:05d}" for i in range(n)]
ids = make_ids(N)
perm = rng.permutation(N)
mal = set(int(i) for i in perm[: args.n_mal])
honest_idx = [i for i in range(N) if i not in mal]
zero_client = honest_idx[args.zero_client] if args.zero_client >= 0 else None
late = set(honest_idx[-args.late:]) if args.late else set()
drop = set(honest_idx[-args.late - args.drop: len(honest_idx) - args.late]) if args.drop else set()
attack_rounds = set(int(x) for x in args.attack_rounds.split(",")) if args.attack_rounds else None

# ---- model
def init():
    return {"fc1.weight": (rng.normal(0, 1, (H, D)) / np.sqrt(D)).astype(np.float32),
            "fc1.bias": np.zeros(H, np.float32),
            "fc2.weight": (rng.normal(0, 1, (C, H)) / np.sqrt(H)).astype(np.float32),
            "fc2.bias": np.zeros(C, np.float32)}

def forward(w, x):
    h = np.maximum(0, x @ w["fc1.weight"].T + w["fc1.bias"])
    z = h @ w["fc2.weight"].T + w["fc2.bias"]
    z -= z.max(1, keepdims=True)
    pz = np.exp(z); pz /= pz.sum(1, keepdims=True)
    return h, pz

def local_train(w, x, y, flip=False):
    w = {k: v.copy() for k, v in w.items()}
    if flip:
        y = (C - 1) - y
    n = len(y)
    for _ in range(args.epochs):
        order = rng.permutation(n)
        for s in range(0, n, args.batch):
            b = order[s:s + args.batch]
            xb, yb = x[b], y[b]
            h, pz = forward(w, xb)
            g = pz.copy(); g[np.arange(len(b)), yb] -= 1; g /= len(b)
            gW2 = g.T @ h; gb2 = g.sum(0)
            dh = (g @ w["fc2.weight"]) * (h > 0)
            gW1 = dh.T @ xb; gb1 = dh.sum(0)
            w["fc2.weight"] -= args.lr * gW2; w["fc2.bias"] -= args.lr * gb2
            w["fc1.weight"] -= args.lr * gW1; w["fc1.bias"] -= args.lr * gb1
    _, pz = forward(w, x)
    acc = float((pz.argmax(1) == y).mean()); loss = float(-np.log(pz[np.arange(n), y] + 1e-12).mean())
    return w, acc, loss

def flat(u):
    return np.concatenate([u[k].ravel() for k in KEYS])
def unflat(v):
    out, o = {}, 0
    for k in KEYS:
        s = G[k].size; out[k] = v[o:o + s].reshape(G[k].shape).astype(np.float32); o += s
    return out

G = init(); KEYS = list(G)
testy = rng.integers(0, C, 2000); testx = sample(testy)
SHARED = rng.normal(0, 1, flat(G).size)
with Recorder(args.out, overwrite=True, meta={"source": "benchmarks/redteam/numpy_mlp.py", "args": vars(args)}) as rec:
    for r in range(args.rounds):
        avail = [i for i in range(N) if not (i in late and r < args.rounds // 2) and not (i in drop and r >= args.rounds // 2)]
        k = args.per_round or len(avail)
        part = sorted(rng.choice(avail, size=min(k, len(avail)), replace=False).tolist())
        attacking = attack_rounds is None or r in attack_rounds
        ups, meta = {}, {}
        for i in part:
            flip = (i in mal and args.attack == "labelflip" and attacking)
            w, acc, loss = local_train(G, client_x[i], client_y[i], flip=flip)
            ups[i] = flat({kk: w[kk] - G[kk] for kk in KEYS})
            meta[i] = (acc, loss)
        hon = [i for i in part if i not in mal]
        att = [i for i in part if i in mal]
        if att and attacking and args.attack not in ("none", "labelflip") and len(hon) >= 2:
            Hm = np.stack([ups[i] for i in hon]); mu = Hm.mean(0); sd = Hm.std(0)
            n, m = len(part), len(att)
            a = args.attack
            if a == "alie":
                s = int(np.floor(n / 2 + 1)) - m
                z = args.z if args.z >= 0 else float(_norm.ppf(max(min((n - s) / n, 0.999), 0.5)))
                mv = mu - z * sd
                for i in att: ups[i] = mv.copy()
            elif a in ("minmax", "minsum"):
                pert = -sd  # std perturbation
                dists = ((Hm[:, None] - Hm[None]) ** 2).sum(-1)
                lo, hi = 0.0, 50.0
                for _ in range(40):
                    g_ = (lo + hi) / 2; mv = mu + g_ * pert
                    dm = ((Hm - mv) ** 2).sum(-1)
                    ok = dm.max() <= dists.max() if a == "minmax" else dm.sum() <= dists.sum(1).max()
                    lo, hi = (g_, hi) if ok else (lo, g_)
                mv = mu + lo * pert
                for i in att: ups[i] = mv.copy()
            elif a == "ipm":
                for i in att: ups[i] = -args.eps * mu
            elif a == "signflip":
                for i in att: ups[i] = -ups[i]
            elif a == "noise":
                for i in att:
                    v = rng.normal(0, 1, mu.size); ups[i] = v / np.linalg.norm(v) * np.linalg.norm(ups[i])
            elif a == "sybil":
                base = ups[att[0]]  # all copy one attacker's honest-looking update... plus a target shift
                shift = -mu
                for i in att:
                    v = base + 0.5 * shift
                    ups[i] = v + args.jitter * np.linalg.norm(v) / np.sqrt(v.size) * rng.normal(0, 1, v.size)
            elif a == "scale":
                for i in att:  # boosted (model replacement's scaling)
                    ups[i] = args.scale * ups[i]
            elif a == "fang_trim":
                # Fang et al. 2020 (USENIX Security), the full-knowledge attack on trimmed mean / median: each
                # coordinate goes against the honest change's sign, just beyond the honest extreme on that side
                # (within a factor b = 2), each attacker drawing its own values
                lo_, hi_ = Hm.min(0), Hm.max(0)
                for i in att:
                    u_ = rng.uniform(1.0, 2.0, mu.size)
                    up = np.where(hi_ > 0, hi_ * u_, hi_ / u_)  # beyond the largest honest value
                    down = np.where(lo_ > 0, lo_ / u_, lo_ * u_)  # beyond the smallest
                    ups[i] = np.where(mu < 0, up, down)
            elif a == "fang_krum":
                # Fang et al. 2020, the full-knowledge attack on Krum: every attacker sends -λ·sign(honest change),
                # λ halved from an upper bound until Krum (n - m - 2 nearest neighbours) selects a crafted update
                direction = -np.sign(mu)
                d_ = mu.size
                dists = np.sqrt(((Hm[:, None] - Hm[None]) ** 2).sum(-1))
                k_ = max(n - m - 2, 1)
                bound = (np.sort(dists, 1)[:, 1:k_ + 1].sum(1).min() / ((n - 2 * m - 1) * np.sqrt(d_)) if n - 2 * m - 1 > 0
                         else 0.0) + np.linalg.norm(Hm, axis=1).max() / np.sqrt(d_)
                lam = bound
                while True:
                    crafted = lam * direction
                    allv = np.vstack([Hm] + [crafted] * m)
                    dd = ((allv[:, None] - allv[None]) ** 2).sum(-1)
                    scores = np.sort(dd, 1)[:, 1:k_ + 1].sum(1)
                    if int(np.argmin(scores)) >= len(hon) or lam < 1e-5 * bound:
                        break
                    lam /= 2
                for i in att: ups[i] = crafted.copy()
            elif a == "sybil_target":
                # backdoor-like: all attackers add a shared fixed direction of 1/3 their norm
                for i in att:
                    v = ups[i]; d = SHARED / np.linalg.norm(SHARED)
                    ups[i] = v + d * np.linalg.norm(v) / 3
            else:
                raise SystemExit("unknown attack " + a)
        with rec.round(r, G) as rnd:
            for i in part:
                u = ups[i]
                if i == zero_client and r % 3 == 1:
                    u = np.zeros_like(u)
                mets = {"train_accuracy": meta[i][0], "train_loss": meta[i][1]} if args.metrics else None
                rnd.client(ids[i], unflat(u), num_samples=int(sizes[i]), metrics=mets, delta=True)
            # FedAvg
            wts = np.array([sizes[i] for i in part], float); wts /= wts.sum()
            agg = sum(wt * ups[i] for wt, i in zip(wts, part))
            _, pz = forward(G, testx)
            rnd.global_metrics({"accuracy": float((pz.argmax(1) == testy).mean())})
        G = {kk: (G[kk] + unflat(agg)[kk]).astype(np.float32) for kk in KEYS}
    rec.final(G)
    rec.ground_truth(malicious=[ids[i] for i in sorted(mal)])
_, pz = forward(G, testx)
print(f"{args.out}: final acc {(pz.argmax(1) == testy).mean():.3f}; attackers {[str(ids[i]) for i in sorted(mal)]}")
