"""A thirteenth check's clean federations: plain-PyTorch FedAvg written by a fresh-eyes engineer, recorded with the recorder.

CLEAN federations only (no attacker), varied as deployments vary: BatchNorm, GroupNorm, LayerNorm, dropout, a small
ResNet, LSTM/GRU, logistic regression; SGD with momentum, weight decay, Adam, learning-rate schedules; 1-5 local epochs
and batches of 8-64, per client too; IID, Dirichlet 0.3/1.0, quantity skew, tiny clients, label noise, late joiners,
partial participation (docs/detection.md, "A thirteenth check").

    python3 benchmarks/redteam/clean_fedavg.py                # every config -> $THIRTEENTH_OUT/NAME.h5
    python3 benchmarks/redteam/clean_fedavg.py 20@s2 25@s3    # the config NAME-prefix with another seed -> NAME@sN.h5

THIRTEENTH_OUT defaults to the benchmarks' cache's thirteenth (benchmarks/.cache, or $FEDFORENSICS_BENCH_CACHE); REPORT_STEPS=1 has every client report its optimizer steps
as the ``local_steps`` metric (docs/format.md). Independent of fedforensics.simulate: its own data, models,
partitions and optimizers.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits, make_classification

from recorder import Recorder

torch.set_num_threads(1)
RUNS = Path(os.environ.get("THIRTEENTH_OUT") or Path(os.environ.get("FEDFORENSICS_BENCH_CACHE") or Path(__file__).resolve().parents[1] / ".cache") / "thirteenth")
#: With REPORT_STEPS=1 every client reports its optimizer steps (``local_steps``), as the engineer's loop did not.
REPORT_STEPS = os.environ.get("REPORT_STEPS") == "1"
LOCAL_STEPS = "local_steps"

# ----------------------------------------------------------------------------- data


def digits_data(seed):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(seed)
    p = rng.permutation(len(y))
    x, y = x[p], y[p]
    return (x[:1500], y[:1500]), (x[1500:], y[1500:]), 10


def tabular_data(seed):
    x, y = make_classification(n_samples=3000, n_features=20, n_informative=10, n_redundant=4, n_classes=5,
                               n_clusters_per_class=2, class_sep=1.2, random_state=seed)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    return (x[:2500], y[:2500]), (x[2500:], y[2500:]), 5


def sequence_data(seed, n=2400, length=16, channels=3, classes=4):
    """Class k: a sine of class-specific frequency/phase per channel, with noise and random amplitude."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    t = np.arange(length)[None, :, None]
    freq = (0.3 + 0.35 * y)[:, None, None] * (1 + 0.3 * np.arange(channels))[None, None, :]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, channels))
    amp = rng.uniform(0.5, 1.5, (n, 1, 1))
    x = amp * np.sin(freq * t + phase) + 0.3 * rng.normal(size=(n, length, channels))
    x = x.astype(np.float32)
    return (x[:2000], y[:2000]), (x[2000:], y[2000:]), classes


DATA = {"digits": digits_data, "tabular": tabular_data, "seq": sequence_data}

# ----------------------------------------------------------------------------- models


class LogReg(nn.Module):
    def __init__(s, d, k):
        super().__init__(); s.fc = nn.Linear(d, k)
    def forward(s, x): return s.fc(x.flatten(1))


class MLPDrop(nn.Module):
    def __init__(s, d, k, p=0.3):
        super().__init__()
        s.fc1, s.fc2, s.fc3, s.drop = nn.Linear(d, 64), nn.Linear(64, 32), nn.Linear(32, k), nn.Dropout(p)
    def forward(s, x):
        x = s.drop(F.relu(s.fc1(x.flatten(1))))
        return s.fc3(s.drop(F.relu(s.fc2(x))))


class MLPLN(nn.Module):
    def __init__(s, d, k):
        super().__init__()
        s.fc1, s.ln1, s.fc2, s.ln2, s.out = nn.Linear(d, 64), nn.LayerNorm(64), nn.Linear(64, 64), nn.LayerNorm(64), nn.Linear(64, k)
    def forward(s, x):
        x = F.gelu(s.ln1(s.fc1(x.flatten(1))))
        return s.out(F.gelu(s.ln2(s.fc2(x))))


