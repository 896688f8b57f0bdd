"""What each lever does: from the paper's configuration to the defaults,
one change at a time.

Accuracy on the unlabeled rows at 5 labels per class, over a fixed list of
label draws (mean and 95% confidence interval), on the datasets of
``benchmarks/accuracy.py`` (same loading and preprocessing). The first rows
add one change at a time, from ``MixedLabelPropagation.paper()`` (eq. 16 on
the k = 50, gamma = 3 graph) to ``MixedLabelPropagation()``; then the
ingredients of ``HardNegativeLP()``'s mining one at a time, the paper's
edge-removal mining on the default base, and oracle negatives (every graph
edge joining two true classes), which bound what negatives can bring when
they carry information. Graphs are built once per dataset with
:func:`sklearn_mixedlp.knn_graph`; the rows whose mining needs the
features (the linear view) are fitted on the features, on the same graph;
the last ``HardNegativeLP()`` row is fitted as a user fits it (its own
graph is the lifted one of the row ``lift=0.5``, and its mining reads the
lifted rows).

Run (about an hour on 2 cores)::

    python benchmarks/levers.py --output-dir doc/benchmarks
"""

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, SEEDS, elapsed_log, fmt, load, mean_ci, rst_table
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import mask_labels

# graph name -> knn_graph parameters
GRAPHS = {
    "k=50, power": {"n_neighbors": 50, "kernel": "power", "gamma": 3.0, "lift": 0.0},
    "k=10, power": {"n_neighbors": 10, "kernel": "power", "gamma": 3.0, "lift": 0.0},
    "k=10, self-tuning": {"n_neighbors": 10, "kernel": "self_tuning", "lift": 0.0},
    "k=10, self-tuning, lift=0.5": {"n_neighbors": 10, "kernel": "self_tuning", "lift": 0.5},
}
_PAPER_BASE = {"laplacian": "combinatorial", "class_mass_normalization": False}
_DEFAULT = "k=10, self-tuning"

_HN_OLD = {"beta": 0.3, "dissimilarity_loss": "mixed", "temperature": 16.0}

# (label, graph, estimator factory, negatives: None, 'oracle', 'features'
# (the mining reads the rows as they are) or 'own' (the estimator as a user
# fits it, on the features: its own graph is the one named, and its mining
# reads the lifted rows))
STEPS = [
    ("LP, paper configuration (eq. 16, k=50, gamma=3)", "k=50, power",
     lambda: MixedLabelPropagation.paper(), None),
    ("+ class-mass normalisation only", "k=50, power",
     lambda: MixedLabelPropagation.paper(class_mass_normalization=True), None),
    ("+ k=10 (instead of CMN)", "k=10, power",
     lambda: MixedLabelPropagation.paper(n_neighbors=10), None),
    ("+ self-tuning kernel", _DEFAULT,
     lambda: MixedLabelPropagation(mu=1 / 99, **_PAPER_BASE), None),
    ("+ normalised Laplacian (Zhou)", _DEFAULT,
     lambda: MixedLabelPropagation(mu=1 / 99, class_mass_normalization=False), None),
    ("+ class-mass normalisation", _DEFAULT,
     lambda: MixedLabelPropagation(mu=1 / 99), None),
    ("+ mu='auto'", _DEFAULT,
     lambda: MixedLabelPropagation(), None),
    ("+ lift=0.5 = MixedLabelPropagation()", "k=10, self-tuning, lift=0.5",
     lambda: MixedLabelPropagation(), None),
    ("edge-removal mining (eqs. 18-22, scale-free, mixed loss, beta=0.3)", _DEFAULT,
     lambda: HardNegativeLP("hard", **_HN_OLD), None),
    ("agreement cut, propagation view only, 1 round", _DEFAULT,
     lambda: HardNegativeLP("agreement", n_rounds=1), None),
    ("agreement cut, propagation view only, 3 rounds", _DEFAULT,
     lambda: HardNegativeLP("agreement", n_rounds=3), None),
    ("two views (sum), 1 round", _DEFAULT,
     lambda: HardNegativeLP(n_rounds=1, view_combination="sum"), "features"),
    ("two views (sum), 3 rounds, repulsion (mixed loss, beta=0.3)", _DEFAULT,
     lambda: HardNegativeLP(dissimilarity_loss="mixed", beta=0.3, n_rounds=3,
                            view_combination="sum"), "features"),
    ("two views (sum), 3 rounds, cut", _DEFAULT,
     lambda: HardNegativeLP(n_rounds=3, view_combination="sum"), "features"),
    ("two views (sum), 2 rounds, cut", _DEFAULT,
     lambda: HardNegativeLP(view_combination="sum"), "features"),
    ("two views (product), 2 rounds, cut", _DEFAULT,
     lambda: HardNegativeLP(), "features"),
    ("two views (product), 2 rounds, cut, lift=0.5 = HardNegativeLP()",
     "k=10, self-tuning, lift=0.5", lambda: HardNegativeLP(), "own"),
    ("oracle negatives, MixedLabelPropagation() (beta=1)", _DEFAULT,
     lambda: MixedLabelPropagation(), "oracle"),
]


