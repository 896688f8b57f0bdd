"""How many neighbours: the defaults on graphs of 10 to 50 neighbours, and
``n_neighbors='auto'``.

``MixedLabelPropagation()`` and ``HardNegativeLP()`` with every parameter
at its default except ``n_neighbors`` (10, the default; 20, 30, 50; and
``'auto'``, the square root of the rows per label within [10, 50]), at 1
and 5 labels per class, on the datasets of ``benchmarks/accuracy.py`` (same
loading and preprocessing; Fashion-MNIST on 5 draws, the others on 10).
Each estimator is fitted on the features, as a user fits it (its own
graph of ``k`` neighbours, the defaults' lifted self-tuning graph, and its
mining's second view on the lifted rows). Reported: the mean accuracy on
the unlabeled rows and the paired difference to ``k = 10`` on the same
draws, in points, with its 95% interval.

Run (about 20 minutes on 2 cores)::

    python benchmarks/neighbors_sweep.py --output-dir doc/benchmarks
"""

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, SEEDS, load, mean_ci, record, rst_table, seeds_of
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp._graph import auto_neighbors
from sklearn_mixedlp.datasets import mask_labels

SETTINGS = ("10", "20", "30", "50", "auto")
RATES = (1, 5)
METHODS = {
    "MixedLabelPropagation()": MixedLabelPropagation,
    "HardNegativeLP()": HardNegativeLP,
}


def run(datasets, seeds, writer, log):
    for name in datasets:
        X, y = load(name)
        n_classes = np.unique(y).size
        for rate in RATES:
            for setting in SETTINGS:
                k = auto_neighbors(
                    setting if setting == "auto" else int(setting), y.size,
                    rate * n_classes,
                )
                for seed in seeds_of(name, seeds):
                    y_train = mask_labels(y, rate, random_state=seed)
                    unlabeled = y_train == -1
                    for method, Est in METHODS.items():
                        est = Est(n_neighbors=k, random_state=0)
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            est.fit(X, y_train)
                        seconds = time.perf_counter() - start
                        accuracy = np.mean(est.transduction_[unlabeled] == y[unlabeled])
                        writer.writerow(
                            [name, rate, seed, setting, k, method, accuracy, seconds]
                        )
            log(f"{name}: {rate} per class done")


def report(path, datasets, out):
    rows = list(csv.DictReader(open(path, newline="")))
    index = {
        (r["dataset"], int(r["rate"]), r["setting"], r["method"], int(r["seed"])):
        (float(r["accuracy"]), int(r["k"]))
        for r in rows
    }
    parts = [
        "Accuracy on the unlabeled rows (mean over the draws) and, in brackets, "
        "the paired difference to ``n_neighbors=10`` on the same draws in points "
        "(95% interval); for ``'auto'``, the ``k`` it chose. Produced by "
        "``python benchmarks/neighbors_sweep.py``.",
        "",
    ]
    for rate in RATES:
        parts += [f"**{rate} label{'s' if rate > 1 else ''} per class**", ""]
        header = ["Method", "n_neighbors", *datasets, "mean"]
        body = []
        for method in METHODS:
            for setting in SETTINGS:
                cells, deltas = [method, setting], []
                for name in datasets:
                    seeds = sorted(
                        s for (d, r, st, m, s) in index
                        if (d, r, st, m) == (name, rate, setting, method)
                    )
                    if not seeds:
                        cells.append("--")
                        continue
                    acc = [index[name, rate, setting, method, s][0] for s in seeds]
                    base = [index[name, rate, "10", method, s][0] for s in seeds]
                    diff = 100 * (np.array(acc) - np.array(base))
                    deltas.append(diff.mean())
                    cell = f"{100 * np.mean(acc):.1f}"
                    if setting != "10":
                        mean, half = mean_ci(diff)
                        cell += f" ({mean:+.1f} ± {half:.1f})"
                    if setting == "auto":
                        cell += f" k={index[name, rate, setting, method, seeds[0]][1]}"
                    cells.append(cell)
                cells.append(f"{np.mean(deltas):+.2f}" if setting != "10" else "")
                body.append(cells)
        parts += [rst_table(header, body), ""]
    parts.append(
        "The last column is the mean over the sets of the paired differences "
        "to ``n_neighbors=10``."
    )
    text = "\n".join(parts) + "\n"
    (out / "neighbors_sweep.rst").write_text(text)
    return text


def plot(path, datasets, out, method="HardNegativeLP()"):
    """Paired difference to ``k = 10`` against ``k``, one panel per label
    rate, one line per dataset (95% intervals shaded); 'auto' marked with
    a star at the ``k`` it chose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(open(path, newline="")) if r["method"] == method]
    fig, axes = plt.subplots(1, len(RATES), figsize=(6.4 * len(RATES), 4.4), sharey=True)
    palette = plt.get_cmap("tab10").colors
    for ax, rate in zip(axes, RATES):
        for n, name in enumerate(datasets):
            acc = {
                (r["setting"], int(r["seed"])): (float(r["accuracy"]), int(r["k"]))
                for r in rows if r["dataset"] == name and int(r["rate"]) == rate
            }
            seeds = sorted({s for (st, s) in acc if st == "10"})
            if not seeds:
                continue

            def diff(setting):
                return 100 * np.array(
                    [acc[setting, s][0] - acc["10", s][0] for s in seeds]
                )

            ks = [int(st) for st in SETTINGS if st != "auto"]
            stats = [mean_ci(diff(str(k))) if k != 10 else (0.0, 0.0) for k in ks]
            means, halves = np.array(stats).T
            color = palette[n % len(palette)]
            ax.plot(ks, means, "-o", color=color, label=name, markersize=3)
            ax.fill_between(ks, means - halves, means + halves, color=color, alpha=0.08)
            ax.plot(acc["auto", seeds[0]][1], diff("auto").mean(), "*", color=color,
                    markersize=11, markeredgecolor="black", markeredgewidth=0.5)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks([int(st) for st in SETTINGS if st != "auto"])
        ax.set_xlabel("n_neighbors (star: 'auto', at the k it chose)")
        ax.set_title(f"{method}, {rate} label{'s' if rate > 1 else ''} per class")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy minus n_neighbors=10 (points)")
    axes[-1].legend(fontsize=7, loc="lower left", ncol=3)
    fig.tight_layout()
    fig.savefig(out / "neighbors_sweep.png", dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--output-dir", type=Path, default=Path("doc/benchmarks"))
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "neighbors_sweep.csv"
    if not args.report_only:
        header = ["dataset", "rate", "seed", "setting", "k", "method", "accuracy", "seconds"]
        record(path, header, run, args.datasets, args.seeds)
    print(report(path, args.datasets, args.output_dir))
    plot(path, args.datasets, args.output_dir)


if __name__ == "__main__":
    main()