class CNN(nn.Module):
    def __init__(s, d, k, norm="bn"):
        super().__init__()
        mk = (lambda c: nn.BatchNorm2d(c)) if norm == "bn" else (lambda c: nn.GroupNorm(4, c))
        s.conv1, s.n1 = nn.Conv2d(1, 16, 3, padding=1), mk(16)
        s.conv2, s.n2 = nn.Conv2d(16, 32, 3, padding=1), mk(32)
        s.fc = nn.Linear(32 * 4 * 4, k)
    def forward(s, x):
        x = x.view(-1, 1, 8, 8)
        x = F.relu(s.n1(s.conv1(x)))
        x = F.max_pool2d(F.relu(s.n2(s.conv2(x))), 2)
        return s.fc(x.flatten(1))


class ResBlock(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.c1, s.b1, s.c2, s.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
    def forward(s, x):
        return F.relu(x + s.b2(s.c2(F.relu(s.b1(s.c1(x))))))


class ResNetTiny(nn.Module):
    def __init__(s, d, k):
        super().__init__()
        s.stem, s.bn = nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        s.block = ResBlock(16)
        s.head = nn.Linear(16, k)
    def forward(s, x):
        x = F.relu(s.bn(s.stem(x.view(-1, 1, 8, 8))))
        x = s.block(x)
        return s.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


class RNN(nn.Module):
    def __init__(s, d, k, cell="lstm"):
        super().__init__()
        s.rnn = (nn.LSTM if cell == "lstm" else nn.GRU)(d, 32, batch_first=True)
        s.head = nn.Linear(32, k)
    def forward(s, x):
        out, _ = s.rnn(x)
        return s.head(out[:, -1])


def build(name, d, k):
    return {"logreg": lambda: LogReg(d, k), "mlp_drop": lambda: MLPDrop(d, k), "mlp_ln": lambda: MLPLN(d, k),
            "cnn_bn": lambda: CNN(d, k, "bn"), "cnn_gn": lambda: CNN(d, k, "gn"), "resnet": lambda: ResNetTiny(d, k),
            "lstm": lambda: RNN(d, k, "lstm"), "gru": lambda: RNN(d, k, "gru")}[name]()

# ----------------------------------------------------------------------------- partitions


def partition(y, n_clients, kind, rng, alpha=None, sigma=1.0, tiny=()):
    """Returns a list of index arrays. kind: iid | dirichlet | quantity. `tiny`: client indices given 20-40 samples."""
    idx = rng.permutation(len(y))
    if kind == "dirichlet":
        classes = np.unique(y)
        parts = [[] for _ in range(n_clients)]
        for c in classes:
            ic = idx[y[idx] == c]
            p = rng.dirichlet([alpha] * n_clients)
            cuts = (np.cumsum(p) * len(ic)).astype(int)[:-1]
            for j, chunk in enumerate(np.split(ic, cuts)):
                parts[j].extend(chunk.tolist())
        parts = [np.array(rng.permutation(p), dtype=int) for p in parts]
    else:
        if kind == "quantity":
            w = rng.lognormal(0, sigma, n_clients)
        else:
            w = np.ones(n_clients)
        w = w / w.sum()
        cuts = (np.cumsum(w) * len(idx)).astype(int)[:-1]
        parts = list(np.split(idx, cuts))
    # guarantee minimum 10 samples: steal from the largest
    for j in range(n_clients):
        while len(parts[j]) < 10:
            big = int(np.argmax([len(p) for p in parts]))
            parts[j] = np.append(parts[j], parts[big][:5]); parts[big] = parts[big][5:]
    for j in tiny:
        m = int(rng.integers(20, 41))
        if len(parts[j]) > m:
            extra, parts[j] = parts[j][m:], parts[j][:m]
            # give the surplus to the next non-tiny client
            k = next(i for i in range(n_clients) if i not in tiny and i != j)
            parts[k] = np.concatenate([parts[k], extra])
    return parts

# ----------------------------------------------------------------------------- training


def local_train(model, global_state, x, y, opt_name, lr, wd, epochs, batch, drop_last, gen):
    model.load_state_dict(global_state)
    model.train()
    if opt_name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    elif opt_name == "sgdm":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=wd)
    n = len(y)
    losses, correct, seen = [], 0, 0
    for e in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for b in perm.split(batch):
            if drop_last and len(b) < batch and n >= batch:
                continue
            if len(b) < 2 and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
                continue  # BN cannot train on a single sample
            opt.zero_grad()
            out = model(x[b])
            loss = F.cross_entropy(out, y[b])
            loss.backward()
            opt.step()
            if e == epochs - 1:
                losses.append(loss.item() * len(b)); correct += (out.argmax(1) == y[b]).sum().item(); seen += len(b)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    metrics = {"train_loss": sum(losses) / max(seen, 1), "train_accuracy": correct / max(seen, 1)}
    return state, metrics


