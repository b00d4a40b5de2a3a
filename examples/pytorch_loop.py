"""The smallest honest FedAvg loop in plain PyTorch, recorded. The recorder is the lines marked ``# recorder``.

    python examples/pytorch_loop.py          # writes pytorch_loop.h5 (scikit-learn's bundled digits, no download)
    fedforensics inspect pytorch_loop.h5
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from recorder import Recorder  # recorder

torch.set_num_threads(1)
torch.manual_seed(0)
ROUNDS, CLIENTS = 10, 8

x, y = load_digits(return_X_y=True)
x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
x_test, y_test = x[1500:], y[1500:]
clients = {f"client{i}": (x[i:1500:CLIENTS], y[i:1500:CLIENTS]) for i in range(CLIENTS)}
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))


def local_training(global_state: dict[str, torch.Tensor], xc: torch.Tensor, yc: torch.Tensor) -> dict[str, torch.Tensor]:
    """One epoch of SGD from the global model; returns the client's weights."""
    model.load_state_dict(global_state)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    for batch in torch.randperm(len(yc)).split(32):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(xc[batch]), yc[batch]).backward()
        optimiser.step()
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


with Recorder("pytorch_loop.h5", meta={"dataset": "digits", "aggregation": "fedavg"}, overwrite=True) as rec:  # recorder
    global_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    for r in range(ROUNDS):
        with rec.round(r, global_state) as rnd:  # recorder
            states, sizes = {}, {}
            for cid, (xc, yc) in clients.items():
                states[cid], sizes[cid] = local_training(global_state, xc, yc), len(yc)
                rnd.client(cid, states[cid], num_samples=sizes[cid])  # recorder
            total = sum(sizes.values())
            global_state = {name: sum(states[c][name] * (sizes[c] / total) for c in states) for name in global_state}
            model.load_state_dict(global_state)
            with torch.no_grad():
                accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
            rnd.global_metrics({"accuracy": accuracy})  # recorder
        print(f"round {r}: accuracy {accuracy:.3f}")
    rec.final(global_state)  # recorder
print("recorded pytorch_loop.h5: try  fedforensics inspect pytorch_loop.h5")
