"""What the solves' tolerance changes: the default ``tol=1e-4`` against
``tol=1e-6`` on the same label draws.

For each data set of ``benchmarks/accuracy.py`` (same loading and
preprocessing), 1 and 5 labels per class and 5 draws, both defaults
(``MixedLabelPropagation()``, ``HardNegativeLP()``) are fitted at both
tolerances. Printed per set, rate and estimator: the share of all rows
whose prediction changes (mean and largest over the draws), the accuracy
at 1e-6 minus that at 1e-4 on the unlabeled rows (mean, in points), the
fit time and the conjugate-gradient iterations at each tolerance.

Run (about ten minutes on 2 cores, half of it Fashion-MNIST)::

    python benchmarks/tolerance.py --output doc/benchmarks/tolerance.txt
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, load
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import mask_labels

TOLERANCES = (1e-6, 1e-4)
ESTIMATORS = (MixedLabelPropagation, HardNegativeLP)


def compare(X, y, per_class, seeds):
    """Per estimator: (changed share, accuracy difference, times, iterations)
    of each draw."""
    rows = {Est.__name__: [] for Est in ESTIMATORS}
    for seed in seeds:
        y_train = mask_labels(y, per_class, random_state=seed)
        unlabeled = y_train == -1
        for Est in ESTIMATORS:
            fits = []
            for tol in TOLERANCES:
                start = time.perf_counter()
                est = Est(tol=tol).fit(X, y_train)
                fits.append((est.transduction_, time.perf_counter() - start, est.n_iter_))
            (tight, t_tight, i_tight), (loose, t_loose, i_loose) = fits
            accuracy = [(p[unlabeled] == y[unlabeled]).mean() for p in (tight, loose)]
            rows[Est.__name__].append(
                ((tight != loose).mean(), accuracy[0] - accuracy[1],
                 t_tight, t_loose, i_tight, i_loose)
            )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    lines = [
        "set            labels  estimator               changed rows: mean (max)  "
        "acc 1e-6 - 1e-4  fit s 1e-6 -> 1e-4  CG iterations"
    ]
    for name in args.datasets:
        X, y = load(name)
        for per_class in (1, 5):
            rows = compare(X, y, per_class, range(args.seeds))
            for est_name, r in rows.items():
                r = np.array(r)
                lines.append(
                    f"{name:14s} {per_class}/class {est_name:22s}  "
                    f"{100 * r[:, 0].mean():6.3f}% ({100 * r[:, 0].max():.3f}%)       "
                    f"{100 * r[:, 1].mean():+.3f} pts      "
                    f"{r[:, 2].mean():5.2f} -> {r[:, 3].mean():5.2f}    "
                    f"{r[:, 4].mean():.0f} -> {r[:, 5].mean():.0f}"
                )
                print(lines[-1], flush=True)
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
