"""A FedAvg federation written apart from ``fedforensics simulate``, to audit what the detectors were not
built on: its own models (softmax regression, an MLP with LayerNorm, a CNN with BatchNorm; layer names
unlike the zoo's), tabular data (scikit-learn's make_classification) beside the digits, its own
Dirichlet split, client ids of other shapes and attacks implemented from their papers without
fedforensics' code (IPM, ALIE with per-attacker jitter, min-max and min-sum with their three
perturbations, sign flipping, a disguised free rider, a feature-trigger backdoor, label flipping,
a scaled backdoor with another trigger and target, Neurotoxin, a PGD norm-bounded backdoor, constrain-and-scale,
an intermittent backdoor, MPAF's fake clients). ``redteam_bench.py`` runs it; by hand:

    python fedavg.py --out X.h5 --data {digits,tab} --model {softreg,mlpln,cnn} --partition {iid,dir}
                     --clients N --per-round K --rounds R --attack {none,ipm,alie,minmax,minsum,signflip,freeride,bd_tab,labelflip,scaled_bd,
                                                                  neurotoxin,pgd_bd,cs_bd,intermittent,mpaf}
                     --ids {hospital,uuid,int} --n-mal M --seed S [--quantity BETA] [--perturb {std,unit,sign}]
                     [--poison-frac F] [--mal-epochs E] [--topk K] [--pgd-norm B] [--alpha-cs A] [--gamma-cs G]
                     [--attack-prob P] [--lam L] [--epochs-max E]

``--epochs-max`` makes the honest clients unequal in compute, as devices and silos are: each client trains
a number of local epochs drawn once from ``--epochs``..``--epochs-max`` (FedNova's setting, Wang et al. 2020).
"""
import argparse, json, uuid, time
import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
from data import load, split
from models import build
from recorder import Recorder

p = argparse.ArgumentParser()
p.add_argument("--out", required=True)
p.add_argument("--data", default="digits")
p.add_argument("--model", default="softreg")
p.add_argument("--partition", default="iid")
p.add_argument("--clients", type=int, default=10)
p.add_argument("--per-round", type=int, default=0)
p.add_argument("--rounds", type=int, default=20)
p.add_argument("--attack", default="none")
p.add_argument("--ids", default="hospital")
p.add_argument("--n-mal", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--lr", type=float, default=0.05)
p.add_argument("--eps", type=float, default=0.5)       # IPM
p.add_argument("--z", type=float, default=1.0)          # ALIE
p.add_argument("--jitter", type=float, default=0.1)    # ALIE own jitter (x std)
p.add_argument("--boost", type=float, default=5.0)      # scaled backdoor
p.add_argument("--quantity", type=float, default=0.0)   # quantity skew: iid shard sizes ~ Dirichlet(beta), 0 = equal
p.add_argument("--perturb", default="std")              # min-max (Shejwalkar & Houmansadr 2021): std | unit | sign
p.add_argument("--poison-frac", type=float, default=0.5)  # neurotoxin, pgd_bd, cs_bd, intermittent: poisoned share
p.add_argument("--mal-epochs", type=int, default=0)     # their local epochs on poisoned data, 0 = --epochs
p.add_argument("--topk", type=float, default=0.1)       # neurotoxin: share of coordinates masked out
p.add_argument("--pgd-norm", type=float, default=0.0)   # neurotoxin: L2 bound, 0 = last round's median honest norm
p.add_argument("--alpha-cs", type=float, default=0.7)   # cs_bd: weight of the classification loss
p.add_argument("--gamma-cs", type=float, default=2.0)   # cs_bd: scale of the update
p.add_argument("--attack-prob", type=float, default=0.3)  # intermittent: chance to attack in a round
p.add_argument("--lam", type=float, default=5.0)        # mpaf: lambda (fakes' weight share x lambda > 2 diverges)
p.add_argument("--epochs-max", type=int, default=0)     # each client's epochs drawn once from --epochs..this (0: all --epochs)
args = p.parse_args()

rng = np.random.default_rng(args.seed)
torch.manual_seed(args.seed)

# ---------------- data (data.py)
X, y, C = load(args.data, args.seed)
test_idx, train_idx = split(len(X), rng)
Xte, yte = X[test_idx], y[test_idx]
Xtr, ytr = X[train_idx], y[train_idx]

# ---------------- partition
N = args.clients
if args.partition == "iid" and args.quantity > 0:
    # quantity skew (Li et al. 2022, "Federated learning on non-IID data silos"): iid labels, sizes ~ Dir(beta)
    sizes = rng.dirichlet([args.quantity] * N)
    cuts = (np.cumsum(sizes) * len(Xtr)).astype(int)[:-1]
    shards = np.split(rng.permutation(len(Xtr)), cuts)
    for k in range(N):
        if len(shards[k]) < 8:
            shards[k] = np.concatenate([shards[k], rng.choice(len(Xtr), 8, replace=False)]).astype(int)
elif args.partition == "iid":
    shards = np.array_split(rng.permutation(len(Xtr)), N)
else:
    shards = [[] for _ in range(N)]
    for c in range(C):
        idx = rng.permutation(np.where(ytr == c)[0])
        props = rng.dirichlet([0.5] * N)
        cuts = (np.cumsum(props) * len(idx)).astype(int)[:-1]
        for k, part in enumerate(np.split(idx, cuts)):
            shards[k].extend(part.tolist())
    shards = [np.array(s, dtype=int) for s in shards]
    # ensure each client has at least 8 samples
    for k in range(N):
        if len(shards[k]) < 8:
            shards[k] = np.concatenate([shards[k], rng.choice(len(Xtr), 8, replace=False)]).astype(int)

if args.ids == "hospital":
    ids = [f"hospital-{k:02d}" for k in range(N)]
elif args.ids == "uuid":
    ids = [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | k)) for k in range(N)]
