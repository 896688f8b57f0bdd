"""Time and recall of the self-kNN search at scale: the faiss IVF index the
estimators use, and the variants that could make it cheaper.

On the sphere mixture (``make_sphere_mixture``, 64 dimensions, rows
L2-normalised, float32), each variant builds its index on all rows and
searches every row for its ``k`` nearest other rows (queries in the order
of their nearest inverted list, as the estimators search), then checks
recall@k against exact search on 1,000 sampled rows
(:func:`sklearn_mixedlp.metrics.neighbor_recall`):

- ``ivf``: ``IndexIVFFlat`` with ``nlist = LISTS_PER_SQRT_N * sqrt(N)``
  and ``nprobe`` (the estimators' index: 2 and 20);
- ``ivf-hnsw``: the same lists behind an HNSW coarse quantizer instead of
  the flat one;
- ``ivf-sq8``: 8-bit scalar-quantised lists (a quarter of the bytes);
- ``big-batch``: the ``ivf`` index searched list by list with matrix
  products (``faiss.contrib.big_batch_search``);
- ``lists``: the ``ivf`` index searched list by list by the estimators'
  compiled kernels (``sklearn_mixedlp._graph._ivf_search``: a matrix
  product per list and bucket of queries, per-query heaps in numba).

The default variants include ``ivf:2:20`` and ``lists:2:20``: the same
index searched both ways, in the same run.

Run::

    python benchmarks/knn_search.py --n-samples 300000
    python benchmarks/knn_search.py --n-samples 1000000 --variants ivf:2:20 ivf:2:12

Each variant is ``kind:lists_per_sqrt_n:nprobe``.
"""

import argparse
import contextlib
import io
import time

import numpy as np

from sklearn_mixedlp._graph import FAISS_IVF_KMEANS_ITER, FAISS_IVF_TRAIN_PER_LIST
from sklearn_mixedlp.datasets import make_sphere_mixture
from sklearn_mixedlp.metrics import neighbor_recall

DEFAULT_VARIANTS = (
    "ivf:2:20",
    "ivf:2:12",
    "ivf:4:20",
    "ivf-hnsw:2:20",
    "ivf-sq8:2:20",
    "big-batch:2:20",
    "lists:2:20",
)


def build(faiss, V, kind, lists_per_sqrt_n, nprobe, seed):
    n, d = V.shape
    nlist = max(1, int(round(lists_per_sqrt_n * np.sqrt(n))))
    if kind == "ivf-hnsw":
        quantizer = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        quantizer.hnsw.efSearch = max(64, 2 * nprobe)
    else:
        quantizer = faiss.IndexFlatIP(d)
    if kind == "ivf-sq8":
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
    else:
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    if kind == "ivf-hnsw":
        index.clustering_index = faiss.IndexFlatIP(d)
    # as the estimators train their index (sklearn_mixedlp._graph._train_ivf)
    index.cp.spherical = True
    index.cp.niter = FAISS_IVF_KMEANS_ITER
    index.cp.max_points_per_centroid = FAISS_IVF_TRAIN_PER_LIST
    index.cp.seed = seed
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, min(n, FAISS_IVF_TRAIN_PER_LIST * nlist), replace=False))
    index.train(V[sample])
    index.add(V)
    index.nprobe = nprobe
    return index


def search(faiss, index, V, k, kind):
    n = V.shape[0]
    if kind == "lists":
        from sklearn_mixedlp import _kernels
        from sklearn_mixedlp._graph import _ivf_search, _n_threads, _probe_lists

        kernels = _kernels.get()
        if kernels is None:
            raise SystemExit("the 'lists' variant needs numba")
        probes = _probe_lists(index, V)
        _, idx = _ivf_search(faiss, index, V, probes, k, True, _n_threads(None), kernels)
        return idx
    if kind == "big-batch":
        from faiss.contrib.big_batch_search import big_batch_search

        # its progress report prints even at verbose=0
        with contextlib.redirect_stdout(io.StringIO()):
            _, idx = big_batch_search(index, V, k + 1, threaded=1)
    else:
        _, cell = index.quantizer.search(V, 1)
        order = np.argsort(cell.ravel(), kind="stable")
        idx = np.empty((n, k + 1), dtype=np.int64)
        for start in range(0, n, 2**16):
            rows = order[start : start + 2**16]
            idx[rows] = index.search(V[rows], k + 1)[1]
    # drop each row itself (first when found; else the last neighbour)
    own = idx == np.arange(n)[:, None]
    keep = ~own
    keep[~own.any(axis=1), k] = False
    return idx[keep].reshape(n, k)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=300_000)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import faiss

    X, _ = make_sphere_mixture(args.n_samples, random_state=args.seed)
    V = np.ascontiguousarray(X / np.linalg.norm(X, axis=1, keepdims=True), dtype=np.float32)
    print(
        f"sphere mixture, N = {args.n_samples:,}, k = {args.n_neighbors}, "
        f"{faiss.omp_get_max_threads()} threads"
    )
    print(f"{'variant':16s} {'nlist':>6s} {'build s':>8s} {'search s':>9s} {'recall@k':>9s}")
    for variant in args.variants:
        kind, per_sqrt, nprobe = variant.split(":")
        start = time.perf_counter()
        index = build(faiss, V, kind, float(per_sqrt), int(nprobe), args.seed)
        built = time.perf_counter()
        idx = search(faiss, index, V, args.n_neighbors, kind)
        done = time.perf_counter()
        recall = float(neighbor_recall(V, idx, k=args.n_neighbors, random_state=0))
        print(
            f"{variant:16s} {index.nlist:6d} {built - start:8.1f} {done - built:9.1f} "
            f"{recall:9.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
