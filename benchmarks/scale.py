"""Where the time and the memory of ``HardNegativeLP.fit`` go, from 10k to 1M rows.

For each data set and size the script runs, each in a fresh process (so
that its peak resident memory is its own):

- ``HardNegativeLP(n_neighbors=k)`` end to end, with the wall time, the
  conjugate-gradient iterations and the peak resident memory (RSS, sampled
  every 10 ms, of the whole process: data, libraries and all) of each
  stage of ``fit`` (``fit_stages_``: neighbour search, graph assembly,
  first LP solve, negative mining, mixed LP solve, output) and of an
  inductive ``predict`` on 10,000 new rows; the transductive accuracy on
  the unlabeled rows and the inductive accuracy on the new rows; the
  recall@k of the neighbour search against exact search on 1,000 sampled
  rows;
- the peers, end to end with their own graph construction, at the same
  ``k``: scikit-learn's ``LabelSpreading(kernel='knn')`` and
  GraphLearning's Laplace learning on its self-tuning ``k``-neighbour graph
  (exact Euclidean search with scikit-learn), each killed after
  ``--time-limit`` seconds (a peer that did not finish at one size is not
  run at the larger ones).

Data (``--sizes``): ``make_sphere_mixture`` (100 classes, 64 dimensions,
concentration 30, float32) with ``N + 10,000`` rows, the last 10,000 held
out for ``predict``; and (``--fashion``) all 70,000 Fashion-MNIST images,
pixels / 255 reduced to 50 principal components (as in
``benchmarks/accuracy.py``), with the 10,000 test images mirrored left-right
as the new rows. 10 labels per class (``--labels-per-class``), seed 0.

Run::

    python benchmarks/scale.py --output-dir doc/benchmarks   # ~40 min
    python benchmarks/scale.py --sizes 10000 100000 --no-fashion
    python benchmarks/scale.py --report-only --output-dir doc/benchmarks

It writes ``scale.csv``, ``scale.rst`` (the tables) and ``scale.png``
(log-log time against N) to ``--output-dir``, and prints the targets: the
1M-row fit against 90 seconds and 5 GiB, the 300k -> 1M slope against
linear, and the speed-up over ``LabelSpreading`` at 70k. With
``--compare-kernels`` (the default) each size is also fitted without the
compiled kernels (``SKLEARN_MIXEDLP_NUMBA=0``: numpy and scipy, the
reference they are tested against), in its own process too.
"""

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

N_NEW = 10_000
STAGES = (
    "neighbors",
    "graph",
    "label_propagation",
    "mining",
    "mixed_solve",
    "output",
    "predict",
)
PEERS = ("LabelSpreading", "GraphLearning Laplace")
OURS = "HardNegativeLP"
# the same fit without the compiled kernels (SKLEARN_MIXEDLP_NUMBA=0): numpy
# and scipy, the reference the kernels are tested against
OURS_SCIPY = "HardNegativeLP (numpy/scipy)"
FIELDS = (
    "dataset",
    "n_samples",
    "method",
    "stage",
    "seconds",
    "n_iter",
    "peak_rss_gib",
    "accuracy",
    "new_accuracy",
    "recall",
    "status",
)


# -- worker: one fit in its own process --------------------------------------
class RSSSampler(threading.Thread):
    """Samples the resident memory of this process every ``interval`` s."""

    def __init__(self, interval=0.01):
        super().__init__(daemon=True)
        self.interval, self.samples = interval, []
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.stop = threading.Event()

    def rss(self):
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), self.rss()))
            time.sleep(self.interval)

    def peak(self, start, stop):
        """Peak RSS in GiB over ``[start, stop]`` (and the samples at both
        ends)."""
        inside = [r for t, r in self.samples if start - self.interval <= t <= stop]
        return max(inside, default=self.rss()) / 2**30


def load(dataset, n_samples, seed):
    """``(X, y, X_new, y_new)``."""
    if dataset == "fashion_mnist":
        from sklearn.decomposition import PCA

        from sklearn_mixedlp.datasets import load_fashion_mnist

        X, y = load_fashion_mnist(return_X_y=True)
        pca = PCA(n_components=50, random_state=0).fit(X)
        test = X[-N_NEW:].reshape(-1, 28, 28)[:, :, ::-1].reshape(N_NEW, -1)
        return (
            pca.transform(X).astype(np.float32),
            y,
            pca.transform(test).astype(np.float32),
            y[-N_NEW:],
        )
    from sklearn_mixedlp.datasets import make_sphere_mixture

    X, y = make_sphere_mixture(n_samples + N_NEW, random_state=seed)
    return X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]