else:
    ids = [k for k in range(N)]  # ints
n_mal = 0 if args.attack == "none" else args.n_mal
mal_idx = sorted(rng.choice(N, n_mal, replace=False).tolist()) if n_mal else []
mal_ids = [str(ids[k]) for k in mal_idx]

# ---------------- attacks on data
TRIG_FEATS = [2, 7, 13]
def tab_trigger(x):
    x = x.copy(); x[:, TRIG_FEATS] = 4.0; return x
def digit_trigger(x):
    x = x.copy().reshape(-1, 8, 8); x[:, 6:8, 6:8] = 1.0; return x.reshape(-1, 64)
TARGET = 3 if args.data == "digits" else 0
BACKDOORS = ("bd_tab", "scaled_bd", "neurotoxin", "pgd_bd", "cs_bd", "intermittent")
# bd_tab and scaled_bd have their own trigger; the other backdoors take the one of --data
trigger = {"bd_tab": tab_trigger, "scaled_bd": digit_trigger}.get(
    args.attack, digit_trigger if args.data == "digits" else tab_trigger)
def poison(xk, yk, m):
    """``m`` random samples of the shard get the trigger and the target label."""
    sel = rng.choice(len(xk), m, replace=False)
    xk = xk.copy(); yk = yk.copy()
    xk[sel] = trigger(xk[sel]); yk[sel] = TARGET
    return xk, yk