def fedavg(states, sizes, template):
    total = sum(sizes)
    out = {}
    for k, v in template.items():
        acc = sum(s[k].double() * (n / total) for s, n in zip(states, sizes))
        out[k] = acc.round().to(v.dtype) if not v.is_floating_point() else acc.to(v.dtype)
    return out


def lr_at(cfg, r):
    lr, sched, R = cfg.get("lr", 0.05), cfg.get("schedule"), cfg["rounds"]
    if sched == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * r / R))
    if sched == "step":
        return lr * (0.3 ** (r // max(R // 3, 1)))
    return lr


def run(cfg):
    seed = cfg.get("seed", 0)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    (xtr, ytr), (xte, yte), k = DATA[cfg["data"]](seed)
    C = cfg["clients"]
    parts = partition(ytr, C, cfg.get("partition", "iid"), rng, alpha=cfg.get("alpha"), sigma=cfg.get("sigma", 1.0),
                      tiny=cfg.get("tiny", ()))
    noisy = cfg.get("noisy", {})  # client -> label-noise rate
    noise_rng = np.random.default_rng(seed + 1000)  # its own stream: removing a client's noise changes nothing else
    clients = {}
    for j, p in enumerate(parts):
        yj = ytr[p].copy()
        if j in noisy:
            flip = noise_rng.random(len(yj)) < noisy[j]
            yj[flip] = noise_rng.integers(0, k, flip.sum())  # uniform noise (may keep label)
        clients[f"c{j:02d}"] = (torch.tensor(xtr[p]), torch.tensor(yj, dtype=torch.long))
    # per-client settings (heterogeneous hardware / config drift)
    def per_client(key, default):
        v = cfg.get(key, default)
        if isinstance(v, (list, tuple)):
            return {c: v[int(rng.integers(len(v)))] for c in clients}
        return {c: v for c in clients}
    epochs = per_client("epochs", 1)
    batch = per_client("batch", 32)
    opt_c = per_client("opt", "sgd")
    for c, o in cfg.get("override", {}).items():  # counterfactuals: {client: {"epochs": e, "batch": b, "opt": o}}
        epochs[c], batch[c], opt_c[c] = o.get("epochs", epochs[c]), o.get("batch", batch[c]), o.get("opt", opt_c[c])
    late = cfg.get("late", {})  # client index -> join round
    d = xtr.shape[-1] if cfg["data"] == "seq" else int(np.prod(xtr.shape[1:]))
    model = build(cfg["model"], d, k)
    gstate = {n: v.detach().clone() for n, v in model.state_dict().items()}
    xte_t, yte_t = torch.tensor(xte), torch.tensor(yte)
    gen = torch.Generator().manual_seed(seed)
    meta = {"dataset": cfg["data"], "model": cfg["model"], "aggregation": "fedavg", "config": {k_: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k_, v in cfg.items()},
            "client_sizes": {c: len(v[1]) for c, v in clients.items()}, "client_epochs": epochs, "client_batch": batch,
            "client_opt": opt_c}
    RUNS.mkdir(parents=True, exist_ok=True)
    path = RUNS / f"{cfg['name']}.h5"
    t0 = time.time()
    with Recorder(str(path), meta=meta, overwrite=True) as rec:
        for r in range(cfg["rounds"]):
            avail = [c for j, c in enumerate(clients) if late.get(j, 0) <= r]
            frac = cfg.get("participation", 1.0)
            m = max(2, int(round(frac * len(avail))))
            chosen = sorted(rng.choice(avail, size=min(m, len(avail)), replace=False).tolist())
            lr = lr_at(cfg, r)
            with rec.round(r, gstate) as rnd:
                states, sizes = [], []
                for c in chosen:
                    xc, yc = clients[c]
                    lr_c = lr * batch[c] / 32 if cfg.get("lr_scale_batch") else lr  # linear scaling rule
                    st, met = local_train(model, gstate, xc, yc, opt_c[c], lr_c if opt_c[c] != "adam" else cfg.get("adam_lr", 1e-3),
                                          cfg.get("wd", 0.0), epochs[c], batch[c], cfg.get("drop_last", False), gen)
                    if REPORT_STEPS:  # the optimizer steps it took, as docs/format.md's local_steps metric
                        batches = len(yc) // batch[c] if cfg.get("drop_last", False) else -(-len(yc) // batch[c])
                        met = {**met, LOCAL_STEPS: float(epochs[c] * batches)}
                    rnd.client(c, st, num_samples=len(yc), metrics=met)
                    states.append(st); sizes.append(len(yc))
                gstate = fedavg(states, sizes, gstate)
                model.load_state_dict(gstate); model.eval()
                with torch.no_grad():
                    acc = (model(xte_t).argmax(1) == yte_t).float().mean().item()
                rnd.global_metrics({"accuracy": acc})
        rec.final(gstate)
    print(f"{cfg['name']}: acc {acc:.3f}  {time.time() - t0:.1f}s", flush=True)
    return acc


D, T, S = "digits", "tabular", "seq"
CONFIGS = [
    dict(name="01_logreg_iid", data=D, model="logreg", clients=10, rounds=20, lr=0.1, epochs=1, batch=32),
    dict(name="02_mlpdrop_dir03_sgdm", data=D, model="mlp_drop", clients=20, rounds=20, partition="dirichlet", alpha=0.3, opt="sgdm", lr=0.05, epochs=2, batch=16),
    dict(name="03_mlpdrop_dir1_partial", data=D, model="mlp_drop", clients=30, rounds=25, partition="dirichlet", alpha=1.0, participation=0.5, opt="sgdm", lr=0.05, epochs=2, batch=16),
    dict(name="04_cnnbn_iid", data=D, model="cnn_bn", clients=10, rounds=15, opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="05_cnnbn_dir03_droplast_mixE", data=D, model="cnn_bn", clients=15, rounds=15, partition="dirichlet", alpha=0.3, opt="sgdm", lr=0.05, epochs=[1, 2, 3], batch=16, drop_last=True),
    dict(name="06_cnnbn_quantity", data=D, model="cnn_bn", clients=20, rounds=15, partition="quantity", sigma=1.0, opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="07_cnngn_dir1_adam", data=D, model="cnn_gn", clients=15, rounds=15, partition="dirichlet", alpha=1.0, opt="adam", adam_lr=2e-3, epochs=2, batch=32),
    dict(name="08_mlpln_iid_adam_mixE", data=D, model="mlp_ln", clients=20, rounds=20, opt="adam", adam_lr=1e-3, epochs=[1, 2, 3, 4, 5], batch=32),
    dict(name="09_resnet_iid_wd_cosine", data=D, model="resnet", clients=10, rounds=20, opt="sgdm", lr=0.1, wd=5e-4, schedule="cosine", epochs=1, batch=32),
    dict(name="10_resnet_dir03_partial", data=D, model="resnet", clients=20, rounds=20, partition="dirichlet", alpha=0.3, participation=0.5, opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="11_lstm_iid_adam", data=S, model="lstm", clients=10, rounds=15, opt="adam", adam_lr=3e-3, epochs=1, batch=32),
    dict(name="12_gru_dir1_sgdm", data=S, model="gru", clients=15, rounds=20, partition="dirichlet", alpha=1.0, opt="sgdm", lr=0.3, epochs=2, batch=32),
    dict(name="13_gru_tiny", data=S, model="gru", clients=20, rounds=20, tiny=(0, 1, 2, 3), opt="sgdm", lr=0.3, epochs=1, batch=32),
    dict(name="14_tab_logreg_dir03_wd", data=T, model="logreg", clients=25, rounds=20, partition="dirichlet", alpha=0.3, lr=0.1, wd=1e-3, epochs=1, batch=32),
    dict(name="15_tab_mlp_labelnoise", data=T, model="mlp_drop", clients=15, rounds=20, noisy={0: 0.2, 1: 0.15, 2: 0.1}, opt="sgdm", lr=0.05, epochs=2, batch=32),
    dict(name="16_digits_mlp_labelnoise", data=D, model="mlp_drop", clients=10, rounds=20, noisy={0: 0.2, 1: 0.2}, opt="sgdm", lr=0.1, epochs=1, batch=32),
    dict(name="17_cnnbn_tiny", data=D, model="cnn_bn", clients=20, rounds=15, tiny=(0, 1, 2, 3), opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="18_mlp_latejoin", data=D, model="mlp_drop", clients=12, rounds=20, late={0: 10}, opt="sgdm", lr=0.1, epochs=2, batch=32),
    dict(name="19_cnngn_latejoin_partial", data=D, model="cnn_gn", clients=20, rounds=20, late={0: 10, 1: 12}, participation=0.5, opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="20_mlp_mixed_E_B", data=D, model="mlp_drop", clients=16, rounds=20, opt="sgdm", lr=0.05, epochs=[1, 2, 3, 4, 5], batch=[8, 16, 32, 64]),
    dict(name="21_logreg_step_dir1_partial", data=D, model="logreg", clients=30, rounds=25, partition="dirichlet", alpha=1.0, participation=0.5, lr=0.2, schedule="step", epochs=2, batch=16),
    dict(name="22_resnet_labelnoise_dir1", data=D, model="resnet", clients=12, rounds=15, partition="dirichlet", alpha=1.0, noisy={0: 0.2, 1: 0.1}, opt="sgdm", lr=0.05, epochs=1, batch=32),
    dict(name="23_lstm_quantity_partial", data=S, model="lstm", clients=20, rounds=20, partition="quantity", sigma=1.0, participation=0.5, opt="adam", adam_lr=3e-3, epochs=1, batch=32),
    dict(name="24_mlpln_dir03_tiny_adam", data=D, model="mlp_ln", clients=20, rounds=20, partition="dirichlet", alpha=0.3, tiny=(0, 1), opt="adam", adam_lr=1e-3, epochs=2, batch=16),
    dict(name="25_kitchen_sink_cnnbn", data=D, model="cnn_bn", clients=25, rounds=25, partition="dirichlet", alpha=1.0, tiny=(0, 1), noisy={2: 0.2, 3: 0.15}, late={4: 12}, participation=0.6, opt="sgdm", lr=0.05, schedule="cosine", epochs=[1, 2, 3], batch=[16, 32, 64]),
    dict(name="26_mlp_mixed_opt", data=D, model="mlp_drop", clients=12, rounds=20, opt=["sgd", "sgdm", "adam"], lr=0.1, adam_lr=1e-3, epochs=1, batch=32),
    dict(name="28_mlp_mixedE_only", data=D, model="mlp_drop", clients=16, rounds=20, opt="sgdm", lr=0.05, epochs=[1, 2, 3, 4, 5], batch=32),
    dict(name="29_cnnbn_mixedE_only", data=D, model="cnn_bn", clients=16, rounds=15, opt="sgdm", lr=0.05, epochs=[1, 2, 3, 4, 5], batch=32),
    dict(name="30_mlp_mixedB_only", data=D, model="mlp_drop", clients=16, rounds=20, opt="sgdm", lr=0.05, epochs=2, batch=[8, 16, 32, 64]),
    dict(name="27_tab_mlp_quantity_sigma2", data=T, model="mlp_drop", clients=20, rounds=20, partition="quantity", sigma=2.0, opt="sgdm", lr=0.05, epochs=1, batch=32),
]


def selected(names: list[str]) -> list[dict]:
    """The configurations ``names`` asks for, in the order they run: every one for no name; a NAME-prefix picks
    every configuration it starts; PREFIX@sN the first one it starts, with seed N, run as NAME@sN (first)."""
    picked = []
    for a in names:
        base, _, seed = a.partition("@s")
        matches = [c for c in CONFIGS if c["name"].startswith(base)]
        if not matches or (seed and not seed.isdigit()):
            raise SystemExit(f"clean_fedavg.py: no configuration {a!r} (NAME-prefix or PREFIX@sN; NAME one of {', '.join(c['name'] for c in CONFIGS)})")
        if seed:
            picked.append(dict(matches[0], seed=int(seed), name=f"{matches[0]['name']}@s{seed}"))
    plain = [a for a in names if "@s" not in a]
    if plain or not names:
        picked += [c for c in CONFIGS if not plain or any(c["name"].startswith(w) for w in plain)]
    return picked


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=f"Runs go to {RUNS} ($THIRTEENTH_OUT).")
    parser.add_argument("names", nargs="*", metavar="NAME", help="a configuration's name or prefix, or PREFIX@sN for seed N (default: every configuration)")
    for cfg in selected(parser.parse_args().names):
        run(cfg)