def run_ours(X, y_train, k, solver, seed, sampler):
    from sklearn_mixedlp import HardNegativeLP

    est = HardNegativeLP(n_neighbors=k, solver=solver, random_state=seed)
    start = time.perf_counter()
    est.fit(X, y_train)
    stop = time.perf_counter()
    rows, t = [], start
    for stage, info in est.fit_stages_.items():
        rows.append(
            {
                "stage": stage,
                "seconds": info["seconds"],
                "n_iter": info["n_iter"],
                "peak_rss_gib": sampler.peak(t, t + info["seconds"]),
            }
        )
        t += info["seconds"]
    rows.append(
        {
            "stage": "fit",
            "seconds": stop - start,
            "n_iter": est.n_iter_,
            "peak_rss_gib": sampler.peak(start, stop),
        }
    )
    return est, rows


def knn_recall(est, X, k, seed, n_queries=1000):
    """Recall@k of the fitted neighbour index on sampled training rows."""
    from sklearn_mixedlp._graph import NeighborIndex, _drop_self, l2_normalize

    V, _ = l2_normalize(X)
    rows = np.random.default_rng(seed).choice(X.shape[0], n_queries, replace=False)
    if est._index is None or est.knn_backend_ == "pynndescent":
        return float("nan")  # pynndescent's graph is not kept for queries
    _, found = _drop_self(*est._index.kneighbors(V[rows], k + 1), k, rows)
    _, exact = _drop_self(*NeighborIndex("exact").fit(V, k).kneighbors(V[rows], k + 1), k, rows)
    hits = (exact[:, :, None] == found[:, None, :]).any(2).sum()
    return float(hits / exact.size)


def run_peer(method, X, y_train, k):
    if method == "LabelSpreading":
        from sklearn.semi_supervised import LabelSpreading

        return LabelSpreading(kernel="knn", n_neighbors=k).fit(X, y_train).transduction_
    import graphlearning as gl
    from sklearn.neighbors import NearestNeighbors

    # GraphLearning counts the row itself among its k neighbours.
    dist, ind = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    with np.errstate(invalid="ignore"):
        W = gl.weightmatrix.knn(None, k + 1, knn_data=(ind, dist))
    W.data = np.nan_to_num(W.data, nan=1.0)
    train = np.flatnonzero(y_train != -1)
    return gl.ssl.laplace(W).fit_predict(train, y_train[train])


def worker(job):
    import warnings

    from sklearn_mixedlp.datasets import mask_labels

    warnings.simplefilter("ignore")  # peers' ConvergenceWarnings
    X, y, X_new, y_new = load(job["dataset"], job["n_samples"], job["seed"])
    y_train = mask_labels(y, job["labels_per_class"], random_state=job["seed"])
    unlabeled = y_train == -1
    sampler = RSSSampler()
    sampler.start()
    result = {"recall": float("nan"), "new_accuracy": float("nan")}
    if job["method"] in (OURS, OURS_SCIPY):
        est, rows = run_ours(X, y_train, job["k"], job["solver"], job["seed"], sampler)
        transduction = est.transduction_
        start = time.perf_counter()
        predicted = est.predict(X_new)
        stop = time.perf_counter()
        rows.insert(
            -1,
            {
                "stage": "predict",
                "seconds": stop - start,
                "n_iter": 0,
                "peak_rss_gib": sampler.peak(start, stop),
            },
        )
        result["new_accuracy"] = float((predicted == y_new).mean())
        result["recall"] = knn_recall(est, X, job["k"], job["seed"])
        result["backend"] = est.knn_backend_
    else:
        start = time.perf_counter()
        transduction = run_peer(job["method"], X, y_train, job["k"])
        stop = time.perf_counter()
        rows = [
            {
                "stage": "fit",
                "seconds": stop - start,
                "n_iter": 0,
                "peak_rss_gib": sampler.peak(start, stop),
            }
        ]
    sampler.stop.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rows[-1]["peak_rss_gib"] = max(rows[-1]["peak_rss_gib"], peak)
    result["accuracy"] = float((transduction[unlabeled] == y[unlabeled]).mean())
    result["rows"] = rows
    print("RESULT " + json.dumps(result))


