"""Transductive accuracy of LP, MoM, Control and HardNegativeLP on digits.

scikit-learn's digits (1,797 images, 10 classes), 5 labels per class, 10
label draws with a fixed seed list; accuracy on the unlabeled rows (mean
and 95% confidence interval over the draws) and fit time, in the paper's
configuration (``.paper()``: k = 50, gamma = 3, mu = 1/99, beta = 1,
lambda = 4) and with the package's defaults (k = 10 self-tuning graph,
normalised Laplacian, class-mass normalisation, scale-free mining). The
four-dataset comparison with scikit-learn and GraphLearning is
``benchmarks/accuracy.py``.

Run::

    python benchmarks/digits_methods.py [--n-draws 10] [--output doc/benchmarks/digits_methods.rst]
"""

import argparse
import time
import warnings

import numpy as np
from scipy import stats
from sklearn.datasets import load_digits

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import mask_labels

METHODS = {
    "LP (eq. 16), paper": lambda: MixedLabelPropagation.paper(),
    "MoM, paper": lambda: MixedLabelPropagation.paper("mom"),
    "Control, paper": lambda: HardNegativeLP.paper("control"),
    "HardNegativeLP, paper": lambda: HardNegativeLP.paper(),
    "LP, defaults": lambda: MixedLabelPropagation(),
    "Control, defaults": lambda: HardNegativeLP("control"),
    "HardNegativeLP, defaults": lambda: HardNegativeLP(),
}
SEEDS = list(range(10))


def mean_ci(values):
    values = np.asarray(values)
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return values.mean(), half


def run(n_draws, n_labeled):
    X, y = load_digits(return_X_y=True)
    results = {name: {"acc": [], "time": [], "iters": []} for name in METHODS}
    for seed in SEEDS[:n_draws]:
        y_train = mask_labels(y, n_labeled, random_state=seed)
        unlabeled = y_train == -1
        for name, make in METHODS.items():
            est = make()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("error", category=UserWarning)
                est.fit(X, y_train)
            results[name]["time"].append(time.perf_counter() - start)
            results[name]["acc"].append(np.mean(est.transduction_[unlabeled] == y[unlabeled]))
            results[name]["iters"].append(est.n_iter_)
    return results


def table(results, n_draws, n_labeled):
    lines = [
        f"Digits, {n_labeled} labels per class, {n_draws} draws (seeds "
        f"{SEEDS[0]}-{SEEDS[n_draws - 1]}): accuracy on the unlabeled rows.",
        "",
        "========================  ==================  ============  ==============",
        "method                    accuracy (95% CI)   fit time (s)  CG iterations",
        "========================  ==================  ============  ==============",
    ]
    for name, r in results.items():
        m, h = mean_ci(r["acc"])
        lines.append(
            f"{name:<24}  {m:.4f} +/- {h:.4f}     {np.median(r['time']):>10.3f}  "
            f"{np.median(r['iters']):>14.0f}"
        )
    lines.append(lines[2])
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-draws", type=int, default=10)
    parser.add_argument("--n-labeled", type=int, default=5)
    parser.add_argument("--output", help="also write the table to this RST file")
    args = parser.parse_args()
    text = table(run(args.n_draws, args.n_labeled), args.n_draws, args.n_labeled)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
