"""What knowing the class proportions is worth: ``class_prior`` set to the
true proportions of the data against the default (the labels' proportions,
equal here since each class gets the same number of labels).

Accuracy on the unlabeled rows of ``MixedLabelPropagation()`` and
``HardNegativeLP()``, each fitted with and without
``class_prior=np.bincount(y)``, on the same label draws (paired
differences in points, mean and 95% Student-t interval), on the data sets
of ``benchmarks/accuracy.py`` (same loading; Fashion-MNIST with its first
five draws). The true proportions are an oracle: no estimate from the data
does better, so the table bounds what a class-prior estimate could bring.

Run (about 4 minutes on 2 cores)::

    python benchmarks/class_prior.py --output-dir doc/benchmarks
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, SEEDS, fmt_points, load, mean_ci, rst_table, seeds_of
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import mask_labels

ESTIMATORS = {
    "MixedLabelPropagation()": MixedLabelPropagation,
    "HardNegativeLP()": HardNegativeLP,
}


def paired_gain(X, y, rate, seeds, Est):
    """Accuracies with the labels' proportions and with the true ones."""
    prior = np.bincount(y)
    default, oracle = [], []
    for seed in seeds:
        y_train = mask_labels(y, rate, random_state=seed)
        unlabeled = y_train == -1
        for out, params in ((default, {}), (oracle, {"class_prior": prior})):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = Est(random_state=0, **params).fit(X, y_train).transduction_
            out.append(np.mean(pred[unlabeled] == y[unlabeled]))
    return np.array(default), np.array(oracle)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--rates", nargs="+", type=int, default=[1, 5])
    parser.add_argument("--output-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    rows = []
    for name in args.datasets:
        X, y = load(name)
        seeds = seeds_of(name, args.seeds)
        largest = np.bincount(y).max() / y.size
        cells = [name, f"{100 * largest:.1f}"]
        for rate in args.rates:
            for label, Est in ESTIMATORS.items():
                default, oracle = paired_gain(X, y, rate, seeds, Est)
                d = 100 * (oracle - default)
                cells.append(f"{100 * default.mean():.1f} {fmt_points((*mean_ci(d), d.min()))}")
        rows.append(cells)
        print(f"[{time.perf_counter() - start:6.0f}s] {name} done", flush=True)
    header = ["Data set", "largest class %"] + [
        f"{label} {rate}/class" for rate in args.rates for label in ESTIMATORS
    ]
    text = (
        "Accuracy on the unlabeled rows (%, default ``class_prior=None``) and the "
        "paired difference with ``class_prior`` set to the true class proportions "
        "(points, mean ± 95% interval, smallest draw), 10 draws (Fashion-MNIST 5). "
        "Produced by ``python benchmarks/class_prior.py``.\n\n"
        + rst_table(header, rows)
    )
    print(text)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        (args.output_dir / "class_prior.rst").write_text(text)


if __name__ == "__main__":
    main()
