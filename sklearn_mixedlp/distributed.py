"""Label propagation on a Dask cluster.

:func:`fit_distributed` fits a :class:`~sklearn_mixedlp.MixedLabelPropagation`
(plain label propagation, ``negatives=None``) on a feature matrix that lives
on the workers of a ``dask.distributed`` cluster, as a ``dask.array`` whose
chunks of rows are the shards: the kNN graph is built shard by shard with
faiss and the propagation is solved by a block conjugate gradient on
row-partitioned CSR blocks, the products on the workers and the small
per-column reductions on the client. The result is the single-machine fit
of the same estimator on the same rows (the same exact neighbours, the same
graph, the same equations; the solve agrees to its tolerance).

The data layout, the communication of each stage and of each iteration,
and what limits them are described in :ref:`distributed`. It needs the
``distributed`` extra (``pip install sklearn-mixedlp[distributed]``:
``dask[distributed]`` and ``faiss-cpu``).
"""

import operator
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import column_or_1d

from ._graph import NeighborIndex, _drop_self, clip_n_neighbors, knn_affinity
from ._graph import l2_normalize_quiet
from ._utils import entropy_confidence, fill_unlabeled, import_optional
from ._utils import normalize_distributions, unlabeled_mask

__all__ = ["fit_distributed"]


# -- per-shard functions (run on the workers) ---------------------------------


def _normalize_shard(X, offset):
    """The L2-normalised rows of a shard and its zero rows; NaN or
    infinite values are an error naming the first one's row."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; a shard has shape {X.shape}.")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be numeric; got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"X contains NaN or infinity: {int(bad.sum())} value(s) in rows "
            f"{offset} to {offset + X.shape[0] - 1}, the first at row "
            f"{offset + int(i)}, column {int(j)}."
        )
    return l2_normalize_quiet(X)


def _shard_index(V, k, random_state):
    return NeighborIndex("faiss", random_state=random_state, n_jobs=1).fit(V, k)


def _query(index, Q, k, offset):
    """The ``k`` best candidates of the rows ``Q`` in one shard's index,
    with global row numbers."""
    k = min(k, index.n_samples_)
    sim, idx = index.kneighbors(Q, k)
    return sim, idx + offset


def _merge(candidates, k, offset):
    """The ``k`` nearest rows (self excluded) of each row of a shard from
    the candidate lists of all shards: the best ``k + 1`` by decreasing
    similarity, ties by row number, then the row itself dropped."""
    sim = np.hstack([c[0] for c in candidates])
    idx = np.hstack([c[1] for c in candidates])
    order = np.lexsort((idx, -sim), axis=1)[:, : k + 1]
    sim = np.take_along_axis(sim, order, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    rows = offset + np.arange(sim.shape[0])
    return _drop_self(sim, idx, k, rows)


def _affinity(neighbours, zero, offset, kernel, gamma, n_samples):
    """The shard's rows of the directed affinities (see
    :func:`~sklearn_mixedlp._graph.knn_affinity`), all ``N`` columns."""
    sim, idx = neighbours
    rows = slice(offset, offset + sim.shape[0])
    sim = sim.copy()
    sim[zero[rows]] = 0.0
    return knn_affinity(
        sim, idx, gamma, n_samples, zero, kernel=kernel, zero_queries=zero[rows]
    )


def _columns(A, lo, hi):
    """The columns ``lo .. hi - 1`` of a shard's rows (sent to that shard)."""
    return sp.csr_matrix(A[:, lo:hi])


def _symmetric_rows(A, blocks, offset):
    """The shard's rows of ``W = A + A^T`` without the diagonal: its own
    affinity rows plus the transposed column blocks sent by every shard."""
    T = sp.hstack([B.T for B in blocks], format="csr")
    W = sp.csr_matrix(A + T)
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    W.data[W.indices == rows + offset] = 0.0
    W.eliminate_zeros()
    W.sort_indices()
    return W


