"""Transductive accuracy of LP, MoM, Control and HardNegativeLP on digits.

scikit-learn's digits (1,797 images, 10 classes), 5 labels per class, 10
label draws with a fixed seed list; accuracy on the unlabeled rows (mean
and 95% confidence interval over the draws), fit time and conjugate-gradient
iterations (medians over the draws), for each method

- in the paper's configuration (``.paper()``: k = 50, power kernel with
  gamma = 3, combinatorial Laplacian, mu = 1/99, beta = 1, and for
  HardNegativeLP the paper's edge-removal mining with lambda = 4 on the raw
  scores, fed to the mixed loss);
- with the package's defaults (a k = 10 self-tuning graph, normalised
  Laplacian, class-mass normalisation, mu = 'auto'): plain LP, MoM and
  Control; the paper's edge-removal mining on that base,
  ``HardNegativeLP('hard')`` (scale-free, lambda = 16, cut from the
  graph); and
  ``HardNegativeLP()``, negatives mined from two views (the propagation and
  a linear discriminant) in 2 rounds and cut from the graph.

The nine-dataset comparison with scikit-learn and GraphLearning is
``benchmarks/accuracy.py``. Every ``UserWarning`` of a fit is an error.

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

METHODS = {  # name: (estimator, as written in the table; factory)
    "LP, paper": ("MixedLabelPropagation.paper()", MixedLabelPropagation.paper),
    "MoM, paper": (
        "MixedLabelPropagation.paper('mom')",
        lambda: MixedLabelPropagation.paper("mom"),
    ),
    "Control, paper": (
        "HardNegativeLP.paper('control')",
        lambda: HardNegativeLP.paper("control"),
    ),
    "edge removal, paper": ("HardNegativeLP.paper()", HardNegativeLP.paper),
    "LP, defaults": ("MixedLabelPropagation()", MixedLabelPropagation),
    "MoM, defaults": ("MixedLabelPropagation('mom')", lambda: MixedLabelPropagation("mom")),
    "Control, defaults": ("HardNegativeLP('control')", lambda: HardNegativeLP("control")),
    "edge removal, defaults": ("HardNegativeLP('hard')", lambda: HardNegativeLP("hard")),
    "two views, defaults": ("HardNegativeLP()", HardNegativeLP),
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
        for name, (_, make) in METHODS.items():
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
    rule = "  ".join(["=" * 22, "=" * 34, "=" * 18, "=" * 12, "=" * 13])
    lines = [
        f"Digits, {n_labeled} labels per class, {n_draws} draws (seeds "
        f"{SEEDS[0]}-{SEEDS[n_draws - 1]}): accuracy on the unlabeled rows.",
        "",
        rule,
        f"{'method':<22}  {'estimator':<34}  {'accuracy (95% CI)':<18}  "
        f"{'fit time (s)':<12}  CG iterations",
        rule,
    ]
    for name, r in results.items():
        m, h = mean_ci(r["acc"])
        lines.append(
            f"{name:<22}  {METHODS[name][0]:<34}  {m:.4f} +/- {h:.4f}  "
            f"{np.median(r['time']):>12.3f}  {np.median(r['iters']):>13.0f}"
        )
    lines.append(rule)
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