class _ViewOnPrecomputed:
    """Fits an estimator on a precomputed graph while its mining reads the
    features, so that every row of the table shares one graph."""

    def __init__(self, est, X):
        self.est, self.X = est, X

    def fit(self, A, y):
        from sklearn_mixedlp import _label_propagation as lp

        original = lp._Mining.features
        X = self.X

        def features(mining):
            mining._data = (X, None)
            return original(mining)

        lp._Mining.features = features
        try:
            self.est.fit(A, y)
        finally:
            lp._Mining.features = original
        return self.est


def oracle_pairs(A, y):
    W = (A + A.T).tocoo()
    keep = (W.row < W.col) & (y[W.row] != y[W.col])
    return np.column_stack([W.row[keep], W.col[keep]])


def run(datasets, seeds, n_labeled, writer, log, steps=None):
    """Every step of STEPS (or those labelled in ``steps``) on every draw."""
    chosen = [s for s in STEPS if steps is None or s[0] in steps]
    for name in datasets:
        X, y = load(name)
        graphs = {g: knn_graph(X, **params) for g, params in GRAPHS.items()}
        log(f"{name}: graphs built")
        for seed in seeds:
            y_train = mask_labels(y, n_labeled, random_state=seed)
            unlabeled = y_train == -1
            for label, graph, make, extra in chosen:
                A = graphs[graph]
                est = make()
                if extra != "own":
                    est.set_params(knn_backend="precomputed")
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if extra == "own":
                        est.fit(X, y_train)
                    elif extra == "oracle":
                        est.fit(A, y_train, negatives=oracle_pairs(A, y))
                    elif extra == "features":
                        est = _ViewOnPrecomputed(est, X).fit(A, y_train)
                    else:
                        est.fit(A, y_train)
                seconds = time.perf_counter() - start
                accuracy = float(np.mean(est.transduction_[unlabeled] == y[unlabeled]))
                writer.writerow([name, seed, label, accuracy, seconds])
            log(f"  {name} seed {seed} done")


def report(path, datasets, seeds, n_labeled, out):
    rows = list(csv.DictReader(open(path, newline="")))
    header = ["Configuration", *datasets]
    body = []
    for label, *_ in STEPS:
        cells = [label]
        for d in datasets:
            acc = [float(r["accuracy"]) for r in rows if r["dataset"] == d and r["step"] == label]
            cells.append(fmt(*mean_ci(acc)))
        body.append(cells)
    text = "\n".join(
        [
            (
                f"Accuracy on the unlabeled rows, {n_labeled} labels per class, "
                f"{len(seeds)} draws (seeds {', '.join(map(str, seeds))}), mean ± 95% "
                "confidence interval. Each of the first eight rows adds one change to the "
                "row above (the second row instead adds class-mass normalisation to the "
                "paper configuration alone); the next rows are negatives on the base of "
                "the seventh row (the cosine graph, ``lift=0``), and the last but one on "
                "that of the eighth (``MixedLabelPropagation()``). Produced by "
                "``python benchmarks/levers.py``."
            ),
            "",
            rst_table(header, body),
            "",
        ]
    )
    (out / "levers.rst").write_text(text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--n-labeled", type=int, default=5)
    parser.add_argument("--output-dir", type=Path, default=Path("doc/benchmarks"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--steps", nargs="+", metavar="LABEL",
        help="run only the steps with these labels and replace their rows in an "
        "existing levers.csv (the other rows are kept)",
    )
    args = parser.parse_args(argv)
    labels = [s[0] for s in STEPS]
    if args.steps and set(args.steps) - set(labels):
        parser.error(f"unknown steps {sorted(set(args.steps) - set(labels))}; known: {labels}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "levers.csv"
    if not args.report_only:
        log = elapsed_log()
        kept = []
        if args.steps and path.exists():
            with open(path, newline="") as fh:
                kept = [
                    r for r in list(csv.reader(fh))[1:]
                    if r[2] not in args.steps or r[0] not in args.datasets
                ]
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["dataset", "seed", "step", "accuracy", "seconds"])
            writer.writerows(kept)
            run(args.datasets, args.seeds, args.n_labeled, writer, log, args.steps)
    print(report(path, args.datasets, args.seeds, args.n_labeled, args.output_dir))


if __name__ == "__main__":
    main()
