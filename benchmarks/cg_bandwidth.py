"""Block conjugate gradient against the memory bandwidth of the machine.

The label-propagation system ``A X = mu Y`` with ``A = (1 + mu) I - D^-1/2
W D^-1/2`` (``mu = 1/99``, eigenvalues in ``[mu, 2 + mu]``), ``C`` classes
and 5 labelled rows per class, on a symmetric kNN graph ``W = K + K^T``.
In the same run the script measures

(a) a STREAM-style copy (``numpy.copyto`` of a 256 MiB array, bytes read +
    written per second, best of several; one thread and all threads);
(b) the sparse x dense product ``A @ X`` (``X`` of shape N x C), with the
    rows as given and in reverse Cuthill-McKee order (what ``block_cg``
    solves in by default), for scipy on one thread and the solver's
    kernels (scipy on row chunks on threads; the compiled row-blocked
    kernel, numba, when installed; torch CSR), and Intel MKL's
    (``mkl_sparse_?_mm`` through sparse_dot_mkl) when installed: its achieved bytes per
    second counting the bytes that must move at least (values + 32-bit
    indices + indptr of ``A``, ``X`` read once, the output written once).
    Each stored entry of ``A`` reads a whole row of ``X`` (C values), so
    unless those rows come from cache the product moves about ``nnz * C *
    itemsize`` bytes: the "gather" column shows that rate. The order
    ``in-cache`` is the compiled kernel's floor: the same entries with
    every column index taken modulo 64, so that every row it gathers is
    in the core's cache (what the kernel costs when no gather misses);
(c) the time per CG iteration and the iteration count of
    :func:`sklearn_mixedlp._solvers.block_cg` for the scipy backend with
    its compiled kernels (``kernel='numba'``, row "numba") and without
    (``kernel='scipy'``, the reference they are tested against) and the
    torch-CPU backend, in float64 and float32, against the bound of one iteration at
    copy bandwidth: the product's minimum bytes plus the 9 passes over N x C
    blocks of the fused updates (X, R read + written, P and AP read; R, P
    read, P written), and the true residual of the solution.

Graphs (``--graph``):

``latent`` (default)
    ``C`` Gaussian clusters in an 8-dimensional latent space (centres drawn
    with standard deviation 2, unit noise), exact kNN with a k-d tree and the
    estimators' self-tuning weights: a geometric kNN graph (about 70 stored
    entries per row at k = 50, most neighbours in the same class), built in
    about a minute for 200k rows on 2 busy cores. Its spectrum makes CG
    slower than on the 64-dimensional sphere mixture (64 against 24
    iterations to 1e-6 at N = 20k).
``random``
    Each row picks its neighbours at random, 90% in its own class: an
    expander within each class, like the sphere mixture's graph for CG
    (about 20 iterations), with about 98 stored entries per row, built in
    O(N k): the one for 1M rows.
``sphere``
    The package's own pipeline,
    :func:`~sklearn_mixedlp.datasets.make_sphere_mixture` and
    :func:`~sklearn_mixedlp.knn_graph` (the estimators' search: exact up to
    a few hundred thousand rows, inverted lists beyond): the graph the
    synthetic ones imitate, about 1.5 minutes for 1M rows (k = 50).

Rows come in data order (classes shuffled), as the estimators see them;
``--order cluster`` sorts them by class, which shows what locality of the
``X`` rows gathered by the product is worth; ``--order cells`` puts them
in the order the estimators solve in (k-means cells of the features,
reverse Cuthill-McKee inside each; ``latent`` and ``sphere`` only).

Timings on a shared machine are noisy: every time is the median of
``--repeats`` runs, and the load average is printed. Run::

    python benchmarks/cg_bandwidth.py                   # N = 200k, ~10 min
    python benchmarks/cg_bandwidth.py --n-samples 1000000 --graph random
    python benchmarks/cg_bandwidth.py --reorder none    # rows as given
    python benchmarks/cg_bandwidth.py --n-samples 1000000 --graph sphere \\
        --order cells --reorder none               # the estimators' graph
"""

import argparse
import itertools
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from sklearn_mixedlp import _solvers
from sklearn_mixedlp._solvers import block_cg

