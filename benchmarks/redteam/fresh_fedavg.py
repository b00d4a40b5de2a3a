"""A fresh-eyes auditor's own FedAvg harness (plain PyTorch; session 40), for docs/detection.md "A twelfth check".

Written apart from ``fedforensics simulate``, from the papers: partitions (Dirichlet, one or two classes a client,
quantity skew), models (MLP, CNN, BatchNorm CNN, logistic regression), client heterogeneity (epochs, learning
rates, FedProx, momentum, DP clipping and noise, churn) and attacks (ALIE, min-max, min-sum, IPM, a diagonal-trigger
backdoor, sybils, label flipping). Each run writes ``OUT/NAME.h5`` (no ground truth inside: the audit is blind),
``NAME.truth.json``, ``NAME.report.json`` and ``NAME.summary.json``; ``OUT`` is ``$TWELFTH_OUT`` or the
benchmarks' cache's ``twelfth`` (``benchmarks/.cache``, or ``$FEDFORENSICS_BENCH_CACHE``). Driven by ``benchmarks/twelfth_check.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.stats import norm as _norm
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from recorder import Recorder

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("TWELFTH_OUT") or os.path.join(os.environ.get("FEDFORENSICS_BENCH_CACHE") or os.path.join(HERE, "..", ".cache"), "twelfth")

# ----------------------------------------------------------------------------- data

def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


def synthetic(rng, n=3000, dim=20, classes=5):
    centers = rng.normal(0, 1.0, size=(classes, dim))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1.3, size=(n, dim))
    return x.astype(np.float32), y.astype(np.int64)


def split_test(x, y, rng, frac=0.2):
    idx = rng.permutation(len(y))
    k = int(len(y) * frac)
    return x[idx[k:]], y[idx[k:]], x[idx[:k]], y[idx[:k]]


def part_dirichlet(y, n_clients, alpha, rng, min_size=8):
    classes = np.unique(y)
    while True:
        shards = [[] for _ in range(n_clients)]
        for c in classes:
            idx = rng.permutation(np.where(y == c)[0])
            p = rng.dirichlet([alpha] * n_clients)
            cuts = (np.cumsum(p) * len(idx)).astype(int)[:-1]
            for i, part in enumerate(np.split(idx, cuts)):
                shards[i].extend(part.tolist())
        if min(len(s) for s in shards) >= min_size:
            return [np.array(s) for s in shards]


def part_classes(y, n_clients, rng, per_client=(1, 2)):
    """Pathological: each client holds 1 or 2 classes; each class's samples split among its holders."""
    classes = np.unique(y)
    owned = []
    for i in range(n_clients):
        k = rng.choice(per_client)
        first = classes[i % len(classes)]
        cs = [first] if k == 1 else [first, rng.choice([c for c in classes if c != first])]
        owned.append(cs)
    holders = {c: [i for i in range(n_clients) if c in owned[i]] for c in classes}
    shards = [[] for _ in range(n_clients)]
    for c in classes:
        idx = rng.permutation(np.where(y == c)[0])
        for h, part in zip(holders[c], np.array_split(idx, len(holders[c]))):
            shards[h].extend(part.tolist())
    return [np.array(s) for s in shards], owned


def part_quantity(y, n_clients, rng, big_frac=0.4, sigma=1.0):
    """One client holds big_frac of the data (IID), the others lognormal shares of the rest."""
    idx = rng.permutation(len(y))
    nb = int(big_frac * len(y))
    rest = idx[nb:]
    w = rng.lognormal(0, sigma, n_clients - 1)
    w = w / w.sum()
    cuts = (np.cumsum(w) * len(rest)).astype(int)[:-1]
    parts = [idx[:nb]] + [p for p in np.split(rest, cuts)]
    return parts


def part_iid(y, n_clients, rng):
    return np.array_split(rng.permutation(len(y)), n_clients)

# ----------------------------------------------------------------------------- models

