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
  f3ba        Fang and Chen, AAAI 2023, "On the Vulnerability of Backdoor Defenses for Federated Learning" (F3BA,
              focused flip): from its second round on, the attacker takes as candidates the 10 % of the conv and hidden
              layers' weights of lowest movement score (w_t - w_t-1) * w_t, optimizes a 3x3 patch (bottom-right) to
              raise the conv activations it causes (2 passes of gradient ascent, step 0.1), flips the candidate conv
              weights to the signs of the patch (scaled to each filter's range), and in every third attacking round flips
              the candidate hidden-layer weights to the signs of the stamped-minus-clean feature difference; then, as the
              authors' code does, it trains on its data with 30 % of each batch stamped and labelled 5.
              Simplified: flip factor 1, no held-out fifth of its data for the handcrafting, no similarity loss
  chameleon   Dai and Li, ICML 2023, "Chameleon: Adapting to Peer Images for Planting Durable Backdoors in Federated
              Learning": a fixed 3x3 white patch (bottom-right), target 2; the attacker first trains the encoder (all
              layers but the last) with a projection head (64 -> 32, kept across rounds) under a supervised contrastive
              loss (temperature 0.07) in which 30 % of each batch is stamped and labelled 2, so stamped images are pulled
              toward the benign 2s (the facilitators, their pairs weighted 2) and pushed from their own class (the
              interferers); then it freezes the encoder and trains the last layer by cross-entropy on the same batches
              (--epochs each stage; momentum 0.9, learning rates 0.01 and --lr). Simplified: no projection onto a norm
              ball, no learning-rate milestones
  iba         in the spirit of IBA (Nguyen et al., NeurIPS 2023, "IBA: Towards Irreversible Backdoor Attacks in
              Federated Learning"): a trigger generator (conv 1->16 -> ReLU -> conv 16->1 -> tanh, times 0.2: a
              per-image perturbation of at most 0.2 a pixel) shared by the attackers, trained each round (20 Adam steps)
              to make the current global model answer 8 for perturbed inputs; the attacker then trains with 30 % of each
              batch perturbed and labelled 8, updating only the coordinates outside the 10 % the last global update
              moved most (the main task's, as Neurotoxin), projected every 5 steps and at the end onto the L2 ball of its
              own honest update norm. Simplified: the generator is trained against the global model, not jointly
              with the local one

Every client (the attackers too) reports train_loss and train_accuracy of the model it trained on its own data (the
model-poisoning attackers report those of their honest training). Each round's global metrics hold ``accuracy`` on
held-out digits and, for the backdoors, ``attack_success`` on held-out inputs of the backdoor task; an a3fl or f3ba run
attaches its last trigger (``a3fl_trigger`` or ``f3ba_trigger``: ``pattern`` and ``mask``), an iba run its last
generator's perturbed held-out inputs (``iba_trigger``: ``x``).
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

ATTACKS = ["none", "fang", "fang-pk", "edge", "edge-pgd", "semantic", "a3fl", "poisonedfl", "f3ba", "chameleon", "iba"]
BACKDOORS = {"edge": 1, "edge-pgd": 1, "semantic": 6, "a3fl": 3, "f3ba": 5, "chameleon": 2, "iba": 8}  # attack -> target


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
CORNER = torch.zeros(1, 1, 8, 8)  # F3BA's and Chameleon's patch: the bottom-right corner
CORNER[..., 5:8, 5:8] = 1.0


def stamp(x: torch.Tensor, pattern: torch.Tensor, mask: torch.Tensor = MASK) -> torch.Tensor:
    """A patch trigger: ``pattern`` pasted where ``mask`` is 1 (A3FL's: the 3x3 bottom-left corner)."""
    return x * (1 - mask) + pattern * mask


def stamped(trigger, target: int):
    """A batch poisoner: ``--poison`` of the batch (its first samples) passed through ``trigger`` and labelled ``target``."""
    def poison(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = max(1, int(args.poison * len(yb)))
        return torch.cat([trigger(xb[:k]), xb[k:]]), torch.cat([torch.full((k,), target), yb[k:]])
    return poison


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


def train(state, x, y, poison=None, radius=None, keep=None):
    """Local SGD (momentum 0.9) from ``state``; with ``poison`` (a batch poisoner, ``stamped``) each batch is
    poisoned; with ``radius`` (PGD) the model is projected onto the L2 ball of that radius around ``state`` every
    5 steps and at the end; with ``keep`` (a 0/1 vector over the parameters) only those coordinates are updated.
    Returns the trained state and its metrics on the client's own data."""
    m = model_at(state)
    start = vector(state)
    opt = torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9)
    masks = [p.reshape(q.shape) for p, q in zip(unvector(keep).values(), m.parameters())] if keep is not None else None
    steps = 0
    for _ in range(args.epochs):
        for batch in torch.randperm(len(y)).split(args.batch):
            xb, yb = x[batch], y[batch]
            if poison is not None:
                xb, yb = poison(xb, yb)
            opt.zero_grad()
            F.cross_entropy(m(xb), yb).backward()
            if masks is not None:
                for p, mask in zip(m.parameters(), masks):
                    p.grad *= mask
            opt.step()
            steps += 1
            if radius is not None and (steps % 5 == 0):
                project(m, start, radius)
    if radius is not None:
        project(m, start, radius)
    return {k: v.detach().clone() for k, v in m.state_dict().items()}, own_metrics(m, x, y)


def own_metrics(m: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """What a client reports: the loss and accuracy of its trained model on its own data."""
    with torch.no_grad():
        out = m(x)
        return {"train_loss": float(F.cross_entropy(out, y)), "train_accuracy": float((out.argmax(1) == y).float().mean())}


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


def f3ba_candidates(state, previous, share: float = 0.1) -> dict[str, torch.Tensor]:
    """F3BA's candidate weights: in the conv and hidden layers, the ``share`` of lowest movement score
    (w_t - w_t-1) * w_t (weights shrinking toward, or across, zero), as 0/1 masks."""
    out = {}
    for name in ("0.weight", "4.weight"):
        score = (state[name] - previous[name]) * state[name]
        out[name] = (score <= score.flatten().kthvalue(max(1, int(share * score.numel()))).values).float()
    return out


def f3ba_flip_conv(state, candidates, pattern) -> dict[str, torch.Tensor]:
    """F3BA's conv flip: each filter's candidate weights take the signs of the patch, scaled to the filter's range."""
    state = {k: v.clone() for k, v in state.items()}
    patch = pattern[0, :, 5:8, 5:8]
    kernels = state["0.weight"]
    for i in range(kernels.shape[0]):
        low, high = kernels[i].min(), kernels[i].max()
        scaled = (patch - patch.min()) / (patch.max() - patch.min() + 1e-12) * (high - low) + low
        mask = candidates["0.weight"][i]
        kernels[i] = mask * torch.sign(scaled) * kernels[i].abs() + (1 - mask) * kernels[i]
    return state


def conv_features(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The digits CNN's pooled conv features (the hidden layer's input)."""
    return m[:4](x)


def f3ba_handcraft(state, previous, pattern, x, y, flip_hidden: bool):
    """F3BA's training-free injection: candidates, the patch optimized against the flipped filters, the conv flip,
    and (``flip_hidden``) the hidden layer's candidates flipped to the signs of the feature difference the patch makes.
    Returns the handcrafted state and the optimized patch."""
    candidates = f3ba_candidates(state, previous)
    x = x[y != BACKDOORS["f3ba"]]
    m = model_at(f3ba_flip_conv(state, candidates, pattern))
    for p in m.parameters():
        p.requires_grad_(False)
    pattern = pattern.clone()
    for _ in range(2):
        for batch in torch.randperm(len(x)).split(args.batch):
            pattern.requires_grad_(True)
            gain = (m[:2](stamp(x[batch], pattern, CORNER)) - m[:2](x[batch])).mean()
            (grad,) = torch.autograd.grad(gain, pattern)
            pattern = (pattern + 0.1 * grad).clamp(0, 1).detach()
    handcrafted = f3ba_flip_conv(state, candidates, pattern)
    if flip_hidden:
        m = model_at(handcrafted)
        with torch.no_grad():
            signs = torch.sign(conv_features(m, stamp(x, pattern, CORNER)).mean(0) - conv_features(m, x).mean(0))
        hidden, mask = handcrafted["4.weight"], candidates["4.weight"]
        handcrafted["4.weight"] = (1 - mask) * hidden + mask * hidden.abs() * signs
    return handcrafted, pattern


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, poisoned: torch.Tensor, temperature: float = 0.07,
                facilitator_weight: float = 2.0) -> torch.Tensor:
    """Chameleon's supervised contrastive loss: positives share a label; a pair of a stamped sample and a benign sample
    of the target label (a facilitator) counts ``facilitator_weight`` times."""
    z = F.normalize(z, dim=1)
    logits = z @ z.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool)
    logits = logits.masked_fill(eye, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    facilitator = (poisoned[:, None] & ~poisoned[None, :]) | (~poisoned[:, None] & poisoned[None, :])
    weight = positive.float() * torch.where(facilitator, facilitator_weight, 1.0)
    has = weight.sum(1) > 0
    return -((weight * log_prob).sum(1)[has] / weight.sum(1)[has]).mean()


def chameleon_train(state, x, y, head: torch.nn.Module):
    """Chameleon's two stages: the encoder (and ``head``, the projection) under the contrastive loss with stamped
    samples among the batch, then the last layer alone by cross-entropy on the same kind of batches."""
    m = model_at(state)
    target = BACKDOORS["chameleon"]
    poison = stamped(lambda xb: stamp(xb, torch.ones(1, 1, 8, 8), CORNER), target)
    encoder = m[:6]
    opt = torch.optim.SGD(list(encoder.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9)
    for _ in range(args.epochs):
        for batch in torch.randperm(len(y)).split(args.batch):
            xb, yb = poison(x[batch], y[batch])
            k = max(1, int(args.poison * len(batch)))
            poisoned = torch.arange(len(yb)) < k
            opt.zero_grad()
            supcon_loss(head(encoder(xb)), yb, poisoned).backward()
            opt.step()
    opt = torch.optim.SGD(m[6].parameters(), lr=args.lr, momentum=0.9)
    for _ in range(args.epochs):
        for batch in torch.randperm(len(y)).split(args.batch):
            xb, yb = poison(x[batch], y[batch])
            opt.zero_grad()
            with torch.no_grad():
                features = encoder(xb)
            F.cross_entropy(m[6](features), yb).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in m.state_dict().items()}, own_metrics(m, x, y)


IBA_BOUND = 0.2


def iba_perturb(generator: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """IBA's trigger: the generator's per-image perturbation (at most ``IBA_BOUND`` a pixel) added to the image."""
    return (x + IBA_BOUND * generator(x)).clamp(0, 1)


def iba_fit_generator(generator: torch.nn.Module, state, x, y, steps: int = 20) -> None:
    """IBA's trigger step: the generator trained (Adam) so that the global model answers the target for perturbed
    inputs (the attacker's samples not of the target label)."""
    target = BACKDOORS["iba"]
    x = x[y != target]
    glob = model_at(state)
    for p in glob.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(generator.parameters(), lr=0.01)
    for _ in range(steps):
        batch = torch.randint(len(x), (args.batch,))
        opt.zero_grad()
        F.cross_entropy(glob(iba_perturb(generator, x[batch])), torch.full((args.batch,), target)).backward()
        opt.step()


def neurotoxin_keep(last_update: torch.Tensor, top: float = 0.1) -> torch.Tensor:
    """The coordinates the main task moves least: all but the ``top`` share of largest |last global update|."""
    cut = last_update.abs().kthvalue(max(1, int((1 - top) * last_update.numel()))).values
    return (last_update.abs() <= cut).float()


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
            others = x_test[y_test != target]
            if args.attack == "a3fl":
                xs = stamp(others, pattern)
            elif args.attack == "f3ba":
                xs = stamp(others, pattern, CORNER)
            elif args.attack == "chameleon":
                xs = stamp(others, torch.ones(1, 1, 8, 8), CORNER)
            elif args.attack == "iba":
                xs = iba_perturb(generator, others)
            else:
                xs = torch.from_numpy(X[edge_test if args.attack.startswith("edge") else thin_test])
            out["attack_success"] = float((m(xs).argmax(1) == target).float().mean())
    return out


# ------------------------------------------------------------------ the federation
state = {k: v.clone() for k, v in digits_cnn().state_dict().items()}
history = [vector(state)]
pattern = torch.rand(1, 1, 8, 8)
heads = {i: torch.nn.Linear(64, 32) for i in attackers} if args.attack == "chameleon" else {}
generator = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 1, 3, padding=1),
                                torch.nn.Tanh()) if args.attack == "iba" else None
handcrafted_rounds = 0
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
        if args.attack == "iba" and bad:
            iba_fit_generator(generator, state, *clean[bad[0]])
        start = state
        if args.attack == "f3ba" and bad and len(history) > 1:
            handcrafted_rounds += 1
            start, pattern = f3ba_handcraft(state, unvector(history[-2]), pattern, *clean[bad[0]], handcrafted_rounds % 3 == 1)
        for i in bad:
            if args.attack in ("edge", "semantic"):
                results[i] = train(state, *poisoned[i])
            elif args.attack == "edge-pgd":
                radius = float((vector(train(state, *clean[i])[0]) - g).norm())
                results[i] = train(state, *poisoned[i], radius=radius)
            elif args.attack == "a3fl":
                results[i] = train(state, *clean[i], poison=stamped(lambda xb: stamp(xb, pattern), BACKDOORS["a3fl"]))
            elif args.attack == "f3ba":
                results[i] = train(start, *clean[i], poison=stamped(lambda xb: stamp(xb, pattern, CORNER), BACKDOORS["f3ba"]))
            elif args.attack == "chameleon":
                results[i] = chameleon_train(state, *clean[i], heads[i])
            elif args.attack == "iba":
                radius = float((vector(train(state, *clean[i])[0]) - g).norm())
                keep = neurotoxin_keep(history[-1] - history[-2]) if len(history) > 1 else None
                results[i] = train(state, *clean[i], poison=stamped(lambda xb: iba_perturb(generator, xb).detach(), BACKDOORS["iba"]),
                                   radius=radius, keep=keep)
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
    if args.attack in ("a3fl", "f3ba"):  # the last trigger, to test it on the clean control's model
        rec.attach(f"{args.attack}_trigger", pattern=pattern.numpy(), mask=(MASK if args.attack == "a3fl" else CORNER).numpy())
    if args.attack == "iba":  # the last generator's held-out inputs, to test them on the clean control's model
        with torch.no_grad():
            rec.attach("iba_trigger", x=iba_perturb(generator, x_test[y_test != BACKDOORS["iba"]]).numpy())
    rec.ground_truth(malicious=[names[i] for i in attackers])

print(json.dumps({"out": args.out, "attackers": [names[i] for i in attackers]} | last))
