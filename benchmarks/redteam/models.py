"""The red team's models (names chosen to differ from the tool's zoo): ``fedavg.py`` trains them, and the
``digits_*`` factories rebuild them for trigger inversion (``benchmarks/redteam_inversion.py``, or
``fedforensics analyze RUN --model models:digits_cnn`` run from this folder), with ``data.held_out`` as
the clean data. Each model takes its input flat or shaped as an image (``data.IMAGE_SHAPE``).
"""
import torch.nn as nn
import torch.nn.functional as F


class SoftmaxRegression(nn.Linear):
    """One linear layer (state_dict keys ``weight`` and ``bias``)."""

    def forward(self, x):
        return super().forward(x.flatten(1))


class MLPLN(nn.Module):
    def __init__(self, features, classes):
        super().__init__()
        self.encoder = nn.ModuleDict({"fc_in": nn.Linear(features, 64), "norm": nn.LayerNorm(64), "fc_mid": nn.Linear(64, 32)})
        self.classifier_head = nn.Linear(32, classes)

    def forward(self, x):
        h = F.gelu(self.encoder["norm"](self.encoder["fc_in"](x.flatten(1))))
        h = F.gelu(self.encoder["fc_mid"](h))
        return self.classifier_head(h)


class CNN(nn.Module):
    """For 8 × 8 digits: two convolutions (BatchNorm after the first), max pooling, a linear classifier."""

    def __init__(self, classes):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                   nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.out = nn.Linear(16 * 4 * 4, classes)

    def forward(self, x):
        x = x.view(-1, 1, 8, 8)
        return self.out(self.trunk(x).flatten(1))


def build(model, features, classes):
    """``model`` is fedavg.py's ``--model``: softreg, mlpln or cnn."""
    if model == "softreg":
        return SoftmaxRegression(features, classes)
    if model == "mlpln":
        return MLPLN(features, classes)
    return CNN(classes)


def digits_softreg():
    return build("softreg", 64, 10)


def digits_mlpln():
    return build("mlpln", 64, 10)


def digits_cnn():
    return build("cnn", 64, 10)


def tab_softreg():
    return build("softreg", 20, 5)


def tab_mlpln():
    return build("mlpln", 20, 5)