# -- driver --------------------------------------------------------------------
def run_job(job, time_limit):
    """Run one job in a subprocess; returns its result dict, or None past
    ``time_limit`` seconds or on failure (with the reason printed)."""
    command = [sys.executable, __file__, "--worker", json.dumps(job)]
    env = dict(os.environ)
    if job["method"] == OURS_SCIPY:
        env["SKLEARN_MIXEDLP_NUMBA"] = "0"
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=time_limit, env=env
        )
    except subprocess.TimeoutExpired:
        return None, f"did not finish in {time_limit:.0f} s"
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if out.returncode or not lines:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        return None, "failed: " + " | ".join(tail)
    return json.loads(lines[-1][len("RESULT "):]), "ok"


def result_rows(job, result, status):
    base = {
        "dataset": job["dataset"],
        "n_samples": job["n_samples"],
        "method": job["method"],
    }
    if result is None:
        return [{**base, "stage": "fit", "status": status}]
    extra = {
        "accuracy": result["accuracy"],
        "new_accuracy": result["new_accuracy"],
        "recall": result["recall"],
        "status": status,
    }
    return [{**base, **row, **extra} for row in result["rows"]]


def fmt(value, spec):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if np.isnan(value) else format(value, spec)


def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def fit_row(rows, dataset, n, method):
    for r in rows:
        if (r["dataset"], int(r["n_samples"]), r["method"], r["stage"]) == (
            dataset, n, method, "fit"
        ):
            return r
    return None


def runs(rows):
    seen = []
    for r in rows:
        key = (r["dataset"], int(r["n_samples"]))
        if key not in seen:
            seen.append(key)
    return seen


