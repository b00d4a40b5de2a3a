"""A third red team's federations: plain-PyTorch FedAvg on architectures the thresholds never saw.

Written by a fresh-eyes check apart from ``fedforensics.simulate`` (docs/detection.md, "A third check"):
a CNN with BatchNorm, a residual MLP with LayerNorm (both on scikit-learn's digits), an Embedding + GRU
and a one-layer transformer encoder (synthetic token sequences of 5 classes), and a wide-and-deep model
whose head comes first in its state dict and whose clients each touch their own rows of a 400-row
embedding table. Attacks: sign flipping (the update reversed), label flipping (y -> C - 1 - y), IPM
(-0.5 x the mean of the honest updates). Recorded with the public recorder API only.

usage: python3 torch_archs.py OUT ARCH SPLIT ATTACK SEED [--clients N --rounds R --per-round K --attackers A]
ARCH: bncnn | resln | gru | tfm | wide ; SPLIT: iid | dirX (Dirichlet alpha X; wide: its own rows) ;
ATTACK: none | signflip | labelflip | ipm
"""
import argparse, sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from recorder import Recorder
torch.set_num_threads(1)

p = argparse.ArgumentParser()
p.add_argument("out"); p.add_argument("arch"); p.add_argument("split"); p.add_argument("attack"); p.add_argument("seed", type=int)
p.add_argument("--clients", type=int, default=12); p.add_argument("--rounds", type=int, default=15)
p.add_argument("--per-round", type=int, default=0); p.add_argument("--attackers", type=int, default=2)
p.add_argument("--epochs", type=int, default=2); p.add_argument("--lr", type=float, default=0.05)
a = p.parse_args()
rng = np.random.default_rng(a.seed); torch.manual_seed(a.seed)

# ---------------- data ----------------
def digits():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y), 10

def tokens(n=3000, V=60, L=12, C=5):
    # class c: sequence contains tokens from class-specific band, ordered patterns matter a bit
    g = np.random.default_rng(1234)
    y = g.integers(0, C, n)
    x = g.integers(C * 6, V, (n, L))
    for i in range(n):
        k = g.integers(2, 5)
        pos = g.choice(L, k, replace=False)
        x[i, pos] = y[i] * 6 + g.integers(0, 6, k)
    return torch.tensor(x), torch.tensor(y), C

def widedata(n=3000, cats=400, d=8, C=4):
    g = np.random.default_rng(4321)
    cat = g.integers(0, cats, n)
    catw = g.normal(size=(cats, C)) * 1.5
    dense = g.normal(size=(n, d)).astype(np.float32)
    W = g.normal(size=(d, C))
    logits = dense @ W + catw[cat]
    y = logits.argmax(1)
    return (torch.tensor(cat), torch.tensor(dense)), torch.tensor(y), C

if a.arch in ("bncnn", "resln"):
    X, Y, C = digits()
elif a.arch in ("gru", "tfm"):
    X, Y, C = tokens()
else:
    X, Y, C = widedata()
N = len(Y)

def index(X, idx):
    return (X[0][idx], X[1][idx]) if isinstance(X, tuple) else X[idx]

# split: a pool of up to ~250 samples per client
perm = rng.permutation(N)
test_idx, pool = perm[:400], perm[400:]
K = a.clients
if a.split == "iid":
    parts = np.array_split(pool, K)
else:
    alpha = float(a.split[3:])
    parts = [[] for _ in range(K)]
    ypool = Y[pool].numpy()
    for c in range(C):
        ids = pool[ypool == c]; rng.shuffle(ids)
        pr = rng.dirichlet([alpha] * K)
        cuts = (np.cumsum(pr) * len(ids)).astype(int)[:-1]
        for k, chunk in enumerate(np.split(ids, cuts)):
            parts[k] += list(chunk)
    parts = [np.array(p_, dtype=int) for p_ in parts]
if a.arch == "wide" and a.split != "iid":
    # each client touches only its own region of the embedding table (+ some shared rows): re-split by category
    cat = X[0][pool].numpy()
    region = (cat * K) // 400
    shared = cat < 40
    parts = [pool[(region == k) | (shared & (np.arange(len(pool)) % K == k))] for k in range(K)]
parts = [p_[:300] for p_ in parts]
# ensure non-empty
parts = [p_ if len(p_) > 0 else pool[rng.choice(len(pool), 5)] for p_ in parts]

# ---------------- models ----------------
class BNCNN(nn.Module):
    def __init__(s):
        super().__init__()
        s.c1 = nn.Conv2d(1, 16, 3, padding=1); s.b1 = nn.BatchNorm2d(16)
        s.c2 = nn.Conv2d(16, 32, 3, padding=1); s.b2 = nn.BatchNorm2d(32)
        s.fc = nn.Linear(32 * 4, C)
    def forward(s, x):
        x = x.view(-1, 1, 8, 8)
        x = F.relu(s.b1(s.c1(x)))
        x = F.max_pool2d(F.relu(s.b2(s.c2(x))), 2)  # 4x4
        x = F.adaptive_avg_pool2d(x, 2).flatten(1)
        return s.fc(x)