class _Halo:
    """A shard's rows of ``W`` with their columns renumbered: the shard's
    own rows first (``0 .. n_s - 1``), then the rows of the other shards
    that they name, shard by shard (``needed[t]``: their local numbers in
    shard ``t``, sorted)."""

    def __init__(self, W, shard, offsets):
        n_rows = W.shape[0]
        cols = W.indices.astype(np.int64)
        owner = np.searchsorted(offsets, cols, side="right") - 1
        ext = np.empty_like(cols)
        self.needed = []
        start = n_rows
        for t in range(offsets.size - 1):
            mine = owner == t
            local = cols[mine] - offsets[t]
            if t == shard:
                ext[mine] = local
                self.needed.append(np.zeros(0, dtype=np.int64))
                continue
            needed = np.unique(local)
            ext[mine] = start + np.searchsorted(needed, local)
            self.needed.append(needed)
            start += needed.size
        self.W = sp.csr_matrix((W.data, ext, W.indptr), shape=(n_rows, start))
        self.W.sort_indices()
        self.degree = np.asarray(W.sum(axis=1)).ravel()

    def halo_sizes(self):
        return np.array([n.size for n in self.needed])


def _needed(halo, t):
    return halo.needed[t]


def _take(values, rows):
    return values[rows]


def _extended(own, halos):
    """A shard's rows of a vector or block followed by its halo rows."""
    return np.concatenate([own, *halos]) if halos else own


def _system(halo, scale, scale_halos, diagonal, laplacian):
    """The shard's rows of the system: ``(1 + mu) I - D^-1/2 W D^-1/2``
    (normalised) or ``D + U - W`` (combinatorial), on the renumbered
    columns; and the inverse of its diagonal."""
    W = halo.W
    n_rows = W.shape[0]
    if laplacian == "normalized":
        s = _extended(scale, scale_halos)
        data = W.data * s[W.indices]
        data *= -np.repeat(scale, np.diff(W.indptr))
    else:
        data = -W.data
    off = sp.csr_matrix((data, W.indices, W.indptr), shape=W.shape)
    diag = sp.csr_matrix(
        (diagonal, (np.arange(n_rows), np.arange(n_rows))), shape=W.shape
    )
    A = sp.csr_matrix(off + diag)
    A.sort_indices()
    return A, 1.0 / diagonal


def _cg_start(B, inv_diag):
    """``E = 0``, ``R = B``, ``Z = D^-1 R``, ``P = Z`` and the sums
    ``(r^T r, r^T z)`` per column."""
    R = np.array(B, dtype=np.float64)
    Z = R * inv_diag[:, None]
    return (np.zeros_like(R), R, Z, Z.copy()), _sums(R, Z)


def _sums(R, Z):
    return np.stack([(R * R).sum(axis=0), (R * Z).sum(axis=0)])


# The state of a shard's conjugate gradient is the pair ``((E, R, Z, P),
# sums)`` returned by each step: the next task reads the blocks, the client
# gathers only the sums (a small task picks them out).


def _direction_rows(stepped, beta, rows):
    """Rows ``rows`` of the new direction ``Z + beta P`` (a halo)."""
    (_, _, Z, P), _ = stepped
    return Z[rows] + beta * P[rows]


def _product(A, stepped, beta, halos):
    """The new direction ``P = Z + beta P`` of the shard's rows, ``A P`` and
    the column sums ``p^T A p``."""
    (E, R, Z, P), _ = stepped
    P = Z + beta * P
    AP = A @ _extended(P, halos)
    return (E, R, Z, P, AP), (P * AP).sum(axis=0)


def _step(product, alpha, inv_diag):
    """``E += alpha P``, ``R -= alpha A P``, ``Z = D^-1 R`` and the new sums
    ``(r^T r, r^T z)``."""
    (E, R, Z, P, AP), _ = product
    E = E + alpha * P
    R = R - alpha * AP
    Z = R * inv_diag[:, None]
    return (E, R, Z, P), _sums(R, Z)


def _sums_of(result):
    return result[1]


def _solution(stepped):
    return stepped[0][0]


# -- the client side -----------------------------------------------------------


class _Cluster:
    """Futures pinned to the worker that holds each shard."""

    def __init__(self, client, workers):
        self.client, self.workers = client, workers

    def on(self, shard, fn, *args):
        return self.client.submit(
            fn, *args, workers=[self.workers[shard]], allow_other_workers=False,
            pure=False,
        )

    def split(self, shard, future, n):
        return [self.on(shard, operator.getitem, future, i) for i in range(n)]

    def gather(self, futures):
        return self.client.gather(futures)


