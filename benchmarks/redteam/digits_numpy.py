"""A fifth red team's FedAvg: a numpy MLP or softmax regression on scikit-learn's digits, written apart.

    python benchmarks/redteam/digits_numpy.py OUT.h5 --setting N-dir0.3-30-bigsilo-2ep --attack clean --seed 5

Written by a fresh-eyes check against the recorder's API alone (no torch, no fedforensics.simulate): a
64-32-10 ReLU MLP or a softmax regression trained by local SGD on the 1,437 training digits, IID or Dirichlet
label skew, lognormal sample counts, 1-5 local epochs a client, partial participation, ids of odd shapes, and
attacks as their papers state them, none in the other red teams in this form: inner-product manipulation
(Xie et al. 2020, ε 0.1 and 0.5), Fang et al. 2020's full-knowledge attack on trimmed mean (the server then
aggregates by trimmed mean), free riders (the previous global step, ±10 %, or tiny noise), a boost ramped
from 1× to 3× over the rounds, a backdoor (a 2×2 corner trigger, target 0) in every third round (plain, or
5 epochs and ×5), and label flipping (i → 9 − i) clipped to the honest median norm.
benchmarks/digits_bench.py runs the federations of digits_runs.txt.
"""

import argparse
import uuid

import numpy as np
from sklearn.datasets import load_digits

from recorder import Recorder

# ---------------------------------------------------------------- data
_d = load_digits()
X_ALL = (_d.data / 16.0).astype(np.float64)
Y_ALL = _d.target.astype(np.int64)
_perm = np.random.RandomState(12345).permutation(len(Y_ALL))
X_TR, Y_TR = X_ALL[_perm[:1437]], Y_ALL[_perm[:1437]]
X_TE, Y_TE = X_ALL[_perm[1437:]], Y_ALL[_perm[1437:]]
C = 10
TRIGGER_PIX = [54, 55, 62, 63]  # bottom-right 2x2 corner of the 8x8 image
TARGET = 0


def add_trigger(x):
    x = x.copy()
    x[:, TRIGGER_PIX] = 1.0
    return x


# ---------------------------------------------------------------- models (dict of arrays)
def init_model(kind, rng):
    if kind == "mlp":
        return {
            "fc1.weight": (rng.randn(32, 64) * np.sqrt(2 / 64)).astype(np.float32),
            "fc1.bias": np.zeros(32, np.float32),
            "fc2.weight": (rng.randn(10, 32) * np.sqrt(1 / 32)).astype(np.float32),
            "fc2.bias": np.zeros(10, np.float32),
        }
    return {"linear.weight": np.zeros((10, 64), np.float32), "linear.bias": np.zeros(10, np.float32)}


def forward(m, x):
    if "fc1.weight" in m:
        h_pre = x @ m["fc1.weight"].T + m["fc1.bias"]
        h = np.maximum(h_pre, 0)
        z = h @ m["fc2.weight"].T + m["fc2.bias"]
        return z, (h_pre, h)
    return x @ m["linear.weight"].T + m["linear.bias"], None


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def loss_acc(m, x, y):
    if len(y) == 0:
        return float("nan"), float("nan")
    p = softmax(forward(m, x)[0])
    return float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean()), float((p.argmax(1) == y).mean())


def grads(m, x, y):
    z, cache = forward(m, x)
    p = softmax(z)
    p[np.arange(len(y)), y] -= 1
    g = p / len(y)
    if "fc1.weight" in m:
        h_pre, h = cache
        out = {"fc2.weight": g.T @ h, "fc2.bias": g.sum(0)}
        gh = (g @ m["fc2.weight"]) * (h_pre > 0)
        out["fc1.weight"] = gh.T @ x
        out["fc1.bias"] = gh.sum(0)
        return out
    return {"linear.weight": g.T @ x, "linear.bias": g.sum(0)}


def local_train(glob, x, y, rng, epochs=2, lr=0.1, bs=16):
    m = {k: v.astype(np.float64).copy() for k, v in glob.items()}
    n = len(y)
    for _ in range(epochs):
        idx = rng.permutation(n)
        for s in range(0, n, bs):
            b = idx[s:s + bs]
            g = grads(m, x[b], y[b])
            for k in m:
                m[k] -= lr * g[k]
    delta = {k: (m[k] - glob[k]).astype(np.float32) for k in m}
    lo, ac = loss_acc(m, x, y)
    return delta, {"loss": lo, "accuracy": ac}


