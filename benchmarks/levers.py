"""What each robustness lever does: from the paper's configuration to the
defaults, one change at a time.

Accuracy on the unlabeled rows at 5 labels per class, over a fixed list of
label draws (mean and 95% confidence interval), on the datasets of
``benchmarks/accuracy.py`` (same loading and preprocessing). Each row adds
one change to the row above it, from ``MixedLabelPropagation.paper()``
(eq. 16 on the k = 50, gamma = 3 graph) to ``MixedLabelPropagation()`` and
``HardNegativeLP()``; then the mining variants on the default base, and
oracle negatives (every graph edge joining two true classes), which bound
what negatives can bring when they carry information. Graphs are built once
per dataset with :func:`sklearn_mixedlp.knn_graph`.

Run (about 20 minutes on 2 cores)::

    python benchmarks/levers.py --output-dir doc/benchmarks
"""

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, SEEDS, fmt, load, mean_ci, rst_table
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import mask_labels

# graph name -> knn_graph parameters
GRAPHS = {
    "k=50, power": {"n_neighbors": 50, "kernel": "power", "gamma": 3.0},
    "k=10, power": {"n_neighbors": 10, "kernel": "power", "gamma": 3.0},
    "k=10, self-tuning": {"n_neighbors": 10, "kernel": "self_tuning"},
}
_PAPER_BASE = {"laplacian": "combinatorial", "class_mass_normalization": False}
_DEFAULT = "k=10, self-tuning"

# (label, graph, estimator factory, oracle negatives?)
STEPS = [
    ("LP, paper configuration (eq. 16, k=50, gamma=3)", "k=50, power",
     lambda: MixedLabelPropagation.paper(), False),
    ("+ class-mass normalisation only", "k=50, power",
     lambda: MixedLabelPropagation.paper(class_mass_normalization=True), False),
    ("+ k=10 (instead of CMN)", "k=10, power",
     lambda: MixedLabelPropagation.paper(n_neighbors=10), False),
    ("+ self-tuning kernel", _DEFAULT,
     lambda: MixedLabelPropagation(**_PAPER_BASE), False),
    ("+ normalised Laplacian (Zhou)", _DEFAULT,
     lambda: MixedLabelPropagation(class_mass_normalization=False), False),
    ("+ class-mass normalisation = MixedLabelPropagation()", _DEFAULT,
     lambda: MixedLabelPropagation(), False),
    ("mined, paper mining (lambda=4 raw, beta=1)", _DEFAULT,
     lambda: HardNegativeLP(scale_free=False, temperature=4.0, beta=1.0), False),
    ("mined, scale-free lambda=16, beta=1", _DEFAULT,
     lambda: HardNegativeLP(beta=1.0), False),
    ("mined, scale-free lambda=16, beta=0.3 = HardNegativeLP()", _DEFAULT,
     lambda: HardNegativeLP(), False),
    ("Control, scale-free, beta=0.3", _DEFAULT,
     lambda: HardNegativeLP("control"), False),
    ("oracle negatives, MixedLabelPropagation() (beta=1)", _DEFAULT,
     lambda: MixedLabelPropagation(), True),
]


def oracle_pairs(A, y):
    W = (A + A.T).tocoo()
    keep = (W.row < W.col) & (y[W.row] != y[W.col])
    return np.column_stack([W.row[keep], W.col[keep]])


def run(datasets, seeds, n_labeled, writer, log):
    for name in datasets:
        X, y = load(name)
        graphs = {g: knn_graph(X, **params) for g, params in GRAPHS.items()}
        log(f"{name}: graphs built")
        for seed in seeds:
            y_train = mask_labels(y, n_labeled, random_state=seed)
            unlabeled = y_train == -1
            for label, graph, make, oracle in STEPS:
                A = graphs[graph]
                est = make().set_params(knn_backend="precomputed")
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if oracle:
                        est.fit(A, y_train, negatives=oracle_pairs(A, y))
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
                "confidence interval. Each of the first six rows adds one change to the "
                "row above (the second row instead adds class-mass normalisation to the "
                "paper configuration alone). Produced by ``python benchmarks/levers.py``."
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
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "levers.csv"
    if not args.report_only:
        start = time.perf_counter()

        def log(message):
            print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)

        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["dataset", "seed", "step", "accuracy", "seconds"])
            run(args.datasets, args.seeds, args.n_labeled, writer, log)
    print(report(path, args.datasets, args.seeds, args.n_labeled, args.output_dir))


if __name__ == "__main__":
    main()