def make_model(kind, in_dim=64, classes=10):
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, 32), nn.ReLU(), nn.Linear(32, classes))
    if kind == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, classes))
    if kind == "cnn":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                             nn.ReLU(), nn.Flatten(), nn.Linear(16 * 16, 10))
    if kind == "bncnn":
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(128, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    raise ValueError(kind)


def get_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def flat(update):  # dict -> 1-d float tensor over float entries
    return torch.cat([v.float().reshape(-1) for k, v in update.items() if v.is_floating_point()])


def unflat(vec, like):
    out, i = {}, 0
    for k, v in like.items():
        if v.is_floating_point():
            out[k] = vec[i:i + v.numel()].reshape(v.shape).to(v.dtype)
            i += v.numel()
        else:
            out[k] = torch.zeros_like(v)
    return out

# ----------------------------------------------------------------------------- local training

def local_train(model, gstate, x, y, *, epochs=2, lr=0.1, momentum=0.0, prox_mu=0.0, batch=32, rng=None,
                poison=None, label_map=None, min_batch=2):
    """Returns (update dict = local - global, metrics)."""
    model.load_state_dict(gstate)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    g_params = [p.detach().clone() for p in model.parameters()]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if label_map is not None:
        yt = torch.from_numpy(label_map[y])
    losses, correct, seen = [], 0, 0
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 31)))
    for ep in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        for b in perm.split(batch):
            xb, yb = xt[b], yt[b]
            if poison is not None:
                xb, yb = poison(xb, yb, gen)
            if len(b) < max(2, min_batch) and any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
                continue
            opt.zero_grad()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            if prox_mu > 0:
                loss = loss + prox_mu / 2 * sum(((p - g) ** 2).sum() for p, g in zip(model.parameters(), g_params))
            loss.backward()
            opt.step()
            if ep == epochs - 1:
                losses.append(loss.item() * len(b))
                correct += (out.argmax(1) == yb).sum().item()
                seen += len(b)
    st = model.state_dict()
    upd = {k: st[k] - gstate[k] for k in gstate}
    return upd, {"train_loss": sum(losses) / max(seen, 1), "train_accuracy": correct / max(seen, 1)}


def evaluate(model, state, x, y, trigger=None, target=None):
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        xt = torch.from_numpy(x)
        acc = (model(xt).argmax(1).numpy() == y).mean()
        asr = None
        if trigger is not None:
            keep = y != target
            xp = trigger(xt[keep])
            asr = (model(xp).argmax(1).numpy() == target).mean()
    return float(acc), (None if asr is None else float(asr))

# ----------------------------------------------------------------------------- attacks (written from the papers)

def diag_trigger(xb):
    """A 3-pixel anti-diagonal in the bottom-left corner (not a '+', not a square)."""
    xb = xb.clone()
    for r, c in ((7, 0), (6, 1), (5, 2)):
        xb[:, 0, r, c] = 1.0
    return xb


def make_backdoor_poison(target, rate=0.5):
    def poison(xb, yb, gen):
        xb, yb = xb.clone(), yb.clone()
        m = torch.rand(len(yb), generator=gen) < rate
        if m.any():
            xb[m] = diag_trigger(xb[m])
            yb[m] = target
        return xb, yb
    return poison


def alie(benign, n_total, n_mal):
    """Baruch et al. 2019: mean + z_max * std, z_max from the number of supporters needed."""
    s = int(np.floor(n_total / 2 + 1)) - n_mal
    z = _norm.ppf((n_total - s) / n_total)
    B = torch.stack(benign)
    return B.mean(0) + z * B.std(0), float(z)


def _gamma_search(B, perturb, ok, gamma=10.0, tol=1e-4):
    mu = B.mean(0)
    lo, hi = 0.0, gamma
    # expand if whole range OK
    while ok(mu + hi * perturb) and hi < 1e4:
        lo, hi = hi, hi * 2
    while hi - lo > tol * max(1.0, hi):
        mid = (lo + hi) / 2
        if ok(mu + mid * perturb):
            lo = mid
        else:
            hi = mid
    return mu + lo * perturb, lo