def flat(d):
    return np.concatenate([v.ravel() for v in d.values()])


def unflat(vec, like):
    out, i = {}, 0
    for k, v in like.items():
        out[k] = vec[i:i + v.size].reshape(v.shape).astype(np.float32)
        i += v.size
    return out


# ---------------------------------------------------------------- partition
def partition(n_clients, mode, alpha, sizes, rng, sigma=1.0):
    n = len(Y_TR)
    if mode == "iid":
        if sizes == "lognormal":
            w = rng.lognormal(0, sigma, n_clients)
            cnt = np.maximum(8, (w / w.sum() * n).astype(int))
        else:
            cnt = np.full(n_clients, n // n_clients)
        idx = rng.permutation(n)
        parts, s = [], 0
        for c in cnt:
            parts.append(idx[s:s + c])
            s += c
        return parts
    # dirichlet label skew, with optional size skew via per-client weights
    size_w = rng.lognormal(0, sigma * 0.8, n_clients) if sizes == "lognormal" else np.ones(n_clients)
    parts = [[] for _ in range(n_clients)]
    for c in range(C):
        ids = rng.permutation(np.where(Y_TR == c)[0])
        p = rng.dirichlet(alpha * np.ones(n_clients)) * size_w
        p /= p.sum()
        cuts = (np.cumsum(p) * len(ids)).astype(int)[:-1]
        for j, chunk in enumerate(np.split(ids, cuts)):
            parts[j].extend(chunk.tolist())
    # ensure every client has at least 6 samples
    for j in range(n_clients):
        if len(parts[j]) < 6:
            donor = int(np.argmax([len(p) for p in parts]))
            pick = set(rng.choice(len(parts[donor]), 6 - len(parts[j]), replace=False).tolist())
            take = [v for q, v in enumerate(parts[donor]) if q in pick]  # random samples, not the donor's first class
            parts[donor] = [v for q, v in enumerate(parts[donor]) if q not in pick]
            parts[j].extend(take)
    return [np.array(p, dtype=int) for p in parts]


def make_ids(style, n, rng):
    if style == "hospital":
        return [f"hospital-{i + 1}" for i in range(n)]
    if style == "uuid":
        return [str(uuid.UUID(int=int(rng.randint(0, 2**31)) * 2**96 + i)) for i in range(n)]
    if style == "int":
        return [str(i * 7 + 3) for i in range(n)]
    # mixed odd shapes
    out = []
    for i in range(n):
        k = i % 4
        out.append([f"site/{i}", f"Krankenhaus Zürich #{i}", str(1000 + i), f"node.{i}.eu-west"][k])
    return out


# ---------------------------------------------------------------- attacks
def fang_trim(honest, n_mal, rng, b=2.0):
    """Fang et al. 2020 full-knowledge attack on trimmed mean / median (updates as vectors)."""
    H = np.stack(honest)
    s = np.sign(H.mean(0))
    wmax, wmin = H.max(0), H.min(0)
    out = []
    for _ in range(n_mal):
        v = np.empty_like(wmax)
        neg = s < 0  # honest direction negative -> push positive, beyond w_max
        lo = np.where(wmax > 0, wmax, wmax / b)
        hi = np.where(wmax > 0, wmax * b, wmax)
        v[neg] = rng.uniform(lo[neg], hi[neg])
        pos = ~neg  # honest direction positive -> push negative, below w_min
        lo2 = np.where(wmin > 0, wmin / b, wmin * b)
        hi2 = np.where(wmin > 0, wmin, wmin)
        v[pos] = rng.uniform(lo2[pos], hi2[pos])
        out.append(v)
    return out


def trimmed_mean(vs, k):
    A = np.sort(np.stack(vs), axis=0)
    if k > 0 and len(vs) > 2 * k:
        A = A[k:len(vs) - k]
    return A.mean(0)


# ---------------------------------------------------------------- one federation
def run_federation(path, setting, attack, seed):
    rng = np.random.RandomState(seed)
    N = setting["clients"]
    parts = partition(N, setting["partition"], setting.get("alpha", 1.0), setting.get("sizes", "equal"), rng,
                      setting.get("sigma", 1.0))
    ids = make_ids(setting["ids"], N, rng)
    kind = setting["model"]
    R = setting["rounds"]
    per_round = setting.get("per_round", N)

    n_mal = {"clean": 0, "ipm0.1": max(2, N // 5), "ipm0.5": max(2, N // 5), "fang": max(2, N // 5),
             "freerider-prev": 1, "freerider-zero": 2, "ramp": 2, "backdoor": 1, "backdoor-strong": 1, "labelflip-clip": 2}[attack]
    mal = list(rng.choice(N, n_mal, replace=False)) if n_mal else []
    mal_ids = [ids[i] for i in mal]

    glob = init_model(kind, rng)
    if setting.get("epochs") == "hetero":
        epochs = rng.randint(1, 6, N)
    else:
        epochs = np.full(N, 2)
    prev_step = {k: np.zeros_like(v) for k, v in glob.items()}
    meta = {"setting": setting, "attack": attack, "seed": seed, "attackers": mal_ids}
    with Recorder(path, meta=meta, overwrite=True, fsync=False) as rec:
        for r in range(R):
            chosen = sorted(rng.choice(N, per_round, replace=False)) if per_round < N else list(range(N))
            crng = np.random.RandomState(seed * 1000 + r)
            honest_res, mal_res = {}, {}
            for i in chosen:
                x, y = X_TR[parts[i]], Y_TR[parts[i]]
                if i in mal and attack == "labelflip-clip":
                    d, met = local_train(glob, x, 9 - y, crng, epochs=epochs[i])
                    mal_res[i] = (d, met, len(y))
                elif i in mal and attack.startswith("backdoor") and r % 3 == 0:
                    k = len(y) // 2
                    pidx = crng.permutation(len(y))[:k]
                    xp, yp = x.copy(), y.copy()
                    xp[pidx] = add_trigger(xp[pidx])
                    yp[pidx] = TARGET
                    if attack == "backdoor-strong":  # more local work and model-replacement-style boost x5
                        d, met = local_train(glob, xp, yp, crng, epochs=5)
                        d = {kk: v * 5.0 for kk, v in d.items()}
                    else:
                        d, met = local_train(glob, xp, yp, crng, epochs=epochs[i])
                    mal_res[i] = (d, met, len(y))
                elif i in mal and attack == "ramp":
                    d, met = local_train(glob, x, y, crng, epochs=epochs[i])
                    boost = 1.0 + 2.0 * r / (R - 1)
                    mal_res[i] = ({k: v * boost for k, v in d.items()}, met, len(y))
                elif i in mal and attack.startswith("freerider"):
                    lo, ac = loss_acc(glob, x, y)
                    met = {"loss": lo * 0.9, "accuracy": min(1.0, ac * 1.05)}
                    if attack == "freerider-prev":
                        vec = flat(prev_step)
                        vec = vec * (1 + 0.1 * crng.randn(vec.size)) + 1e-4 * crng.randn(vec.size)
                    else:
                        vec = 1e-4 * crng.randn(flat(glob).size)
                    mal_res[i] = (unflat(vec, glob), met, len(y))
                else:
                    d, met = local_train(glob, x, y, crng, epochs=epochs[i])
                    if i in mal and attack in ("ipm0.1", "ipm0.5", "fang"):  # omniscient attackers (ipm/fang) also train to report plausible metrics
                        mal_res[i] = (None, met, len(y))
                    elif i in mal:  # backdoor attacker in an off round: trains honestly
                        mal_res[i] = (d, met, len(y))
                    else:
                        honest_res[i] = (d, met, len(y))
            hvecs = [flat(v[0]) for v in honest_res.values()]
            if attack.startswith("ipm") and mal_res:
                eps = float(attack[3:])
                hm = np.mean(hvecs, 0)
                for i in mal_res:
                    mal_res[i] = (unflat(-eps * hm, glob), mal_res[i][1], mal_res[i][2])
            if attack == "fang" and mal_res:
                crafted = fang_trim(hvecs, len(mal_res), crng)
                for i, v in zip(mal_res, crafted):
                    mal_res[i] = (unflat(v, glob), mal_res[i][1], mal_res[i][2])
            if attack == "labelflip-clip" and mal_res:
                med = np.median([np.linalg.norm(v) for v in hvecs])
                for i in mal_res:
                    d = mal_res[i][0]
                    nrm = np.linalg.norm(flat(d))
                    f = min(1.0, med / max(nrm, 1e-12))
                    mal_res[i] = ({k: v * f for k, v in d.items()}, mal_res[i][1], mal_res[i][2])
            allres = {**honest_res, **mal_res}
            order = list(chosen)
            rng.shuffle(order)
            with rec.round(r, glob) as rnd:
                for i in order:
                    d, met, n = allres[i]
                    rnd.client(ids[i], d, num_samples=int(n), metrics=met, delta=True)
                # aggregate
                vecs = [flat(allres[i][0]) for i in order]
                ns = np.array([allres[i][2] for i in order], float)
                if attack == "fang":
                    agg = trimmed_mean(vecs, n_mal)
                else:
                    agg = (np.stack(vecs) * (ns / ns.sum())[:, None]).sum(0)
                step = unflat(agg, glob)
                newg = {k: (glob[k] + step[k]).astype(np.float32) for k in glob}
                _, acc = loss_acc(newg, X_TE, Y_TE)
                gm = {"accuracy": acc}
                if attack.startswith("backdoor"):
                    nz = Y_TE != TARGET
                    p = forward(newg, add_trigger(X_TE[nz]))[0].argmax(1)
                    gm["attack_success"] = float((p == TARGET).mean())
                rnd.global_metrics(gm)
            prev_step = step
            glob = newg
        rec.final(glob)
        rec.ground_truth(mal_ids)


SETTINGS = {
    # name: setting
    "A-iid20-hosp": dict(clients=20, partition="iid", sizes="equal", ids="hospital", model="mlp", rounds=25),
    "B-dir0.3-30of10-uuid": dict(clients=30, per_round=10, partition="dirichlet", alpha=0.3, sizes="equal",
                                 ids="uuid", model="mlp", rounds=30),
    "C-dir1.0-10-int-unequal": dict(clients=10, partition="dirichlet", alpha=1.0, sizes="lognormal", ids="int",
                                    model="mlp", rounds=25),
    "D-iid40-15pr-lognorm-mixed": dict(clients=40, per_round=15, partition="iid", sizes="lognormal", ids="mixed",
                                       model="mlp", rounds=25),
    "E-dir1.0-20-logreg": dict(clients=20, partition="dirichlet", alpha=1.0, sizes="equal", ids="hospital",
                               model="logreg", rounds=20),
    "F-dir0.3-30-full-lognorm-uuid": dict(clients=30, partition="dirichlet", alpha=0.3, sizes="lognormal",
                                          ids="uuid", model="mlp", rounds=30),
    "G-dir0.3-40-10pr-lognorm-mixed": dict(clients=40, per_round=10, partition="dirichlet", alpha=0.3,
                                           sizes="lognormal", ids="mixed", model="mlp", rounds=30),
    "H-iid20-hetero-epochs": dict(clients=20, partition="iid", sizes="lognormal", sigma=1.5, ids="hospital",
                                  model="mlp", rounds=25, epochs="hetero"),
    "I-dir1.0-30-6pr-int": dict(clients=30, per_round=6, partition="dirichlet", alpha=1.0, sizes="equal", ids="int",
                                model="mlp", rounds=30),
    "J-dir0.3-12-logreg-hetero": dict(clients=12, partition="dirichlet", alpha=0.3, sizes="lognormal", ids="mixed",
                                      model="logreg", rounds=25, epochs="hetero"),
    "K-dir0.3-40-full-hetero-sig1.5": dict(clients=40, partition="dirichlet", alpha=0.3, sizes="lognormal",
                                           sigma=1.5, ids="uuid", model="mlp", rounds=25, epochs="hetero"),
    "L-iid10-sig2-hetero": dict(clients=10, partition="iid", sizes="lognormal", sigma=2.0, ids="int",
                                model="mlp", rounds=25, epochs="hetero"),
    "M-dir0.3-30-5pr-hetero": dict(clients=30, per_round=5, partition="dirichlet", alpha=0.3, sizes="lognormal",
                                   ids="hospital", model="mlp", rounds=30, epochs="hetero"),
    "N-dir0.3-30-bigsilo-2ep": dict(clients=30, partition="dirichlet", alpha=0.3, sizes="lognormal",
                                    sigma=1.5, ids="uuid", model="mlp", rounds=25),
}
ATTACKS = ["clean", "ipm0.1", "ipm0.5", "fang", "freerider-prev", "freerider-zero", "ramp", "backdoor",
           "backdoor-strong", "labelflip-clip"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--setting", required=True, choices=sorted(SETTINGS))
    parser.add_argument("--attack", required=True, choices=ATTACKS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    run_federation(args.out, SETTINGS[args.setting], args.attack, args.seed)