MU = 1.0 / 99
# passes over N x C blocks in one iteration besides the product: step reads
# X, R, P, AP and writes X, R; direction reads R, P and writes P
UPDATE_PASSES = 9


def latent_graph(n, k, n_classes, rng, dim=8, spread=2.0):
    """kNN graph of Gaussian clusters in a ``dim``-dimensional latent space,
    self-tuning weights ``exp(-4 d^2 / d_k^2)``; returns ``(W, y)``."""
    from scipy.spatial import cKDTree

    centres = rng.normal(scale=spread, size=(n_classes, dim))
    y = rng.integers(0, n_classes, n)
    Z = centres[y] + rng.normal(size=(n, dim))
    dist, idx = cKDTree(Z).query(Z, k + 1, workers=-1)
    dist, idx = dist[:, 1:], idx[:, 1:]  # drop self
    w = np.exp(-4 * dist**2 / np.maximum(dist[:, -1:], 1e-12) ** 2)
    indptr = np.arange(0, n * k + 1, k)
    K = sp.csr_matrix((w.ravel(), idx.ravel(), indptr), shape=(n, n))
    return K, y, Z


def random_graph(n, k, n_classes, rng, p_cross=0.1):
    """Neighbours drawn at random, a fraction ``1 - p_cross`` in the row's
    own class; weights uniform in [0.1, 1.1]. Returns ``(K, y)``."""
    y = rng.integers(0, n_classes, n)
    by_class = np.argsort(y, kind="stable")
    starts = np.searchsorted(y[by_class], np.arange(n_classes + 1))
    own = np.repeat(y, k)
    size = starts[own + 1] - starts[own]
    cols = by_class[starts[own] + (rng.random(n * k) * size).astype(np.int64)]
    cross = rng.random(n * k) < p_cross
    cols[cross] = rng.integers(0, n, int(cross.sum()))
    self_loop = cols == np.repeat(np.arange(n), k)
    cols[self_loop] = (cols[self_loop] + 1) % n
    K = sp.csr_matrix(
        (rng.random(n * k) + 0.1, cols, np.arange(0, n * k + 1, k)), shape=(n, n)
    )
    return K, y, None


def sphere_graph(n, k, n_classes, rng):
    """The package's own pipeline (the estimators' search backend and
    weights) on the sphere mixture; returns ``(K, y, X)``."""
    from sklearn_mixedlp import knn_graph
    from sklearn_mixedlp.datasets import make_sphere_mixture

    X, y = make_sphere_mixture(n, n_classes=n_classes, random_state=rng)
    return knn_graph(X, k, random_state=0), y, X


GRAPHS = {"latent": latent_graph, "random": random_graph, "sphere": sphere_graph}


