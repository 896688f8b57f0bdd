"""Weak scaling of ``fit_distributed`` on a local Dask cluster.

For each worker count (``--workers``, default 1 and 2) the script fits
``MixedLabelPropagation(n_neighbors=10)`` and ``HardNegativeLP(n_neighbors=10)``
(``--runs``) with
:func:`sklearn_mixedlp.distributed.fit_distributed` on
``make_sphere_mixture`` (``--classes`` classes, 32 dimensions, float32)
with ``--rows-per-worker`` rows per worker (default 25,000: up to 50,000
rows both fits search exactly, faiss's flat index, so they build the same
graph), one shard per worker, on a
``LocalCluster(n_workers=w, threads_per_worker=1, processes=True)``, and
the single-machine ``MixedLabelPropagation.fit`` on the same rows (all the
machine's cores), and records per stage the wall time, the CG iterations,
the halo (rows of other shards that a shard's graph rows name), and the
agreement of the two fits (largest difference of ``label_distributions_``,
share of equal ``transduction_``).

The rows are in data order (random classes: the halo is about every
shard's neighbours) or, with ``--order cluster``, sorted by class (a stand
in for rows sharded by cluster).

Run::

    python benchmarks/distributed_scaling.py --output-dir doc/benchmarks

It writes ``distributed_scaling.csv`` and ``distributed_scaling.rst`` (the
table) to ``--output-dir``.
"""

import argparse
import csv
import os
import time
import warnings
from pathlib import Path

import numpy as np

FIELDS = (
    "estimator", "workers", "order", "n_samples", "fit", "validation", "neighbors", "graph",
    "label_propagation", "total", "n_iter", "seconds_per_iter", "halo_rows",
    "max_abs_diff", "same_transduction",
)


def run(estimator, n_workers, rows_per_worker, n_classes, order, seed):
    import dask.array as da
    import distributed

    from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
    from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels
    from sklearn_mixedlp.distributed import fit_distributed

    n = n_workers * rows_per_worker
    X, y = make_sphere_mixture(n, n_classes=n_classes, n_features=32, random_state=seed)
    X = X.astype(np.float32)
    if order == "cluster":
        perm = np.argsort(y, kind="stable")
        X, y = X[perm], y[perm]
    y_train = mask_labels(y, 10, random_state=seed)
    params = dict(n_neighbors=10, tol=1e-6, random_state=seed)
    Est = HardNegativeLP if estimator == "HardNegativeLP" else MixedLabelPropagation
    stage_names = ["neighbors", "graph", "label_propagation"]
    if Est is HardNegativeLP:
        stage_names += ["mining", "mixed_solve"]

    start = time.perf_counter()
    local = Est(knn_backend="faiss", **params).fit(X, y_train)
    local_total = time.perf_counter() - start
    rows = [dict(
        estimator=estimator, workers=0, order=order, n_samples=n, fit="one machine",
        total=local_total, n_iter=local.n_iter_,
        **{s: local.fit_stages_[s]["seconds"] for s in stage_names},
    )]
    solves = sum(local.fit_stages_[s]["seconds"] for s in stage_names[2:])
    rows[0]["seconds_per_iter"] = solves / max(local.n_iter_, 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True,
            dashboard_address=":0",
        ) as cluster, distributed.Client(cluster) as client:
            Xd = da.from_array(X, chunks=(rows_per_worker, -1)).persist()
            distributed.wait(Xd)
            start = time.perf_counter()
            est = fit_distributed(Est(**params), Xd, y_train, client=client)
            total = time.perf_counter() - start
    stages = {s: v["seconds"] for s, v in est.fit_stages_.items()}
    rows.append(dict(
        estimator=estimator, workers=n_workers, order=order, n_samples=n,
        fit="fit_distributed", total=total, n_iter=est.n_iter_,
        seconds_per_iter=sum(stages[s] for s in stage_names[2:]) / max(est.n_iter_, 1),
        halo_rows=int(est.halo_rows_.sum()),
        max_abs_diff=float(np.abs(est.label_distributions_ - local.label_distributions_).max()),
        same_transduction=float((est.transduction_ == local.transduction_).mean()),
        **{s: stages.get(s) for s in ("validation", *stage_names)},
    ))
    for r in rows:
        # the solves and the mining: the stages after the graph
        r["label_propagation"] = sum(float(r[s]) for s in stage_names[2:])
    return rows


def report(rows, path):
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - estimator",
        "     - fit",
        "     - workers",
        "     - rows",
        "     - order",
        "     - neighbours (s)",
        "     - graph (s)",
        "     - solves and mining (s, CG iterations)",
        "     - s / iteration",
        "     - total (s)",
        "     - halo rows",
        "     - agreement",
    ]
    for r in rows:
        dist = r["fit"] == "fit_distributed"
        agreement = (
            f"{100 * float(r['same_transduction']):.2f} % equal, max diff "
            f"{float(r['max_abs_diff']):.1e}" if dist else ""
        )
        halo = f"{int(r['halo_rows']):,}" if dist else ""
        lines += [
            f"   * - {r['estimator']}",
            f"     - {r['fit']}",
            f"     - {r['workers'] if dist else ''}",
            f"     - {int(r['n_samples']):,}",
            f"     - {r['order']}",
            f"     - {float(r['neighbors']):.1f}",
            f"     - {float(r['graph']):.1f}",
            f"     - {float(r['label_propagation']):.1f} ({r['n_iter']})",
            f"     - {float(r['seconds_per_iter']):.3f}",
            f"     - {float(r['total']):.1f}",
            f"     - {halo}",
            f"     - {agreement}",
        ]
    Path(path).write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows-per-worker", type=int, default=25_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--runs", nargs="+",
                        default=["lp:data", "lp:cluster", "hard:cluster"],
                        help="ESTIMATOR:ORDER pairs, ESTIMATOR lp or hard "
                        "(HardNegativeLP, two-view mining), ORDER data or cluster")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None)
    args = parser.parse_args()
    rows = []
    names = {"lp": "MixedLabelPropagation", "hard": "HardNegativeLP"}
    for spec in args.runs:
        estimator, order = spec.split(":")
        for w in args.workers:
            for r in run(names[estimator], w, args.rows_per_worker, args.classes,
                         order, args.seed):
                rows.append(r)
                print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()},
                      flush=True)
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "distributed_scaling.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, FIELDS)
            writer.writeheader()
            for r in rows:
                writer.writerow({k: r.get(k, "") for k in FIELDS})
        report(rows, out / "distributed_scaling.rst")
        load = os.getloadavg()[0]
        (out / "distributed_scaling_meta.txt").write_text(
            f"rows per worker {args.rows_per_worker}, {args.classes} classes, "
            f"{os.cpu_count()} cores, load average {load:.1f} at the end\n"
        )


if __name__ == "__main__":
    main()
