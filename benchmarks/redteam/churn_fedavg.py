"""A sixth red team's FedAvg loop (docs/detection.md, "A sixth red team"), written from scratch apart from the
simulator and the detectors, against the recorder's API alone.

Records every round with recorder.Recorder. Settings: identity churn of attackers (a new id every k
rounds), cross-device sampling (honest churn), attacks active only in a window of rounds, long runs,
FoolsGold's label-flip sybils (identical data, 1->7) among one-class honest clients, ALIE with the
paper's z, and attackers that report honest-looking training metrics.

python churn_fedavg.py RUN.h5 [options]   (see --help; churn_runs.txt lists the federations of the check)
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from scipy.stats import norm as _norm
from sklearn.datasets import load_digits

from recorder import Recorder

torch.set_num_threads(1)


def get_data(seed):
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(1000 + seed)
    idx = rng.permutation(len(y))
    ntest = 360
    te, tr = idx[:ntest], idx[ntest:]
    return x[tr], y[tr], x[te], y[te]


def split(y, n, how, rng, min_size=8):
    """Index lists for n clients. how: iid | dir:ALPHA | oneclass (client i holds class i % 10)."""
    if how == "iid":
        return [a for a in np.array_split(rng.permutation(len(y)), n)]
    if how == "oneclass":
        out = []
        for c in range(10):
            members = [i for i in range(n) if i % 10 == c]
            idx = rng.permutation(np.where(y == c)[0])
            for j, part in zip(members, np.array_split(idx, len(members))):
                out.append((j, part))
        out.sort(key=lambda t: t[0])
        return [p for _, p in out]
    assert how.startswith("dir:")
    alpha = float(how[4:])
    for _ in range(200):
        parts = [[] for _ in range(n)]
        for c in range(10):
            idx = rng.permutation(np.where(y == c)[0])
            p = rng.dirichlet([alpha] * n)
            cuts = (np.cumsum(p) * len(idx)).astype(int)[:-1]
            for i, chunk in enumerate(np.split(idx, cuts)):
                parts[i].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.array(p) for p in parts]
    raise RuntimeError("could not split")


def make_model(kind):
    if kind == "softreg":
        return torch.nn.Sequential(torch.nn.Linear(64, 10))
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def get_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def set_state(model, state):
    model.load_state_dict({k: torch.from_numpy(np.asarray(v).copy()) for k, v in state.items()})


def local_train(model, gstate, x, y, epochs, lr, batch, rng):
    set_state(model, gstate)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    n = len(y)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            b = perm[s:s + batch]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[b]), Y[b])
            loss.backward()
            opt.step()
    return get_state(model)


def evaluate(model, state, x, y):
    set_state(model, state)
    with torch.no_grad():
        out = model(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item()
        pred = out.argmax(1).numpy()
    return loss, float((pred == y).mean()), pred


def flat(d, keys):
    return np.concatenate([d[k].ravel() for k in keys])


def unflat(v, like, keys):
    out, i = {}, 0
    for k in keys:
        s = like[k].size
        out[k] = v[i:i + s].reshape(like[k].shape).astype(np.float32)
        i += s
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the run file to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="mlp", choices=["mlp", "softreg"])
    ap.add_argument("--n-honest", type=int, default=10, help="honest client pool")
    ap.add_argument("--per-round", type=int, default=0, help="honest clients sampled per round (0: all)")
    ap.add_argument("--split", default="dir:0.5")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--attack", default="none",
                    choices=["none", "scale", "signflip", "labelflip", "lf17", "alie", "ipm"])
    ap.add_argument("--n-attackers", type=int, default=0, help="physical attackers")
    ap.add_argument("--attackers-in-pool", action="store_true",
                    help="attackers are part of the sampled pool (cross-device) instead of joining every round")
    ap.add_argument("--churn", type=int, default=0, help="attacker takes a fresh id every k rounds (0: stable id)")
    ap.add_argument("--window", default="", help="a:b, attack active in rounds a..b inclusive")
    ap.add_argument("--absent-outside-window", action="store_true",
                    help="attackers do not take part outside the window (else they train honestly)")
    ap.add_argument("--scale", type=float, default=5.0)
    ap.add_argument("--alie-knowledge", default="own", choices=["own", "all"])
    ap.add_argument("--fake-metrics", action="store_true", help="attackers report the round's median honest metrics")
    ap.add_argument("--no-metrics", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    xtr, ytr, xte, yte = get_data(args.seed)
    M = args.n_attackers
    # data: honest pool and (for attacks with their own shard) the attackers' shards from the same split
    own_shards = args.attack not in ("lf17",)
    n_split = args.n_honest + (M if own_shards else 0)
    parts = split(ytr, n_split, args.split, rng, min_size=max(2, min(8, len(ytr) // (8 * n_split))))
    order = rng.permutation(n_split)
    parts = [parts[i] for i in order]
    honest_parts = parts[:args.n_honest]
    if args.attack == "lf17":
        ones = np.where(ytr == 1)[0]
        att_parts = [ones.copy() for _ in range(M)]  # identical data for every sybil (FoolsGold)
    else:
        att_parts = parts[args.n_honest:]

    # ids: honest 'dev-XXXX' drawn from a large space; attackers' ids drawn from the same space
    used = set()

    def fresh_id():
        while True:
            s = f"dev-{int(rng.integers(0, 10000)):04d}"
            if s not in used:
                used.add(s)
                return s

    honest_ids = [fresh_id() for _ in range(args.n_honest)]
    att_ids = [fresh_id() for _ in range(M)]
    all_att_ids = set(att_ids)
    window = None
    if args.window:
        a, b = args.window.split(":")
        window = (int(a), int(b))

    model = make_model(args.model)
    gstate = get_state(model)
    keys = list(gstate)
    path = args.out
    meta = {"sixth_red_team": vars(args)}
    # alie z from Baruch et al. 2019: s = floor(n/2 + 1) - m, z = Phi^-1((n - s) / n)
    pool_rng = np.random.default_rng(args.seed + 77)
    with Recorder(path, meta=meta, overwrite=True, fsync=False) as rec:
        for r in range(args.rounds):
            active = window is None or window[0] <= r <= window[1]
            if args.churn and r > 0 and r % args.churn == 0:
                att_ids = [fresh_id() for _ in range(M)]
                all_att_ids |= set(att_ids)
            # who takes part
            if args.attackers_in_pool:
                pool = list(range(args.n_honest + M))
                k = args.per_round
                chosen = sorted(pool_rng.choice(len(pool), size=k, replace=False))
                honest_sel = [i for i in chosen if i < args.n_honest]
                att_sel = [i - args.n_honest for i in chosen if i >= args.n_honest]
            else:
                if args.per_round:
                    honest_sel = sorted(pool_rng.choice(args.n_honest, size=args.per_round, replace=False))
                else:
                    honest_sel = list(range(args.n_honest))
                att_sel = list(range(M))
            if window is not None and not active and args.absent_outside_window:
                att_sel = []
            n_total = len(honest_sel) + len(att_sel)
            replies = []  # (cid, state, n, metrics, is_att)
            hon_updates, hon_metrics = [], []
            for i in honest_sel:
                p = honest_parts[i]
                st = local_train(model, gstate, xtr[p], ytr[p], args.epochs, args.lr, args.batch, rng)
                loss, acc, _ = evaluate(model, st, xtr[p], ytr[p])
                replies.append([honest_ids[i], st, len(p), {"loss": loss, "accuracy": acc}, False])
                hon_updates.append(flat(st, keys) - flat(gstate, keys))
                hon_metrics.append((loss, acc))
            att_replies = []
            att_honest_upd = []
            for j in att_sel:
                p = att_parts[j]
                x, y = xtr[p], ytr[p].copy()
                if active and args.attack == "labelflip":
                    y = 9 - y
                if active and args.attack == "lf17":
                    y = np.full_like(y, 7)
                st = local_train(model, gstate, x, y, args.epochs, args.lr, args.batch, rng)
                u = flat(st, keys) - flat(gstate, keys)
                att_honest_upd.append(u)
                att_replies.append((j, p, u))
            m_act = len(att_sel)
            for idx, (j, p, u) in enumerate(att_replies):
                if active:
                    if args.attack == "scale":
                        u = u * args.scale
                    elif args.attack == "signflip":
                        u = -u
                    elif args.attack == "ipm":
                        u = -0.5 * np.mean(hon_updates, axis=0)
                    elif args.attack == "alie":
                        ref = np.array(att_honest_upd if args.alie_knowledge == "own" else hon_updates + att_honest_upd)
                        n = n_total
                        s = math.floor(n / 2 + 1) - m_act
                        z = float(_norm.ppf((n - s) / n))
                        u = ref.mean(0) - z * ref.std(0)
                st = unflat(flat(gstate, keys) + u, gstate, keys)
                # what an honest client would report for the weights it sends, on its own (clean-labelled) data
                yl = ytr[p] if args.attack != "lf17" else np.full(len(p), 7)  # the sybil believes its data
                loss, acc, _ = evaluate(model, st, xtr[p], yl)
                replies.append([att_ids[j], st, len(p), {"loss": loss, "accuracy": acc}, True])
            if args.fake_metrics and hon_metrics:
                ml = float(np.median([m[0] for m in hon_metrics]))
                ma = float(np.median([m[1] for m in hon_metrics]))
                for rep in replies:
                    if rep[4]:
                        rep[3] = {"loss": ml, "accuracy": ma}
            perm = rng.permutation(len(replies))
            replies = [replies[i] for i in perm]
            # FedAvg
            tot = sum(rep[2] for rep in replies)
            newflat = sum(rep[2] / tot * flat(rep[1], keys) for rep in replies)
            with rec.round(r, gstate) as rnd:
                for cid, st, n, met, _ in replies:
                    rnd.client(cid, st, num_samples=int(n), metrics=None if args.no_metrics else met)
                gstate = unflat(newflat, gstate, keys)
                _, acc, pred = evaluate(model, gstate, xte, yte)
                gm = {"accuracy": acc}
                if args.attack == "lf17":
                    gm["attack_success"] = float((pred[yte == 1] == 7).mean())
                rnd.global_metrics(gm)
        rec.final(gstate)
        rec.ground_truth(malicious=sorted(all_att_ids))
    info = {"path": path, "attackers": sorted(all_att_ids), "final_acc": acc, "seconds": round(time.time() - t0, 1)}
    if args.attack == "lf17":
        info["attack_success"] = gm["attack_success"]
    print(json.dumps(info))


if __name__ == "__main__":
    main()