def min_max(benign, kind="std"):
    """Shejwalkar & Houmansadr 2021 (AGR-agnostic Min-Max): max_i ||m - g_i|| <= max_{i,j} ||g_i - g_j||."""
    B = torch.stack(benign)
    perturb = -B.std(0) if kind == "std" else -B.mean(0) / B.mean(0).norm()
    D = torch.cdist(B, B)
    bound = D.max()
    return _gamma_search(B, perturb, lambda m: (B - m).norm(dim=1).max() <= bound)


def min_sum(benign, kind="unit"):
    """Shejwalkar & Houmansadr 2021 (Min-Sum): sum_i ||m - g_i||^2 <= max_i sum_j ||g_i - g_j||^2."""
    B = torch.stack(benign)
    perturb = -B.std(0) if kind == "std" else -B.mean(0) / B.mean(0).norm()
    D = torch.cdist(B, B) ** 2
    bound = D.sum(1).max()
    return _gamma_search(B, perturb, lambda m: ((B - m).norm(dim=1) ** 2).sum() <= bound)


def ipm(benign, eps):
    """Xie et al. 2020 inner-product manipulation: -eps * mean of the benign updates."""
    return -eps * torch.stack(benign).mean(0)

# ----------------------------------------------------------------------------- the federation

def run(cfg):
    name = cfg["name"]
    seed = cfg.get("seed", 0)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    t0 = time.time()
    # data
    if cfg.get("data", "digits") == "digits":
        X, Y = digits()
        in_dim, n_cls = 64, 10
    else:
        X, Y = synthetic(rng)
        in_dim, n_cls = X.shape[1], 5
    xtr, ytr, xte, yte = split_test(X, Y, rng)
    n = cfg["clients"]
    p = cfg.get("partition", "iid")
    if p == "dirichlet":
        shards = part_dirichlet(ytr, n, cfg["alpha"], rng)
    elif p == "classes":
        shards, _ = part_classes(ytr, n, rng)
    elif p == "quantity":
        shards = part_quantity(ytr, n, rng, cfg.get("big_frac", 0.4))
    else:
        shards = part_iid(ytr, n, rng)
    cids = [f"c{i:02d}" for i in range(n)]
    data = {c: (xtr[s], ytr[s]) for c, s in zip(cids, shards)}
    attackers = list(cfg.get("attackers", []))
    if cfg.get("random_attackers"):
        attackers = sorted(rng.choice(cids, cfg["random_attackers"], replace=False).tolist())
    attack = cfg.get("attack")
    # per-client training settings
    base = dict(epochs=cfg.get("epochs", 2), lr=cfg.get("lr", 0.1), momentum=cfg.get("momentum", 0.0),
                prox_mu=cfg.get("prox_mu", 0.0), batch=cfg.get("batch", 32))
    per = {}
    for i, c in enumerate(cids):
        s = dict(base)
        if cfg.get("hetero"):
            s["epochs"] = int(rng.integers(1, 6))
            s["lr"] = float(rng.choice([0.02, 0.05, 0.1, 0.2]))
        if cfg.get("mixed_opt"):
            kind = ["sgd", "prox", "momentum"][i % 3]
            if kind == "prox":
                s["prox_mu"] = 0.5
            if kind == "momentum":
                s["momentum"], s["lr"] = 0.9, s["lr"] / 3
        per[c] = s
    model = make_model(cfg.get("model", "mlp"), in_dim, n_cls)
    gstate = get_state(model)
    rounds = cfg.get("rounds", 25)
    target = cfg.get("target", 4)
    label_map = np.array([n_cls - 1 - k for k in range(n_cls)])
    backdoor = attack in ("backdoor", "sybil")
    sizes_info = {c: len(data[c][1]) for c in cids}
    hist = {c: np.bincount(data[c][1], minlength=n_cls).tolist() for c in cids}
    log = []
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"{name}.h5")
    meta = {"dataset": cfg.get("data", "digits"), "model": cfg.get("model", "mlp"), "aggregation": "fedavg",
            "auditor_setting": cfg.get("desc", "")}
    with Recorder(path, meta=meta, overwrite=True) as rec:
        for r in range(rounds):
            part = schedule(cfg, cids, r, rng)
            with rec.round(r, gstate) as rnd:
                ups, mets = {}, {}
                for c in part:
                    xc, yc = data[c]
                    s = per[c]
                    kw = dict(epochs=s["epochs"], lr=s["lr"], momentum=s["momentum"], prox_mu=s["prox_mu"],
                              batch=s["batch"], rng=rng, min_batch=cfg.get("min_batch", 2))
                    if c in attackers and attack == "backdoor":
                        kw["poison"] = make_backdoor_poison(target, cfg.get("poison_rate", 0.5))
                        kw["epochs"] = cfg.get("attack_epochs", s["epochs"])
                    if c in attackers and attack == "labelflip":
                        kw["label_map"] = label_map
                    ups[c], mets[c] = local_train(model, gstate, xc, yc, **kw)
                    if cfg.get("dp"):
                        v = flat(ups[c])
                        C = cfg["dp"]["clip"]
                        v = v * min(1.0, C / (v.norm().item() + 1e-12))
                        v = v + torch.randn(v.shape, generator=torch.Generator().manual_seed(int(rng.integers(1 << 31)))) * cfg["dp"]["sigma"] * C
                        ups[c] = {**unflat(v, ups[c]), **{k: t for k, t in ups[c].items() if not t.is_floating_point()}}
                # crafted model-poisoning attacks (omniscient: they see this round's honest updates)
                mal_here = [c for c in part if c in attackers]
                honest_here = [c for c in part if c not in attackers]
                extra = {}
                if mal_here and attack in ("alie", "minmax", "minsum", "ipm", "sybil"):
                    like = ups[honest_here[0]]
                    benign = [flat(ups[c]) for c in honest_here]
                    if attack == "alie":
                        v, z = alie(benign + ([flat(ups[c]) for c in mal_here] if cfg.get("alie_own") else []),
                                    len(part), len(mal_here))
                        extra["z"] = z
                    elif attack == "minmax":
                        v, g = min_max(benign, cfg.get("perturb", "std"))
                        extra["gamma"] = g
                    elif attack == "minsum":
                        v, g = min_sum(benign, cfg.get("perturb", "unit"))
                        extra["gamma"] = g
                    elif attack == "ipm":
                        v = ipm(benign, cfg.get("eps", 0.2))
                    if attack == "sybil":  # near-identical copies of one backdoored update
                        lead = mal_here[0]
                        xc, yc = data[lead]
                        bu, _ = local_train(model, gstate, xc, yc, epochs=base["epochs"], lr=base["lr"], batch=base["batch"],
                                            rng=rng, poison=make_backdoor_poison(target, 0.5))
                        v = flat(bu)
                        like = bu
                    for c in mal_here:
                        vc = v
                        if attack == "sybil":
                            vc = v + torch.randn(v.shape) * cfg.get("sybil_noise", 0.01) * v.norm() / np.sqrt(v.numel())
                        ups[c] = {**unflat(vc, like), **{k: t for k, t in ups[c].items() if not t.is_floating_point()}}
                # record
                for c in part:
                    rnd.client(c, {k: t.numpy() for k, t in ups[c].items()}, num_samples=len(data[c][1]),
                               metrics=mets[c] if cfg.get("metrics", True) else None, delta=True)
                # FedAvg
                tot = sum(len(data[c][1]) for c in part)
                new = {}
                for k, v0 in gstate.items():
                    if v0.is_floating_point():
                        new[k] = v0 + sum(ups[c][k] * (len(data[c][1]) / tot) for c in part)
                    else:
                        new[k] = v0 + ups[part[0]][k]
                gstate = new
                acc, asr = evaluate(model, gstate, xte, yte, diag_trigger if backdoor else None, target)
                gm = {"accuracy": acc}
                if asr is not None:
                    gm["attack_success"] = asr
                rnd.global_metrics(gm)
                log.append({"round": r, "clients": len(part), "acc": acc, "asr": asr, **extra})
        rec.final({k: v.numpy() for k, v in gstate.items()})
    # NB: ground truth deliberately NOT recorded in the file
    truth = {"attackers": attackers, "attack": attack, "sizes": sizes_info, "hist": hist, "cfg": cfg}
    json.dump(truth, open(os.path.join(OUT, f"{name}.truth.json"), "w"), indent=1, default=str)
    train_s = time.time() - t0
    print(f"[{name}] trained in {train_s:.0f}s; final acc {log[-1]['acc']:.3f} asr {log[-1]['asr']} "
          f"extra {({k: v for k, v in log[-1].items() if k not in ('round','clients','acc','asr')})}", flush=True)
    return analyze(name, truth, log)