def _check_estimator(estimator):
    from ._label_propagation import MixedLabelPropagation

    if type(estimator) is not MixedLabelPropagation:
        raise TypeError(
            "fit_distributed fits a MixedLabelPropagation (plain label "
            f"propagation); got {type(estimator).__name__}. The mining of "
            "HardNegativeLP is not distributed."
        )
    estimator._validate_params()
    if estimator.negatives is not None:
        raise ValueError(
            "fit_distributed supports MixedLabelPropagation(negatives=None) "
            f"only; got negatives={estimator.negatives!r}."
        )
    if estimator.knn_backend not in ("auto", "faiss"):
        raise ValueError(
            "fit_distributed searches the neighbours with faiss on each "
            f"shard; got knn_backend={estimator.knn_backend!r} (use 'auto' or "
            "'faiss')."
        )


def _as_dask_array(X):
    import_optional("dask", "fit_distributed")
    import dask.array as da
    if not isinstance(X, da.Array):
        raise TypeError(
            "X must be a dask.array (its chunks of rows are the shards); got "
            f"{type(X).__name__}. Use dask.array.from_array(X, chunks=(rows, -1))."
        )
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x features); got shape {X.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def fit_distributed(estimator, X, y, *, client=None):
    """Fit a label propagation on a Dask cluster, one shard per chunk of rows.

    The kNN graph is built per shard with faiss (every shard's rows are
    searched in every shard's index and the candidates merged: the exact
    neighbours), and the propagation ``A F = B`` is solved by a block
    conjugate gradient on row-partitioned CSR blocks: the products on the
    workers, the per-column reductions on the client (see
    :ref:`distributed` for the data layout and the communication). The result
    is the single-machine ``estimator.fit(X, y)`` on the same rows, to the
    solver's tolerance.

    Parameters
    ----------
    estimator : MixedLabelPropagation
        An estimator with ``negatives=None`` (plain label propagation) and
        ``knn_backend`` ``'auto'`` or ``'faiss'``; its other parameters
        (``n_neighbors``, ``kernel``, ``gamma``, ``laplacian``, ``mu``,
        ``source``, ``class_mass_normalization``, ``tol``, ``max_iter``,
        ``random_state``, ``verbose``) apply as in ``fit``.
    X : dask.array of shape (n_samples, n_features)
        The features; each chunk of rows is a shard, kept on one worker.
        Rows of one cluster in the same shard make the exchanges smaller.
    y : array-like of shape (n_samples,)
        Labels, ``-1`` (or None, NaN) for unlabeled rows, on the client.
    client : distributed.Client, default=None
        The cluster; None uses the current client
        (``distributed.get_client()``).

    Returns
    -------
    estimator : MixedLabelPropagation
        The estimator, fitted: ``classes_``, ``label_distributions_``,
        ``transduction_``, ``confidence_``, ``n_iter_``, ``mu_``,
        ``n_neighbors_``, ``knn_backend_`` and ``fit_stages_`` (wall time
        per stage) as after ``fit``, plus ``n_shards_`` and ``halo_rows_``
        (the halo of each shard). ``affinity_`` is not gathered and
        ``predict`` on new rows is not available: the training rows stay
        on the cluster.

    Raises
    ------
    TypeError
        If ``estimator`` is not a :class:`MixedLabelPropagation` or ``X`` is
        not a dask array.
    ValueError
        If ``X`` has NaN or infinite values (before the neighbour search),
        ``y`` does not have one label per row, or no row is labeled.

    Examples
    --------
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import MixedLabelPropagation
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> from sklearn_mixedlp.distributed import fit_distributed
    >>> X, y = load_digits(return_X_y=True)
    >>> with LocalCluster(n_workers=2, threads_per_worker=1,
    ...                   processes=False) as cluster, Client(cluster) as client:
    ...     est = fit_distributed(MixedLabelPropagation(n_neighbors=10),
    ...                           da.from_array(X, chunks=(900, -1)),
    ...                           mask_labels(y, 5, random_state=0))
    >>> est.n_shards_
    2
    """
    _check_estimator(estimator)
    X = _as_dask_array(X)
    distributed = import_optional("distributed", "fit_distributed")
    client = distributed.get_client() if client is None else client
    est = estimator
    start = last = time.perf_counter()
    stages = {}

    def lap(stage, message, n_iter=0):
        nonlocal last
        now = time.perf_counter()
        stages[stage] = {"seconds": now - last, "n_iter": int(n_iter)}
        if est.verbose:
            print(
                f"[fit_distributed] {stage}: {message} ({now - last:.2f}s, "
                f"{now - start:.2f}s in all)"
            )
        last = now

    # labels, on the client
    n_samples, n_features = X.shape
    y = column_or_1d(fill_unlabeled(y), warn=True)
    if y.shape[0] != n_samples:
        raise ValueError(
            f"y must have one label per row of X ({n_samples}); got {y.shape[0]}."
        )
    unlabeled = unlabeled_mask(y)
    est.classes_, y_index = est._encode_labels(y, unlabeled)
    labeled = ~unlabeled
    n_classes = est.classes_.size
    est.mu_ = est.mu
    if est.mu == "auto":
        est.mu_ = max(1 / 99, np.count_nonzero(labeled) / n_samples)
    mu = est.mu_
    k = clip_n_neighbors(est.n_neighbors, n_samples)

    # shards: one chunk of rows each, normalised where they are
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    n_shards = offsets.size - 1
    parts = client.compute(list(X.to_delayed().ravel()))
    distributed.wait(parts)
    who = client.who_has(parts)
    workers = [sorted(who[p.key])[0] for p in parts]
    cl = _Cluster(client, workers)
    normal = [cl.on(s, _normalize_shard, parts[s], int(offsets[s])) for s in range(n_shards)]
    V, zero_parts = zip(*(cl.split(s, normal[s], 2) for s in range(n_shards)))
    zero = np.concatenate(cl.gather(list(zero_parts)))  # raises on NaN
    del parts, normal
    lap("validation", f"{n_shards} shards on {len(set(workers))} workers")

    # neighbours: every shard searched in every shard's index, merged
    index = [cl.on(s, _shard_index, V[s], k, est.random_state) for s in range(n_shards)]
    neighbours = []
    for s in range(n_shards):
        candidates = [
            cl.on(t, _query, index[t], V[s], k + 1, int(offsets[t]))
            for t in range(n_shards)
        ]
        neighbours.append(cl.on(s, _merge, candidates, k, int(offsets[s])))
    distributed.wait(neighbours)
    del index, V
    est.n_neighbors_, est.knn_backend_ = k, "faiss"
    lap("neighbors", f"{k} neighbours with 'faiss' on {n_shards} shards")

    # the graph: affinities, then W = A + A^T by one exchange of columns
    zero_f = client.scatter(zero, broadcast=True)
    A = [
        cl.on(s, _affinity, neighbours[s], zero_f, int(offsets[s]), est.kernel,
              est.gamma, n_samples)
        for s in range(n_shards)
    ]
    columns = [
        [cl.on(s, _columns, A[s], int(offsets[t]), int(offsets[t + 1]))
         for t in range(n_shards)]
        for s in range(n_shards)
    ]
    W = [
        cl.on(t, _symmetric_rows, A[t], [columns[s][t] for s in range(n_shards)],
              int(offsets[t]))
        for t in range(n_shards)
    ]
    halo = [cl.on(s, _Halo, W[s], s, offsets) for s in range(n_shards)]
    needed = [[cl.on(s, _needed, halo[s], t) for t in range(n_shards)]
              for s in range(n_shards)]
    degree = cl.gather([cl.on(s, getattr, halo[s], "degree") for s in range(n_shards)])
    est.halo_rows_ = np.array(
        cl.gather([cl.on(s, operator.methodcaller("halo_sizes"), halo[s])
                   for s in range(n_shards)])
    ).sum(axis=1)
    del neighbours, A, columns, W
    degree = np.concatenate(degree)
    lap("graph", f"halo of {int(est.halo_rows_.sum())} rows")

    # the system, row block by row block
    if est.laplacian == "normalized":
        scale = np.zeros_like(degree)
        np.divide(1.0, np.sqrt(degree), out=scale, where=degree > 0)
        diagonal = np.full_like(degree, 1.0 + mu)
    else:
        scale = np.ones_like(degree)
        # isolated unlabeled rows: the ridge of the single-machine system
        # (the other rows without a labeled component stay exactly 0 in a
        # solve started from 0, as there)
        ridge = 1e-6 * max(degree.mean(), 1.0) * ((degree == 0) & unlabeled)
        diagonal = degree + mu * labeled + ridge
    B = np.zeros((n_samples, n_classes))
    rows = np.flatnonzero(labeled)
    B[rows, y_index[labeled]] = mu
    if est.source == "poisson":
        B[rows] -= B[rows].mean(axis=0)
    systems = []
    for s in range(n_shards):
        own = slice(offsets[s], offsets[s + 1])
        scale_halos = [
            cl.on(t, _take, scale[offsets[t]:offsets[t + 1]], needed[s][t])
            for t in range(n_shards) if t != s
        ]
        systems.append(cl.on(s, _system, halo[s], scale[own], scale_halos,
                             diagonal[own], est.laplacian))
    A_parts, inv_diag = zip(*(cl.split(s, systems[s], 2) for s in range(n_shards)))
    del systems, halo

    # block conjugate gradient (float64, Jacobi, columns frozen at tol)
    b_norm = np.linalg.norm(B, axis=0)
    b_norm = b_norm + (b_norm == 0)
    target = est.tol * b_norm
    state = [
        cl.on(s, _cg_start, B[offsets[s]:offsets[s + 1]], inv_diag[s])
        for s in range(n_shards)
    ]
    rr, rz = np.sum(cl.gather([cl.on(s, _sums_of, state[s])
                               for s in range(n_shards)]), axis=0)
    beta = np.zeros(n_classes)
    norm = np.sqrt(rr)
    n_iter = 0
    while True:
        active = norm > target
        if not active.any() or n_iter >= est.max_iter:
            break
        # 1. the halo rows of the new direction, worker to worker
        dirs = [
            [cl.on(t, _direction_rows, state[t], beta, needed[s][t])
             for t in range(n_shards) if t != s]
            for s in range(n_shards)
        ]
        # 2. A P on every shard; the step sizes on the client
        state = [cl.on(s, _product, A_parts[s], state[s], beta, dirs[s])
                 for s in range(n_shards)]
        pAp = np.sum(cl.gather([cl.on(s, _sums_of, state[s])
                                for s in range(n_shards)]), axis=0)
        alpha = np.where(active, rz / np.where(active, pAp, 1.0), 0.0)
        # 3. the updates; the convergence check on the client
        state = [cl.on(s, _step, state[s], alpha, inv_diag[s]) for s in range(n_shards)]
        rr, rz_new = np.sum(cl.gather([cl.on(s, _sums_of, state[s])
                                       for s in range(n_shards)]), axis=0)
        beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
        rz = rz_new
        norm = np.sqrt(rr)
        n_iter += 1
    residuals = norm / b_norm
    G = np.concatenate(cl.gather([cl.on(s, _solution, state[s])
                                 for s in range(n_shards)]))
    del state, A_parts, inv_diag
    if not (residuals <= est.tol).all():
        warnings.warn(
            f"Conjugate gradient stopped after max_iter={est.max_iter} "
            f"iterations with relative residual {residuals.max():.2e} > "
            f"tol={est.tol:g} in {int((residuals > est.tol).sum())} of "
            f"{residuals.size} column(s). Increase max_iter or tol.",
            ConvergenceWarning,
        )
    est.n_iter_ = n_iter
    lap("label_propagation", f"{n_iter} iterations", n_iter)

    _set_outputs(est, G, y_index, labeled, n_features)
    est.n_shards_ = n_shards
    lap("output", "distributions, confidences")
    est.fit_stages_ = stages
    return est


def _set_outputs(est, G, y_index, labeled, n_features):
    """The fitted attributes of the transduction, as at the end of ``fit``."""
    from ._label_propagation import _class_mass_normalize, _warn_changed_labels

    n_classes = est.classes_.size
    # rows whose solution is exactly 0: no labeled row reaches them
    if est.class_mass_normalization:
        G = _class_mass_normalize(G, y_index[labeled], n_classes)
    present = np.bincount(y_index[labeled], minlength=n_classes) > 0
    est._uniform = present / present.sum()
    est.label_distributions_, empty = normalize_distributions(G, est._uniform)
    est.transduction_ = est.classes_[est.label_distributions_.argmax(axis=1)]
    est.confidence_ = entropy_confidence(est.label_distributions_)
    est.confidence_[empty] = 0.0
    est.n_features_in_ = n_features
    est._distributed_fit = True
    _warn_changed_labels(est, y_index, labeled)