client_data = []
poisoned = {}  # the newer backdoors' poisoned shards: their attackers keep the clean one for honest training
for k in range(N):
    xk, yk = Xtr[shards[k]], ytr[shards[k]]
    if k in mal_idx and args.attack == "bd_tab":
        xk, yk = poison(xk, yk, len(xk) // 3)
    elif k in mal_idx and args.attack == "scaled_bd":
        xk, yk = poison(xk, yk, len(xk) // 2)
    elif k in mal_idx and args.attack == "labelflip":
        yk = (C - 1 - yk)
    elif k in mal_idx and args.attack in BACKDOORS:
        poisoned[k] = tuple(map(torch.tensor, poison(xk, yk, int(len(xk) * args.poison_frac))))
    client_data.append((torch.tensor(xk), torch.tensor(yk)))

# ---------------- models (models.py)
def make_model():
    return build(args.model, X.shape[1], C)

def get_state(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}

def dist(st, center):
    """L2 distance between two states over their float entries (an update's norm when ``center`` is the global)."""
    return float(sum(((st[kk] - center[kk]) ** 2).sum() for kk in fkeys)) ** 0.5

def project(m, center, radius):
    """PGD's projection: pull the model back onto the L2 ball of ``radius`` around ``center``."""
    with torch.no_grad():
        st = m.state_dict()
        norm = dist(st, center)
        if norm > radius:
            for kk in fkeys:
                st[kk].copy_(center[kk] + (st[kk] - center[kk]) * (radius / norm))

def neurotoxin_mask(step):
    """0 on the ``--topk`` share of parameter coordinates the global update ``step`` changed most, 1 elsewhere."""
    flat = torch.cat([step[name].abs().flatten() for name in PARAMS])
    keep = torch.ones_like(flat)
    keep[flat.topk(int(args.topk * flat.numel())).indices] = 0
    parts = keep.split([step[name].numel() for name in PARAMS])
    return {name: part.view_as(step[name]) for name, part in zip(PARAMS, parts)}

def metrics_of(m, x, yv):
    m.eval()
    with torch.no_grad():
        out = m(x); loss = F.cross_entropy(out, yv).item(); acc = (out.argmax(1) == yv).float().mean().item()
    return {"train_accuracy": acc, "train_loss": loss}

def local_train(gstate, x, yv, epochs=0, alpha=1.0, grad_mask=None, radius=None):
    """SGD from ``gstate`` on (x, yv) for ``epochs`` (0: --epochs). Hooks of the attacks: ``alpha`` < 1 adds
    constrain-and-scale's anomaly loss, ``grad_mask`` multiplies every gradient (Neurotoxin), ``radius`` projects
    the model after every step into that L2 ball around ``gstate`` (PGD)."""
    m = make_model(); m.load_state_dict(gstate); m.train()
    opt = torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9)
    n = len(x)
    for _ in range(epochs or args.epochs):
        order = torch.randperm(n)
        for i in range(0, n, 32):
            b = order[i:i + 32]
            if len(b) < 2 and args.model == "cnn":
                continue
            opt.zero_grad()
            loss = F.cross_entropy(m(x[b]), yv[b])
            if alpha < 1:
                anomaly = sum(((p - gstate[name]) ** 2).sum() for name, p in m.named_parameters())
                loss = alpha * loss + (1 - alpha) * anomaly
            loss.backward()
            if grad_mask:
                for name, p in m.named_parameters():
                    p.grad.mul_(grad_mask[name])
            opt.step()
            if radius is not None:
                project(m, gstate, radius)
    return get_state(m), metrics_of(m, x, yv)

def evaluate(gstate):
    m = make_model(); m.load_state_dict(gstate); m.eval()
    xt = torch.tensor(Xte); yt = torch.tensor(yte)
    with torch.no_grad():
        acc = (m(xt).argmax(1) == yt).float().mean().item()
        res = {"accuracy": acc}
        if args.attack in BACKDOORS:
            keep = yte != TARGET
            xtr_ = trigger(Xte[keep])
            res["attack_success"] = (m(torch.tensor(xtr_)).argmax(1) == TARGET).float().mean().item()
    return res

model = make_model()
gstate = get_state(model)
fkeys = [kk for kk, v in gstate.items() if v.is_floating_point()]  # float keys only for update algebra
PARAMS = [name for name, _ in model.named_parameters()]
last_step = {}  # the last round's global update (the free rider's, Neurotoxin's)
honest_norm = 0.0  # the median norm of the last round's honest updates (Neurotoxin's bound)
K = args.per_round or N
schedule = [sorted(rng.choice(N, K, replace=False).tolist()) if K < N else list(range(N)) for _ in range(args.rounds)]
t0 = time.time()
meta = {"dataset": args.data, "model": args.model, "partition": args.partition, "attack": args.attack,
        "harness": "benchmarks/redteam/fedavg.py", "args": vars(args)}
if args.attack == "intermittent":
    # each attacker attacks in a round with probability --attack-prob; recorded: the rounds it was selected and attacked
    attacks_in = {k: rng.random(args.rounds) < args.attack_prob for k in mal_idx}
    meta["attack_rounds"] = {str(ids[k]): [r for r in range(args.rounds) if k in schedule[r] and attacks_in[k][r]]
                             for k in mal_idx}
n_reported = [len(x) for x, _ in client_data]  # the num_samples each client reports, the FedAvg weight
# each client's local epochs (0: --epochs), from an RNG of their own so that runs without --epochs-max stay as they were
client_epochs = (np.random.default_rng([args.seed, 1]).integers(args.epochs, args.epochs_max + 1, N).tolist()
                 if args.epochs_max > args.epochs else [0] * N)
if args.epochs_max > args.epochs:
    meta["client_epochs"] = {str(ids[k]): client_epochs[k] for k in range(N)}
if args.attack == "mpaf":
    w_base = get_state(make_model())  # MPAF's base model: a random initialisation, drawn once
    for k in mal_idx:  # fake clients claim the median honest shard size
        n_reported[k] = int(np.median([n_reported[j] for j in range(N) if j not in mal_idx]))
with Recorder(args.out, meta=meta, overwrite=True) as rec:
    for r in range(args.rounds):
        chosen = schedule[r]
        results = {}
        for k in chosen:
            if not (args.attack == "mpaf" and k in mal_idx):  # MPAF's fake clients have no data to train on
                results[k] = local_train(gstate, *client_data[k], epochs=client_epochs[k])
        honest = [k for k in chosen if k not in mal_idx]
        attackers = [k for k in chosen if k in mal_idx]
        def upd(st):
            return {kk: st[kk] - gstate[kk] for kk in fkeys}
        def send(update_of):
            """Each malicious client of the round sends the global model plus ``update_of(layer, its state)``."""
            for k in chosen:
                if k in mal_idx:
                    st, met = results[k]
                    results[k] = ({**st, **{kk: gstate[kk] + update_of(kk, st) for kk in fkeys}}, met)
        if args.attack in ("ipm", "alie") and honest:
            hu = [upd(results[k][0]) for k in honest]
            mean = {kk: torch.stack([u[kk] for u in hu]).mean(0) for kk in fkeys}
            std = {kk: torch.stack([u[kk] for u in hu]).std(0) if len(hu) > 1 else torch.zeros_like(mean[kk]) for kk in fkeys}
            if args.attack == "ipm":
                send(lambda kk, st: -args.eps * mean[kk])
            else:  # each attacker adds its own small jitter
                send(lambda kk, st: mean[kk] - args.z * std[kk] + args.jitter * std[kk] * torch.randn_like(mean[kk]))
        if args.attack in ("minmax", "minsum") and len(honest) > 1:
            # AGR-agnostic min-max / min-sum (Shejwalkar & Houmansadr 2021): mean + gamma * p, the largest gamma
            # (binary search) whose largest distance to the honest updates stays within the largest distance
            # between two honest updates (min-max), or whose sum of squared distances to them stays within the
            # largest such sum of an honest update (min-sum)
            H = torch.stack([torch.cat([upd(results[k][0])[kk].flatten() for kk in fkeys]) for k in honest])
            mu = H.mean(0)
            direction = {"std": -H.std(0), "unit": -mu, "sign": -torch.sign(mu)}[args.perturb]
            direction = direction / direction.norm()
            pairwise = torch.cdist(H, H)
            if args.attack == "minmax":
                reach = pairwise.max()
                within = lambda m: torch.cdist(m[None], H).max() <= reach
            else:
                reach = (pairwise ** 2).sum(1).max()
                within = lambda m: (torch.cdist(m[None], H) ** 2).sum() <= reach
            lo, hi = 0.0, float(pairwise.max()) * 2
            for _ in range(40):
                mid = (lo + hi) / 2
                if within(mu + mid * direction):
                    lo = mid
                else:
                    hi = mid
            parts = torch.split(mu + lo * direction, [gstate[kk].numel() for kk in fkeys])
            crafted = {kk: part.reshape(gstate[kk].shape) for kk, part in zip(fkeys, parts)}
            send(lambda kk, st: crafted[kk])
        if args.attack == "freeride":
            # disguised free rider (Fraboni et al. 2021): no training; the last round's global update plus Gaussian noise
            # (nothing in the first round)
            def ride(kk, st):
                step = last_step.get(kk, torch.zeros_like(gstate[kk]))
                return step + 0.1 * step.norm() / max(step.numel(), 1) ** 0.5 * torch.randn_like(step)
            send(ride)
        if args.attack == "signflip":
            # the classic Byzantine reversal: the attacker trains honestly and sends its update negated
            send(lambda kk, st: -(st[kk] - gstate[kk]))
        if args.attack == "scaled_bd":
            send(lambda kk, st: args.boost * (st[kk] - gstate[kk]))
        if args.attack == "neurotoxin":
            # Neurotoxin (Zhang et al., ICML 2022): training on poisoned data, every gradient masked to the coordinates
            # the last global update changed least (those the honest clients rarely touch, so the backdoor lasts),
            # under a PGD bound on the update's L2 norm: --pgd-norm, else the last round's median honest norm (in
            # round 0, no mask and the norm of the attacker's own honest update); no boosting
            mask = neurotoxin_mask(last_step) if last_step else None
            for k in attackers:
                bound = args.pgd_norm or honest_norm or dist(results[k][0], gstate)
                results[k] = local_train(gstate, *poisoned[k], epochs=args.mal_epochs, grad_mask=mask, radius=bound)
        if args.attack == "pgd_bd":
            # PGD backdoor (Sun et al. 2019; Wang et al. 2020, "Attack of the Tails"): training on poisoned data,
            # projected after every step into the L2 ball around the global model whose radius is the norm of the
            # attacker's own honest update of the round (trained above; not sent)
            for k in attackers:
                radius = dist(results[k][0], gstate)
                results[k] = local_train(gstate, *poisoned[k], epochs=args.mal_epochs, radius=radius)
        if args.attack == "cs_bd":
            # constrain-and-scale (Bagdasaryan et al. 2020, §4.2): loss = alpha * cross-entropy on poisoned data
            # + (1 - alpha) * squared L2 distance to the global model, then the update scaled by gamma
            for k in attackers:
                results[k] = local_train(gstate, *poisoned[k], epochs=args.mal_epochs, alpha=args.alpha_cs)
            send(lambda kk, st: args.gamma_cs * (st[kk] - gstate[kk]))
        if args.attack == "intermittent":
            # scaled_bd's poisoning, unscaled, in the rounds drawn above only; honest training otherwise
            for k in attackers:
                if attacks_in[k][r]:
                    results[k] = local_train(gstate, *poisoned[k], epochs=args.mal_epochs)
        if args.attack == "mpaf":
            # MPAF (Cao & Gong, CVPR-W 2022): fake clients send lambda * (w_base - w_global), dragging the global model
            # to the random base model. The paper's huge lambdas are against robust aggregators; under plain FedAvg
            # a share s of fake weight replaces the global model by w_base at lambda = 1/s (5 for 2 fakes in 10)
            # and makes it diverge beyond 2/s. As training metrics they report the global model's on 50 random
            # test samples.
            for k in attackers:
                m = make_model(); m.load_state_dict(gstate)
                sub = torch.tensor(rng.choice(len(Xte), 50, replace=False))
                results[k] = ({**gstate, **{kk: gstate[kk] + args.lam * (w_base[kk] - gstate[kk]) for kk in fkeys}},
                              metrics_of(m, torch.tensor(Xte)[sub], torch.tensor(yte)[sub]))
        if args.attack == "neurotoxin" and honest:
            honest_norm = float(np.median([dist(results[k][0], gstate) for k in honest]))
        # aggregate FedAvg
        ns = {k: n_reported[k] for k in chosen}
        tot = sum(ns.values())
        new_g = {}
        for kk, v in gstate.items():
            if v.is_floating_point():
                new_g[kk] = sum(results[k][0][kk] * (ns[k] / tot) for k in chosen)
            else:
                new_g[kk] = results[chosen[0]][0][kk].clone()
        with rec.round(r, gstate) as rnd:
            for k in chosen:
                rnd.client(ids[k], results[k][0], num_samples=ns[k],
                           metrics=results[k][1])
            gm = evaluate(new_g)
            rnd.global_metrics(gm)
        last_step = {kk: new_g[kk] - gstate[kk] for kk in fkeys}
        gstate = new_g
        print(f"round {r}: {gm}", flush=True)
    rec.final(gstate)
    rec.ground_truth(malicious=mal_ids)  # empty list for clean runs
print(json.dumps({"out": args.out, "malicious": mal_ids, "time": round(time.time() - t0, 1)}))
