"""``fedforensics simulate``: a FedAvg federation with known attackers, recorded to a run file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.text import Text

from ..report.files import check_output
from ..errors import FedForensicsError
from .app import command, console, output_file, user_errors
from .progress import progress_bar

ATTACK_NAMES = (
    "none", "backdoor", "label-flip", "class-flip", "scaling", "bounded-backdoor", "dba", "noise", "sign-flip", "sybil", "alie", "min-max",
)  # fmt: skip

Attack = Enum("Attack", {name: name for name in ATTACK_NAMES}, type=str)  # type: ignore[misc]


class Model(str, Enum):
    cnn = "cnn"
    mlp = "mlp"


class Partition(str, Enum):
    iid = "iid"
    dirichlet = "dirichlet"


class Flavour(str, Enum):
    labels = "labels"
    target_class = "target-class"


class TriggerShape(str, Enum):
    plus = "plus"
    square = "square"
    checker = "checker"


@command()
@user_errors
def simulate(
    out: Annotated[Path, typer.Argument(parser=output_file, help="The run file to write (interrupted, a new one is removed; on an error such as a full disk the rounds recorded stay).", show_default=False)],
    attack: Annotated[Attack, typer.Option(help="What the malicious clients do (docs/attacks.md).")] = "backdoor",  # type: ignore[assignment]
    malicious_fraction: Annotated[float, typer.Option(help="Share of the clients that are malicious, rounded to the nearest number of clients (a half to the even one); with an attack, at least one and never every client.")] = 0.2,
    clients: Annotated[int, typer.Option(help="Number of clients.")] = 10,
    clients_per_round: Annotated[Optional[int], typer.Option(help="Clients sampled per round (partial participation). Default: all.")] = None,
    rounds: Annotated[int, typer.Option(help="FedAvg rounds.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of everything: the same seed gives the same run, bit for bit.")] = 0,
    model: Annotated[Model, typer.Option(help="fedforensics.zoo model: a small CNN or an MLP.")] = Model.cnn,
    dataset: Annotated[str, typer.Option(help="'digits' (scikit-learn's bundled 8x8 digits), an .npz with x and y (or Keras's x_train, y_train, x_test, y_test, as its mnist.npz), or a folder of MNIST IDX files.")] = "digits",
    partition: Annotated[Partition, typer.Option(help="How the training data is split over clients.")] = Partition.iid,
    alpha: Annotated[float, typer.Option(help="Dirichlet concentration for --partition dirichlet (smaller: more label skew).")] = 0.5,
    lr: Annotated[float, typer.Option(help="Local SGD learning rate.")] = 0.1,
    momentum: Annotated[float, typer.Option(help="Local SGD momentum.")] = 0.9,
    local_epochs: Annotated[int, typer.Option(help="Local epochs per round.")] = 2,
    poison_rate: Annotated[float, typer.Option(show_default="1/3", help="The backdoors (backdoor, scaling, bounded-backdoor, dba, sybil; not --flavour target-class): share of a malicious client's data stamped and relabelled.")] = 1 / 3,
    target: Annotated[int, typer.Option(help="Target label of a backdoor or a class flip.")] = 6,
    source: Annotated[int, typer.Option(help="Class flip: the class whose images are labelled as --target.")] = 7,
    trigger: Annotated[TriggerShape, typer.Option(help="Trigger shape of the backdoors (backdoor, scaling, bounded-backdoor, dba, sybil; 3x3 pixels on images under 32 pixels a side, then about H/8, odd), at full intensity (the data's brightest value), one pixel from the bottom-right corner.")] = TriggerShape.plus,
    flavour: Annotated[Flavour, typer.Option(help="Backdoor flavour: 'labels' relabels triggered images to the target; 'target-class' (--attack backdoor only) stamps every target image, labels kept.")] = Flavour.labels,
    boost: Annotated[float, typer.Option(help="Scaling attack: factor the backdoor update is multiplied by.")] = 5.0,
    attack_start_round: Annotated[int, typer.Option(help="Attackers behave honestly before this round.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists, once the new run is complete (until then the earlier run stays, beside the new one: twice the space; interrupted, the earlier run is kept).")] = False,
) -> None:
    """Run a FedAvg federation in PyTorch with known malicious clients and record it.

    Every client update, the global models, sample counts, training loss and
    accuracy, the global model's accuracy (and attack success) per round, the
    held-out split (clean data for trigger inversion) and the ground truth go
    into OUT through the public recorder API. Needs torch
    ([bold]pip install -e ".\\[torch]"[/]).

    Exit codes: 0 the federation was recorded; 2 bad input; 3 a defect of fedforensics itself; 130
    interrupted (Ctrl-C), 143 terminated; 141 standard output was closed early (`| head`).
    """
    from ..simulate import SimulationConfig
    from ..simulate import simulate as run_simulation

    if str(out) == "-":  # it wrote a file named '-' (a researcher's review), as reports once did
        raise FedForensicsError("'-' (standard output) cannot hold a run file: give the run file's name")
    check_output(out)  # a folder, a missing folder: one line before the simulation
    if out.exists() and not out.is_file():  # a FIFO or a device: the recorder cannot write HDF5 into it
        raise FedForensicsError(f"{out} is not a regular file: give a run file's name")
    if out.exists() and not overwrite:
        raise FedForensicsError(f"{out} exists already: pass --overwrite to replace it")
    config = SimulationConfig(
        attack=attack.value, malicious_fraction=malicious_fraction, clients=clients,
        clients_per_round=clients_per_round, rounds=rounds, seed=seed, model=model.value, dataset=dataset,
        partition=partition.value, alpha=alpha, lr=lr, momentum=momentum, local_epochs=local_epochs,
        poison_rate=poison_rate, target=target, source=source, trigger=trigger.value, flavour=flavour.value, boost=boost,
        attack_start_round=attack_start_round,
    )  # fmt: skip
    with progress_bar("simulating rounds") as update:
        result = run_simulation(config, out, overwrite=overwrite, progress=update)
    per_round = f" ({config.clients_per_round} a round)" if config.clients_per_round else ""
    console.print(Text.assemble((str(out), "bold"), f": {config.rounds} rounds of {config.clients} clients{per_round} in {result.seconds:.0f} s"))
    console.print(Text(f"malicious ({attack.value}): {', '.join(result.malicious) or 'none'}"))
    for cid, why in result.idle.items():  # recorded as malicious all the same: evaluate counts it as an attacker missed
        console.print(Text(f"note: {cid} is in the ground truth but never attacked: {why}"))
    line = f"final main-task accuracy {result.accuracy:.1%}"
    if result.attack_success is not None:
        line += f", {'class flip' if attack.value == 'class-flip' else 'backdoor'} attack success {result.attack_success:.1%}"
    console.print(line)
