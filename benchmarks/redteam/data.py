"""The red team's data: scikit-learn's digits or a 5-class tabular task, and the part fedavg.py keeps out of
training (its test split), which trigger inversion takes as clean data."""
import numpy as np
from sklearn.datasets import load_digits, make_classification

#: How trigger inversion sees one sample: an 8 × 8 image, or the 20 features as a 1 × 20 one.
IMAGE_SHAPE = {"digits": (1, 8, 8), "tab": (1, 1, 20)}


def load(data, seed):
    """Features (float32), labels and the number of classes of ``data`` (``digits`` or ``tab``)."""
    if data == "digits":
        d = load_digits()
        return (d.data / 16.0).astype(np.float32), d.target.astype(np.int64), 10
    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, n_redundant=4,
                               n_classes=5, n_clusters_per_class=1, class_sep=1.0, random_state=seed)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32), y.astype(np.int64), 5


def split(n, rng):
    """fedavg.py's test and training indices of ``n`` samples: the first fifth of a permutation drawn from ``rng``
    (the first draw of its generator) and the rest."""
    perm = rng.permutation(n)
    return perm[: n // 5], perm[n // 5:]


def held_out(data, seed):
    """The samples fedavg.py kept out of training for ``seed``, shaped for trigger inversion, and their labels."""
    X, y, _ = load(data, seed)
    test, _ = split(len(X), np.random.default_rng(seed))
    return X[test].reshape(-1, *IMAGE_SHAPE[data]), y[test]