def propagation_system(K, y, n_classes, rng, order="data", n_labeled=5, X=None):
    """``A = (1 + mu) I - D^-1/2 W D^-1/2`` with ``W = K + K^T`` and ``B =
    mu Y`` for ``n_labeled`` random labelled rows per class, the rows in
    ``order`` (``'cells'``: the estimators' order, from the features
    ``X``)."""
    if order == "cluster":
        perm = np.argsort(y, kind="stable")
        K, y = K[perm][:, perm], y[perm]
    elif order == "cells":
        from sklearn_mixedlp._graph import locality_order

        perm = locality_order(X, (K + K.T).tocsr(), random_state=0)
        K, y = K[perm][:, perm], y[perm]
    W = (K + K.T).tocsr()
    W.setdiag(0)
    W.eliminate_zeros()
    W.sort_indices()
    degree = np.asarray(W.sum(axis=1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(degree))
    A = (sp.identity(len(y), format="csr") * (1 + MU) - scale @ W @ scale).tocsr()
    A.sort_indices()
    Y = np.zeros((len(y), n_classes))
    for c in range(n_classes):
        rows = np.flatnonzero(y == c)
        Y[rng.choice(rows, min(n_labeled, len(rows)), replace=False), c] = 1.0
    return A, MU * Y


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stream_copy(n_threads, repeats=10, n_bytes=256 * 2**20):
    """Best copy bandwidth in bytes/s (read + write), ``n_threads`` threads
    each copying a contiguous part."""
    src = np.ones(n_bytes // 8)
    dst = np.zeros_like(src)
    bounds = np.linspace(0, src.size, n_threads + 1).astype(int)
    parts = list(itertools.pairwise(bounds))
    with ThreadPoolExecutor(n_threads) as pool:

        def copy():
            list(pool.map(lambda p: np.copyto(dst[p[0]:p[1]], src[p[0]:p[1]]), parts))

        copy()
        best = min(median_time(copy, 1) for _ in range(repeats))
    return 2 * src.nbytes / best


def device_copy(device, repeats=10, n_bytes=1024 * 2**20):
    """Best copy bandwidth in bytes/s (read + write) of a torch device."""
    import torch

    src = torch.ones(n_bytes // 4, device=device)
    dst = torch.empty_like(src)

    def copy():
        dst.copy_(src)
        torch.cuda.synchronize(device)

    copy()
    return 2 * src.numel() * 4 / min(median_time(copy, 1) for _ in range(repeats))


def matrix_bytes(A, itemsize):
    """Values + 32-bit indices + indptr, as the backends store them."""
    return A.nnz * (itemsize + 4) + (A.shape[0] + 1) * 4


def products(A, n_cols, dtype, n_threads, compiled_only=False, device="cpu"):
    """name -> callable computing ``A @ X`` (into a preallocated block where
    the kernel allows): scipy as is, and the solver's kernels (with
    ``compiled_only``, the compiled one alone); on a CUDA ``device``, also
    torch's product there (the name ends in the device)."""
    X = np.random.default_rng(0).random((A.shape[0], n_cols)).astype(dtype)
    out = np.empty_like(X)
    A_typed = sp.csr_matrix(A, dtype=dtype)
    found = {}
    if device != "cpu" and not compiled_only:
        found.update(_device_product(A_typed, X, dtype, device))
    inv_diag = np.ones(A.shape[0])  # not read by the products
    if not compiled_only:
        found["scipy, 1 thread"] = lambda: A_typed @ X
    if hasattr(_solvers, "_ScipyProduct") and not compiled_only:
        blocks = _solvers._HostBlocks(inv_diag, n_cols, dtype, n_threads)
        chunked = _solvers._ScipyProduct(A_typed, dtype, blocks)
        found[f"scipy, {blocks.n_threads} threads"] = lambda: chunked(X, out)
    kernels = _compiled_kernels()
    if kernels is not None:
        cblocks = _solvers._HostBlocks(inv_diag, n_cols, dtype, n_threads, kernels)
        compiled = _solvers._CompiledProduct(A_typed, dtype, cblocks, kernels)
        compiled(X, out)  # compile (or load from numba's cache) outside the timing
        found[f"numba, {cblocks.n_threads} threads"] = lambda: compiled(X, out)
    if compiled_only:
        return found
    mkl = _mkl_product()
    if mkl is not None:
        found[f"mkl, {mkl[1]} threads"] = lambda: mkl[0](A_typed, X, out=out)
    if hasattr(_solvers, "_TorchProduct"):
        try:
            import torch
        except ImportError:
            return found
        tproduct = _solvers._TorchProduct(A_typed, dtype, "cpu")
        found[f"torch, {torch.get_num_threads()} threads"] = lambda: tproduct(X, out)
    return found


def _device_product(A, X, dtype, device):
    """``{'torch on cuda': callable}``: the torch backend's product on the
    device, synchronised so that its time is the kernel's."""
    import torch

    product = _solvers._TorchProduct(A, dtype, device)
    X_device = torch.from_numpy(X).to(device)
    out = torch.empty_like(X_device)

    def run():
        product(X_device, out)
        torch.cuda.synchronize(device)

    return {f"torch on {device}": run}


def _mkl_product():
    """``(dot_product_mkl, threads)`` from sparse_dot_mkl when it and Intel
    MKL are installed (``pip install mkl sparse_dot_mkl``), else None."""
    try:
        from sparse_dot_mkl import dot_product_mkl, mkl_get_max_threads
    except (ImportError, OSError):
        return None
    return dot_product_mkl, mkl_get_max_threads()


def _compiled_kernels():
    """The package's compiled (numba) kernels, or None (numba missing, or a
    version of the package without them)."""
    try:
        from sklearn_mixedlp import _kernels
    except ImportError:
        return None
    return _kernels.get()


def solver_kwargs(**kwargs):
    """The keywords this version of block_cg accepts (also runs the code
    from before n_threads and reorder existed)."""
    known = block_cg.__code__.co_varnames
    if kwargs.get("kernel") is None:
        kwargs.pop("kernel", None)  # the solver's default (torch has none)
    return {k: v for k, v in kwargs.items() if k in known}


def time_solver(A, B, solver, dtype, tol, n_threads, reorder, repeats, kernel=None,
                device="cpu"):
    """Setup time (median of ``repeats`` runs with ``max_iter=0``: type
    conversions, reordering, torch tensors), then one full solve; the time
    per iteration is (solve - setup) / iterations."""
    kwargs = solver_kwargs(
        solver=solver, device=device if solver == "torch" else None, dtype=dtype,
        n_threads=n_threads, reorder=reorder, kernel=kernel,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        def setup_only():
            block_cg(A, B, tol=1e-30, max_iter=0, **kwargs)

        setup_only()  # imports, first-touch allocations
        setup = median_time(setup_only, repeats)
    start, cpu = time.perf_counter(), time.process_time()
    result = block_cg(A, B, tol=tol, max_iter=1000, **kwargs)
    solve, cpu = time.perf_counter() - start, time.process_time() - cpu
    true = np.linalg.norm(B - A @ result.X, axis=0) / np.linalg.norm(B, axis=0)
    return {
        "setup": setup,
        "iter": (solve - setup) / max(result.n_iter, 1),
        "cpu_iter": cpu / max(result.n_iter, 1),
        "n_iter": result.n_iter,
        "solve": solve,
        "residual": float(true.max()),
    }


# rows of X that the 'in-cache' product gathers from (L1-resident)
_IN_CACHE_ROWS = 64


def report_products(A, C, args, bandwidth, device_bandwidth=None):
    """Table (b): each kernel on the rows as given and in RCM order."""
    n = A.shape[0]
    orders = {args.order: A}
    if hasattr(_solvers, "_locality_order"):
        perm = _solvers._locality_order(A, 1, "rcm")
        orders["rcm"] = A[perm][:, perm].tocsr()
    print(f"\nSparse x dense product A @ X (median of {args.repeats} runs); "
          "'x bound': time / (minimum bytes / copy bandwidth)")
    print(f"{'dtype':8} {'order':8} {'kernel':16} {'time s':>7} {'GB/s min':>9} "
          f"{'x bound':>8} {'GB/s gather':>12}")
    # the floor of the kernel itself: the same entries with every column
    # index taken modulo 64, so that every gathered row of X is in cache
    floor = A.copy()
    floor.indices = floor.indices % _IN_CACHE_ROWS
    floor.has_sorted_indices = False
    for name in args.dtypes:
        dtype = np.dtype(name).type
        item = np.dtype(dtype).itemsize
        min_bytes = matrix_bytes(A, item) + 2 * n * C * item
        gather_bytes = matrix_bytes(A, item) + (A.nnz + n) * C * item
        for order, M in [*orders.items(), ("in-cache", floor)]:
            found = products(M, C, dtype, args.threads,
                             compiled_only=order == "in-cache", device=args.device)
            for kernel, fn in found.items():
                fn()
                t = median_time(fn, args.repeats)
                # a device's product against the device's own bandwidth
                own = device_bandwidth if kernel.endswith(args.device) else bandwidth
                print(
                    f"{name:8} {order:8} {kernel:16} {t:7.3f} "
                    f"{min_bytes / t / 1e9:9.2f} {t / (min_bytes / own):8.1f} "
                    f"{gather_bytes / t / 1e9:12.2f}"
                )


def report_solver(A, B, args, bandwidth, device_bandwidth=None):
    """Table (c): block_cg per backend and precision."""
    n, C = B.shape
    reorder = None if args.reorder == "none" else args.reorder
    label = reorder if "reorder" in block_cg.__code__.co_varnames else "n/a"
    print(f"\nBlock CG to tol={args.tol:g}, reorder={label}; s/iter = (solve - "
          f"setup) / iters, setup the median of {args.repeats} runs; 'bound s' = "
          f"(matrix + {2 + UPDATE_PASSES} N x C passes) / copy bandwidth")
    print("'x gather': the same with the product reading one row of X per "
          "stored entry (nnz * C values) instead of X once")
    print(f"{'solver':10} {'dtype':8} {'iters':>5} {'s/iter':>7} {'cpu/iter':>8} "
          f"{'bound s':>8} {'x bound':>8} {'x gather':>8} {'setup s':>8} "
          f"{'solve s':>8} {'true res':>9}")
    runs = []
    for solver in args.solvers:
        if solver in ("scipy", "numba") and "kernel" in block_cg.__code__.co_varnames:
            # the compiled kernels, then (for 'scipy') the scipy reference
            # they are tested against
            if _compiled_kernels() is not None:
                runs.append(("numba", "scipy", "numba"))
            if solver == "scipy":
                runs.append(("scipy", "scipy", "scipy"))
        elif solver == "torch" and args.device != "cpu":
            runs.append((f"torch/{args.device}", solver, None))
        else:
            runs.append((solver, solver, None))
    for label, solver, kernel in runs:
        on_device = label.endswith(f"/{args.device}")
        own = device_bandwidth if on_device else bandwidth
        for name in args.dtypes:
            dtype = np.dtype(name).type
            item = np.dtype(dtype).itemsize
            passes = (2 + UPDATE_PASSES) * n * C * item
            bound = (matrix_bytes(A, item) + passes) / own
            gather = bound + (A.nnz - n) * C * item / own
            r = time_solver(A, B, solver, dtype, args.tol, args.threads, reorder,
                            args.repeats, kernel,
                            device=args.device if on_device else "cpu")
            print(
                f"{label:10} {name:8} {r['n_iter']:5d} {r['iter']:7.3f} "
                f"{r['cpu_iter']:8.3f} {bound:8.3f} {r['iter'] / bound:8.1f} "
                f"{r['iter'] / gather:8.1f} {r['setup']:8.2f} {r['solve']:8.1f} "
                f"{r['residual']:9.1e}"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--n-neighbors", type=int, default=50)
    parser.add_argument("--n-classes", type=int, default=100)
    parser.add_argument("--graph", choices=sorted(GRAPHS), default="latent")
    parser.add_argument("--order", choices=["data", "cluster", "cells"], default="data")
    parser.add_argument("--solvers", nargs="+", default=["scipy", "torch"],
                        choices=["scipy", "numba", "torch"],
                        help="'scipy': the compiled kernels and scipy's; "
                        "'numba': the compiled kernels alone")
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--reorder", choices=["auto", "rcm", "none"], default="auto",
                        help="block_cg's reorder (the default 'auto' reorders here)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-products", action="store_true",
                        help="skip (b), the products on their own")
    parser.add_argument("--device", default="cpu",
                        help="a torch CUDA device (e.g. 'cuda'): torch's product "
                        "and solver also run there, against its own copy bandwidth")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.order == "cells" and args.graph == "random":
        parser.error("--order cells needs a graph with features "
                     "(--graph latent or sphere)")
    rng = np.random.default_rng(args.seed)

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    start = time.perf_counter()
    K, y, X = GRAPHS[args.graph](args.n_samples, args.n_neighbors, args.n_classes, rng)
    A, B = propagation_system(K, y, args.n_classes, rng, args.order, X=X)
    del K, X
    n, C = B.shape
    print(
        f"{args.graph} graph, {args.order} order: N={n}, C={C}, "
        f"{A.nnz / n:.1f} stored entries per row (diagonal included), built in "
        f"{time.perf_counter() - start:.0f}s"
    )
    copy = {t: stream_copy(t) for t in sorted({1, args.threads})}
    bandwidth = max(copy.values())
    print("STREAM copy: " + ", ".join(
        f"{v / 1e9:.1f} GB/s ({t} thread(s))" for t, v in copy.items()
    ))

    device_bandwidth = None
    if args.device != "cpu":
        device_bandwidth = device_copy(args.device)
        print(f"{args.device} copy: {device_bandwidth / 1e9:.1f} GB/s")

    if not args.skip_products:
        report_products(A, C, args, bandwidth, device_bandwidth)

    report_solver(A, B, args, bandwidth, device_bandwidth)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
