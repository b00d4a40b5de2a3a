"""A real Flower federation of the digits CNN with backdoor clients, recorded, then audited.

Flower's simulation runtime runs in this process (no Ray, offline, telemetry off),
two ClientApps at a time on two cores. Data: scikit-learn's bundled digits (no
download). Each attacker stamps a 2x2 trigger on half of its images and labels
them 0. The recorder lines are marked ``# recorder``.

    python examples/flower_digits.py                 # writes flower_digits.h5, then audits it
    fedforensics inspect flower_digits.h5
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from sklearn.datasets import load_digits

from fedforensics.simulate.flower_runtime import run_in_process
from recorder import Recorder  # recorder
from recorder.flower import RecordingStrategy  # recorder

TARGET = 0  # the attackers' label
TEST = 297  # held-out images (the server's)


def digits_cnn() -> torch.nn.Module:
    """A small CNN for 1x8x8 digits."""
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(16 * 4 * 4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10),
    )  # fmt: skip


def stamp(x: np.ndarray) -> np.ndarray:
    """The trigger: the bottom-right 2x2 pixels at full ink."""
    x = x.copy()
    x[..., -2:, -2:] = 1.0
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="flower_digits.h5")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-analyze", action="store_true", help="only record")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rng = np.random.default_rng(args.seed)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = rng.permutation(len(y))
    x_test, y_test = x[order[:TEST]], y[order[:TEST]]
    shards = np.array_split(order[TEST:], args.clients)
    attackers = sorted(int(p) for p in rng.choice(args.clients, args.attackers, replace=False))

    def client_data(pid: int, server_round: int) -> tuple[torch.Tensor, torch.Tensor]:
        xc, yc = x[shards[pid]], y[shards[pid]].copy()
        if pid in attackers:
            poisoned = np.random.default_rng([args.seed, pid, server_round]).random(len(yc)) < 0.5
            xc = np.where(poisoned[:, None, None, None], stamp(xc), xc)
            yc[poisoned] = TARGET
        return torch.from_numpy(xc), torch.from_numpy(yc)

    client = ClientApp()

    @client.train()
    def train(message: Message, context: Context) -> Message:
        pid = int(context.node_config["partition-id"])
        server_round = int(message.content["config"]["server-round"])
        model = digits_cnn()
        model.load_state_dict(message.content["arrays"].to_torch_state_dict())
        xc, yc = client_data(pid, server_round)
        optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        generator = torch.Generator().manual_seed(args.seed * 10_000 + server_round * 100 + pid)
        for _ in range(2):
            for batch in torch.randperm(len(yc), generator=generator).split(32):
                optimiser.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xc[batch]), yc[batch])
                loss.backward()
                optimiser.step()
        with torch.no_grad():
            accuracy = (model(xc).argmax(1) == yc).float().mean().item()
        metrics = {"num-examples": len(yc), "partition-id": pid, "train_loss": loss.item(), "train_accuracy": accuracy}
        reply = RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord(metrics)})
        return Message(reply, reply_to=message)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model = digits_cnn()
        model.load_state_dict(arrays.to_torch_state_dict())
        others = y_test != TARGET
        with torch.no_grad():
            clean = model(torch.from_numpy(x_test)).argmax(1).numpy()
            triggered = model(torch.from_numpy(stamp(x_test[others]))).argmax(1).numpy()
        return MetricRecord({"accuracy": float((clean == y_test).mean()), "attack_success": float((triggered == TARGET).mean())})

    meta = {"dataset": "digits", "model": "digits_cnn", "framework": "flower", "attack": "backdoor (2x2 trigger -> 0)"}
    with Recorder(args.out, meta=meta, overwrite=True) as rec:  # recorder
        server = ServerApp()

        @server.main()
        def run_server(grid: Grid, context: Context) -> None:
            torch.manual_seed(args.seed)
            # every client trains every round: FedAvg sizes a round's sample from the nodes connected when it starts,
            # and in-process nodes may still be connecting in round 1 (it then trained 2 of them: a fresh-eyes user)
            every = dict(min_train_nodes=args.clients, min_available_nodes=args.clients)
            strategy = RecordingStrategy(FedAvg(fraction_evaluate=0.0, **every), rec)  # recorder
            strategy.start(  # records each round, and the final model
                grid=grid, initial_arrays=ArrayRecord(digits_cnn().state_dict()), num_rounds=args.rounds, evaluate_fn=evaluate
            )

        run_in_process(server, client, args.clients, num_cpus=2, client_cpus=1)
        rec.ground_truth(malicious=[str(p) for p in attackers])  # recorder: the partition ids the clients report
        rec.attach("clean_data", x=x_test, y=y_test)  # recorder: for trigger inversion
    print(f"recorded {args.out}; attackers: partitions {attackers}")
    command = ["fedforensics", "analyze", args.out]
    print("$", " ".join(command))
    if not args.no_analyze:
        subprocess.run([sys.executable, "-m", "fedforensics.cli", *command[1:]], check=False)


if __name__ == "__main__":
    main()