def rst_table(header, body):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
    line = "  ".join("=" * w for w in widths)
    out = [line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(out + [line])


def label(dataset, n):
    name = "Fashion-MNIST" if dataset == "fashion_mnist" else "sphere"
    return f"{name} {n:,}"


def report(rows, output_dir, meta):
    """Print the tables and targets; write the RST, CSV and plot."""
    keys = runs(rows)
    stage_header = ["N", *STAGES, "fit", "CG iters", "peak RSS GiB"]
    stage_body = []
    for (dataset, n), method in ((key, m) for key in keys for m in (OURS, OURS_SCIPY)):
        ours = {
            r["stage"]: r
            for r in rows
            if (r["dataset"], int(r["n_samples"]), r["method"]) == (dataset, n, method)
        }
        if "fit" not in ours or ours["fit"]["status"] != "ok":
            continue
        cells = [label(dataset, n) + (", numpy/scipy" if method == OURS_SCIPY else "")]
        for stage in (*STAGES, "fit"):
            r = ours.get(stage)
            cells.append(
                "" if r is None else
                f"{fmt(r['seconds'], '.1f')} ({fmt(r['peak_rss_gib'], '.2f')})"
            )
        iters = [ours[s]["n_iter"] for s in ("label_propagation", "mixed_solve") if s in ours]
        cells += ["+".join(iters), fmt(ours["fit"]["peak_rss_gib"], ".2f")]
        stage_body.append(cells)

    peer_header = [
        "N", "backend recall@k", "HardNegativeLP s", "accuracy", "new rows",
        "numpy/scipy path s (ratio)",
        *[f"{p} s (ratio)" for p in PEERS], *[f"{p} accuracy" for p in PEERS],
    ]
    peer_body = []
    for dataset, n in keys:
        ours = fit_row(rows, dataset, n, OURS)
        if ours is None or ours["status"] != "ok":
            continue
        cells = [
            label(dataset, n),
            fmt(ours["recall"], ".3f"),
            fmt(ours["seconds"], ".1f"),
            fmt(ours["accuracy"], ".3f"),
            fmt(ours["new_accuracy"], ".3f"),
        ]
        plain = fit_row(rows, dataset, n, OURS_SCIPY)
        if plain is None or plain["status"] != "ok":
            cells.append("not run" if plain is None else plain["status"])
        else:
            ratio = float(plain["seconds"]) / float(ours["seconds"])
            cells.append(
                f"{fmt(plain['seconds'], '.1f')} ({ratio:.2f}x, accuracy "
                f"{fmt(plain['accuracy'], '.3f')})"
            )
        accs = []
        for peer in PEERS:
            r = fit_row(rows, dataset, n, peer)
            if r is None:
                cells.append("not run")
                accs.append("")
            elif r["status"] != "ok":
                cells.append(r["status"])
                accs.append("")
            else:
                ratio = float(r["seconds"]) / float(ours["seconds"])
                cells.append(f"{fmt(r['seconds'], '.1f')} ({ratio:.1f}x)")
                accs.append(fmt(r["accuracy"], ".3f"))
        peer_body.append(cells + accs)

    targets = []
    sphere = {n: fit_row(rows, d, n, OURS) for d, n in keys if d == "sphere"}
    big = sphere.get(1_000_000)
    if big is not None and big["status"] == "ok":
        targets.append(
            f"1M rows: fit {float(big['seconds']):.1f} s (target <= 90 at k = 50, "
            f"<= 45 at k = 10), peak RSS {float(big['peak_rss_gib']):.2f} GiB "
            "(target <= 5)"
        )
    mid = sphere.get(300_000)
    if big is not None and mid is not None and "ok" == big["status"] == mid["status"]:
        slope = (float(big["seconds"]) / float(mid["seconds"])) / (1_000_000 / 300_000)
        targets.append(
            f"300k -> 1M: time x{float(big['seconds']) / float(mid['seconds']):.2f} "
            f"for x3.33 rows, {slope:.2f}x linear (target <= 1.2)"
        )
    for dataset, n in keys:
        ours, ls = fit_row(rows, dataset, n, OURS), fit_row(rows, dataset, n, PEERS[0])
        if dataset == "fashion_mnist" and ours and ls and "ok" == ours["status"] == ls["status"]:
            targets.append(
                f"{label(dataset, n)}: HardNegativeLP {float(ours['seconds']):.1f} s "
                f"vs LabelSpreading(kernel='knn') {float(ls['seconds']):.1f} s, "
                f"{float(ls['seconds']) / float(ours['seconds']):.1f}x faster "
                f"(accuracy {float(ours['accuracy']):.3f} vs {float(ls['accuracy']):.3f})"
            )

    stage_rst = rst_table(stage_header, stage_body)
    peer_rst = rst_table(peer_header, peer_body)
    print("\nStages of HardNegativeLP.fit: seconds (peak RSS GiB)")
    print(stage_rst)
    print("\nEnd to end against the peers (ratio = peer time / HardNegativeLP time)")
    print(peer_rst)
    print("\nTargets")
    for line in targets:
        print("  " + line)
    if output_dir is None:
        return
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    text = [
        meta,
        "",
        "Stages of ``HardNegativeLP.fit`` and an inductive ``predict`` of "
        f"{N_NEW:,} new rows: seconds (peak RSS of the process in GiB). "
        "'CG iters': first solve + mixed solve.",
        "",
        stage_rst,
        "",
        "End to end against the peers, each with its own graph at the same "
        "k; ratio = peer time / HardNegativeLP time. Accuracy on the "
        "unlabeled rows; 'new rows': inductive ``predict``.",
        "",
        peer_rst,
        "",
        "Targets:",
        "",
        *[f"- {line}" for line in targets],
        "",
    ]
    (output_dir / "scale.rst").write_text("\n".join(text))
    plot(rows, keys, output_dir / "scale.png")


def plot(rows, keys, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    sizes = [n for d, n in keys if d == "sphere"]

    def series(method, stage):
        pts = []
        for n in sizes:
            for r in rows:
                if (r["dataset"], int(r["n_samples"]), r["method"], r["stage"]) == (
                    "sphere", n, method, stage
                ) and r["status"] == "ok":
                    pts.append((n, float(r["seconds"])))
        return np.array(pts).reshape(-1, 2)

    pts = series(OURS, "fit")
    ax.plot(*pts.T, "o-", color="C3", lw=2.5, label="HardNegativeLP.fit")
    for i, stage in enumerate(STAGES):
        s = series(OURS, stage)
        if len(s):
            ax.plot(*s.T, ".--", color=f"C{i % 3 if i < 3 else i + 1}", lw=1, label=stage)
    for peer, marker in zip(PEERS, "sD"):
        s = series(peer, "fit")
        if len(s):
            ax.plot(*s.T, marker + "-", color="0.4", label=peer)
    if len(pts):
        # anchored at the largest size: the slope at scale, where fixed
        # costs no longer count
        n0, t0 = pts[-1]
        grid = np.array([min(sizes), max(sizes)])
        ax.plot(grid, t0 * grid / n0, ":", color="k", label="linear in N")
    style = {OURS: ("*", "C3", 14), PEERS[0]: ("s", "0.4", 9), PEERS[1]: ("D", "0.4", 8)}
    for r in rows:
        if r["dataset"] == "fashion_mnist" and r["stage"] == "fit" and r["status"] == "ok":
            marker, color, size = style[r["method"]]
            ax.plot(
                int(r["n_samples"]), float(r["seconds"]), marker, ms=size,
                color=color, mfc="none" if r["method"] != OURS else color,
                label=f"Fashion-MNIST 70k: {r['method']}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows N (sphere mixture: 100 classes, 64 dimensions, k = 50)")
    ax.set_ylabel("wall time (s), 2 cores")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 300_000, 1_000_000])
    parser.add_argument("--fashion", action=argparse.BooleanOptionalAction, default=True,
                        help="also run all 70,000 Fashion-MNIST rows")
    parser.add_argument("--n-neighbors", type=int, default=50)
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--solver", default="auto", choices=["auto", "scipy", "torch"])
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS)
    parser.add_argument("--compare-kernels", action=argparse.BooleanOptionalAction,
                        default=True,
                        help="also fit without the compiled kernels (numpy/scipy)")
    parser.add_argument("--time-limit", type=float, default=600.0,
                        help="seconds before a peer's run is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from OUTPUT_DIR/scale.csv")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    meta = (
        f"k = {args.n_neighbors}, {args.labels_per_class} labels per class, "
        f"seed {args.seed}, solver={args.solver!r}, {os.cpu_count()} cores"
    )
    if args.report_only:
        meta_file = Path(args.output_dir) / "scale_meta.txt"
        if meta_file.exists():
            meta = meta_file.read_text().strip()
        report(read_csv(Path(args.output_dir) / "scale.csv"), args.output_dir, meta)
        return
    jobs = []
    sizes = sorted(args.sizes)
    for n in sizes[:1]:
        jobs.append(("sphere", n))
    if args.fashion:
        jobs.append(("fashion_mnist", 70_000))
    jobs += [("sphere", n) for n in sizes[1:]]
    rows, failed = [], set()
    load_avg = os.getloadavg()[0]
    for dataset, n in jobs:
        ours = (OURS, OURS_SCIPY) if args.compare_kernels else (OURS,)
        for method in (*ours, *args.peers):
            job = {
                "dataset": dataset,
                "n_samples": n,
                "method": method,
                "k": args.n_neighbors,
                "labels_per_class": args.labels_per_class,
                "solver": args.solver,
                "seed": args.seed,
            }
            if method in failed and dataset == "sphere":
                rows += result_rows(job, None, "not run (failed at a smaller N)")
                continue
            limit = None if method in ours else args.time_limit
            start = time.perf_counter()
            result, status = run_job(job, limit)
            if result is None and method not in ours:
                failed.add(method)
            print(
                f"{label(dataset, n)} {method}: {status}, "
                f"{time.perf_counter() - start:.0f} s with data generation",
                flush=True,
            )
            rows += result_rows(job, result, status)
    meta += f", load average {load_avg:.1f} at the start"
    if args.output_dir:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "scale_meta.txt").write_text(meta + "\n")
        with open(Path(args.output_dir) / "scale.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        rows = read_csv(Path(args.output_dir) / "scale.csv")
    else:
        rows = [{k: str(v) for k, v in r.items()} for r in rows]
        for r in rows:
            for f in FIELDS:
                r.setdefault(f, "")
    report(rows, args.output_dir, meta)


if __name__ == "__main__":
    main()