class ResLN(nn.Module):
    def __init__(s, d=64, h=96, blocks=3):
        super().__init__()
        s.inp = nn.Linear(d, h)
        s.blocks = nn.ModuleList([nn.Sequential(nn.LayerNorm(h), nn.Linear(h, h), nn.GELU(), nn.Linear(h, h)) for _ in range(blocks)])
        s.norm = nn.LayerNorm(h); s.head = nn.Linear(h, C)
    def forward(s, x):
        x = s.inp(x)
        for b in s.blocks: x = x + b(x)
        return s.head(s.norm(x))

class GRUNet(nn.Module):
    def __init__(s, V=60, e=32, h=48):
        super().__init__()
        s.emb = nn.Embedding(V, e); s.rnn = nn.GRU(e, h, batch_first=True); s.head = nn.Linear(h, C)
    def forward(s, x):
        o, hN = s.rnn(s.emb(x)); return s.head(hN[-1])

class TFM(nn.Module):
    def __init__(s, V=60, d=48, L=12):
        super().__init__()
        s.emb = nn.Embedding(V, d); s.pos = nn.Parameter(torch.zeros(L, d))
        s.enc = nn.TransformerEncoderLayer(d, 4, 96, dropout=0.0, batch_first=True)
        s.head = nn.Linear(d, C)
    def forward(s, x):
        return s.head(s.enc(s.emb(x) + s.pos).mean(1))

class Wide(nn.Module):
    # head defined BEFORE the embedding table / deep part on purpose (state_dict order != forward order)
    def __init__(s, cats=400, e=16, d=8, h=64):
        super().__init__()
        s.head = nn.Linear(h + e, C)
        s.emb = nn.Embedding(cats, e)
        s.deep = nn.Sequential(nn.Linear(d + e, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU())
    def forward(s, xs):
        cat, dense = xs
        ev = s.emb(cat)
        return s.head(torch.cat([s.deep(torch.cat([dense, ev], 1)), ev], 1))

model = {"bncnn": BNCNN, "resln": ResLN, "gru": GRUNet, "tfm": TFM, "wide": Wide}[a.arch]()
if a.arch == "tfm":
    a.lr = min(a.lr, 0.05)
print("params", sum(p_.numel() for p_ in model.parameters()), file=sys.stderr)

cids = [f"c{k}" for k in range(K)]
attackers = [] if a.attack == "none" else [cids[k] for k in rng.choice(K, a.attackers, replace=False)]

def state():
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

def train(gstate, idx, flip=False):
    model.load_state_dict(gstate); model.train()
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.5)
    xs, ys = index(X, idx), Y[idx]
    if flip: ys = (C - 1) - ys
    tot, cor, cnt = 0.0, 0, 0
    for _ in range(a.epochs):
        for b in torch.randperm(len(ys)).split(32):
            if len(b) < 2: continue
            opt.zero_grad()
            out = model(index(xs, b) if isinstance(xs, tuple) else xs[b])
            loss = F.cross_entropy(out, ys[b]); loss.backward(); opt.step()
            tot += loss.item() * len(b); cor += (out.argmax(1) == ys[b]).sum().item(); cnt += len(b)
    return state(), {"loss": tot / max(cnt, 1), "accuracy": cor / max(cnt, 1)}

def np_state(s):
    return {k: v.numpy() for k, v in s.items()}

out = a.out
g = state()
meta = {"arch": a.arch, "split": a.split, "attack": a.attack, "seed": a.seed}
with Recorder(out, meta=meta, overwrite=True) as rec:
    for r in range(a.rounds):
        part = cids if not a.per_round else [cids[k] for k in sorted(rng.choice(K, a.per_round, replace=False))]
        results = {}
        for cid in part:
            k = cids.index(cid)
            mal = cid in attackers
            s, m = train(g, parts[k], flip=(mal and a.attack == "labelflip"))
            results[cid] = [s, len(parts[k]), m]
        honest = [c for c in part if c not in attackers]
        for cid in part:
            if cid not in attackers: continue
            s = results[cid][0]
            if a.attack == "signflip":
                results[cid][0] = {k: (g[k] - (s[k] - g[k])) if s[k].is_floating_point() else s[k] for k in s}
            elif a.attack == "ipm":
                results[cid][0] = {k: (g[k] - 0.5 * torch.stack([results[h][0][k] - g[k] for h in honest]).float().mean(0)).to(s[k].dtype)
                                   if s[k].is_floating_point() else s[k] for k in s}
        # BN running_var must stay positive for the global model
        with rec.round(r, np_state(g)) as rnd:
            for cid in part:
                s, n, m = results[cid]
                rnd.client(cid, np_state(s), num_samples=n, metrics=m)
            tot = sum(results[c][1] for c in part)
            newg = {}
            for k in g:
                if g[k].is_floating_point():
                    newg[k] = sum(results[c][0][k] * (results[c][1] / tot) for c in part)
                else:
                    newg[k] = results[part[0]][0][k]
            g = newg
            model.load_state_dict(g); model.eval()
            with torch.no_grad():
                acc = (model(index(X, test_idx)).argmax(1) == Y[test_idx]).float().mean().item()
            rnd.global_metrics({"accuracy": acc})
        print(f"round {r} acc {acc:.3f}", file=sys.stderr)
    rec.final(np_state(g))
    rec.ground_truth(malicious=attackers)
print(out, "attackers", attackers, "final_acc", round(acc, 3), "sizes", [len(p_) for p_ in parts])