def schedule(cfg, cids, r, rng):
    if cfg.get("per_round"):
        return sorted(rng.choice(cids, cfg["per_round"], replace=False).tolist())
    if cfg.get("churn"):
        ch = cfg["churn"]  # {"late": [...], "join": r1, "drop": [...], "leave": r2}
        out = []
        for c in cids:
            if c in ch["late"] and r < ch["join"]:
                continue
            if c in ch["drop"] and r >= ch["leave"]:
                continue
            out.append(c)
        return out
    return list(cids)


def analyze(name, truth, log):
    path = os.path.join(OUT, f"{name}.h5")
    rep = os.path.join(OUT, f"{name}.report.json")
    t0 = time.time()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(["fedforensics", "analyze", path, "--json", rep, "--quiet"], capture_output=True, text=True, env=env)
    if p.returncode not in (0, 1):
        print("ANALYZE FAILED", p.returncode, p.stderr)
        sys.exit(1)
    R = json.load(open(rep))
    att = set(truth["attackers"])
    rows = []
    for c in R["clients"]:
        rows.append({"id": c["id"], "verdict": c["verdict"], "score": c["score"], "flagged_by": c["flagged_by"],
                     "attacker": c["id"] in att, "rounds": c["rounds"]})
    lvl = {"benign": 0, "suspicious": 1, "malicious": 2}
    y = [r["attacker"] for r in rows]
    auc_score = auc_cons = None
    if 0 < sum(y) < len(y):
        auc_score = float(roc_auc_score(y, [r["score"] for r in rows]))
        auc_cons = float(roc_auc_score(y, [lvl[r["verdict"]] * 1000 + r["score"] for r in rows]))
    caught = [r["id"] for r in rows if r["attacker"] and r["verdict"] != "benign"]
    accused = [(r["id"], r["verdict"], r["flagged_by"]) for r in rows if not r["attacker"] and r["verdict"] != "benign"]
    summ = {"name": name, "desc": truth["cfg"].get("desc", ""), "attack": truth["attack"], "attackers": truth["attackers"],
            "caught": caught, "n_att": len(att), "accused": accused, "auroc_score": auc_score, "auroc_consensus": auc_cons,
            "final_acc": log[-1]["acc"], "final_asr": log[-1]["asr"], "verdict_counts": R["verdict_counts"],
            "persistence": R.get("persistence"), "analyze_s": round(time.time() - t0, 1), "notes": R["notes"]}
    json.dump(summ, open(os.path.join(OUT, f"{name}.summary.json"), "w"), indent=1)
    print(f"[{name}] verdicts {R['verdict_counts']} caught {len(caught)}/{len(att)} accused {accused} "
          f"AUROC score {auc_score} consensus {auc_cons} (analyze {summ['analyze_s']}s)", flush=True)
    return summ


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Re-audit a run benchmarks/twelfth_check.py recorded: OUT/NAME.h5 and its truth.")
    parser.add_argument("name", metavar="NAME", help=f"a run of {OUT} (its NAME.h5 and NAME.truth.json)")
    nm = parser.parse_args().name
    truth_file = os.path.join(OUT, f"{nm}.truth.json")
    if not os.path.exists(truth_file):
        parser.error(f"no run {nm!r} in {OUT}: record it first with benchmarks/twelfth_check.py {nm}")
    tr = json.load(open(truth_file))
    analyze(nm, tr, [{"acc": float("nan"), "asr": None}])
