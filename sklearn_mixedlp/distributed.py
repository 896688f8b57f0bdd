"""Label propagation on a Dask cluster.

:func:`fit_distributed` fits a :class:`~sklearn_mixedlp.HardNegativeLP`
(its two-view or agreement mining) or a
:class:`~sklearn_mixedlp.MixedLabelPropagation` (plain label propagation)
on a feature matrix that lives on the workers of a ``dask.distributed``
cluster, as a ``dask.array`` whose chunks of rows are the shards: the kNN
graph is built shard by shard with faiss, the propagation is solved by a
block conjugate gradient on row-partitioned CSR blocks (the products on the
workers, the small per-column reductions on the client), and the mining
computes its negative weights on each shard's edges, its linear view from
statistics reduced on the client. The result is the single-machine fit
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

from ._graph import (
    NeighborIndex,
    _drop_self,
    auto_neighbors,
    clip_n_neighbors,
    knn_affinity,
)
from ._graph import l2_normalize_quiet, lift_height, lift_rows, row_norm_sums
from ._label_propagation import _class_mass_factors, _cut_values
from ._negatives import agreement_data, linear_view_width, unit_rows
from ._utils import entropy_confidence, fill_unlabeled, import_optional
from ._utils import normalize_distributions, unlabeled_mask

__all__ = ["fit_distributed"]


# -- per-shard functions (run on the workers) ---------------------------------


def _checked_shard(X, offset):
    """A shard as a float array; NaN or infinite values are an error naming
    the first one's row."""
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
    return X


def _normalize_shard(X, height=0.0):
    """The L2-normalised rows of a checked shard, lifted by ``height`` when it
    is positive, and its zero rows."""
    if height > 0:
        X, _ = lift_rows(X, None, height=height)
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

    def halo_sizes(self):
        return np.array([n.size for n in self.needed])


def _needed(halo, t):
    return halo.needed[t]


def _take(values, rows):
    return values[rows]


def _extended(own, halos):
    """A shard's rows of a vector or block followed by its halo rows."""
    return np.concatenate([own, *halos]) if halos else own


def _weights(halo, values=None):
    """A shard's renumbered rows of ``W`` with new values on the same
    pattern (``None``: the affinities), and their row sums."""
    W = halo.W
    if values is not None:
        W = sp.csr_matrix((values, W.indices, W.indptr), shape=W.shape)
    return W, np.asarray(W.sum(axis=1)).ravel()


def _reach(weights, reached, halos):
    """One step of the search for the rows that a labeled row reaches:
    ``reached | (W reached > 0)`` on a shard's rows."""
    W, _ = weights
    ext = _extended(reached, halos).astype(np.float64)
    return reached | (W @ ext > 0)


def _count(mask):
    return int(np.count_nonzero(mask))


def _system(weights, scale, scale_halos, diagonal, laplacian):
    """The shard's rows of the system: ``(1 + mu) I - D^-1/2 W D^-1/2``
    (normalised) or ``D + U - W`` (combinatorial), on the renumbered
    columns; and the inverse of its diagonal."""
    W, _ = weights
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


def _sources(n_rows, rows, values):
    """The shard's rows of ``B``, kept as its labeled rows: ``(n_rows,
    rows, values)``, ``B[rows] = values`` and 0 elsewhere."""
    return n_rows, np.asarray(rows), np.asarray(values, dtype=np.float64)


def _source_norms(B):
    """The squared column norms of a shard's rows of ``B``."""
    values = B[2]
    return (values * values).sum(axis=0)


# The conjugate gradient runs in the Chronopoulos-Gear form: each iteration
# needs one product and one reduction (r^T r, r^T u, w^T u with u = D^-1 r
# and w = A u), so one round trip to the client instead of two. A shard's
# state is ``((E, R, U, P, S, W), sums)``, ``S = A P``; the next task reads
# the blocks, the client gathers only the sums (a small task picks them
# out).


def _cg_start(system, B, x0, x0_halos):
    """``E = x0`` (or 0), ``R = B - A x0``, ``U = D^-1 R``, ``P = S = 0``
    (``B`` as :func:`_sources` keeps it)."""
    A, inv_diag = system
    n_rows, rows, values = B
    if x0 is None:
        R = np.zeros((n_rows, values.shape[1]))
        E = np.zeros_like(R)
    else:
        E = np.array(x0, dtype=np.float64)
        R = A @ _extended(E, x0_halos)
        np.negative(R, out=R)
    R[rows] += values
    zeros = np.zeros_like(R)
    return (E, R, R * inv_diag[:, None], zeros, zeros.copy(), None), None


def _preconditioned_rows(state, alpha, beta, system, rows):
    """Rows ``rows`` of ``U = D^-1 R`` after the update with ``alpha`` and
    ``beta`` (a halo)."""
    (_, R, U, _, S, W), _ = state
    if alpha is None:
        return U[rows]
    _, inv_diag = system
    return inv_diag[rows, None] * (R[rows] - alpha * (W[rows] + beta * S[rows]))


def _iterate(system, state, alpha, beta, halos):
    """The update ``P = U + beta P``, ``S = W + beta S``, ``E += alpha P``,
    ``R -= alpha S``, ``U = D^-1 R`` (none before the first step), then
    ``W = A U`` and the sums ``(r^T r, r^T u, w^T u)`` per column."""
    A, inv_diag = system
    (E, R, U, P, S, W), _ = state
    if alpha is not None:
        P = U + beta * P
        S = W + beta * S
        E = E + alpha * P
        R = R - alpha * S
        U = R * inv_diag[:, None]
    W = A @ _extended(U, halos)
    sums = np.stack([(R * R).sum(axis=0), (R * U).sum(axis=0), (W * U).sum(axis=0)])
    return (E, R, U, P, S, W), sums


def _sums_of(result):
    return result[1]


def _solution(state):
    return state[0][0]


# -- the mining (HardNegativeLP) on the workers --------------------------------


def _mass(G, orphan):
    """Column sums of the clipped solution, orphan rows left out."""
    g = np.clip(G, 0.0, None)
    g[orphan] = 0.0
    return g.sum(axis=0)


def _views(G, orphan, factor, uniform):
    """The unit rows (float32) of a shard's class distributions, their
    arg-max and their confidence (as ``_Mining.views``)."""
    g = np.clip(G, 0.0, None)
    g[orphan] = 0.0
    if factor is not None:
        g *= factor
    P, _ = normalize_distributions(g, uniform)
    return unit_rows(P), P.argmax(axis=1), entropy_confidence(P)


def _view_part(views, i):
    return views[i]


def _discriminant_rows(V, labeled, y_index, views):
    """Labels (given, else the pseudolabel) and weights (1, else the
    confidence) of a shard's rows for the linear view."""
    _, pseudo, confidence = views
    labels = np.where(labeled, y_index, pseudo)
    weights = np.where(labeled, 1.0, confidence)
    return labels, weights


def _class_sums(V, rows, total, n_classes):
    """Weighted class masses and class sums of a shard's feature rows."""
    labels, weights = rows
    w = weights / total
    mass = np.bincount(labels, weights=w, minlength=n_classes)
    onehot = sp.csr_matrix(
        (w, (labels, np.arange(labels.size))), shape=(n_classes, labels.size)
    )
    return mass, onehot @ np.asarray(V, dtype=np.float64)


def _scatter(V, rows, total, means, position):
    """The weighted within-class scatter of a shard's rows."""
    labels, weights = rows
    w = weights / total
    residual = V - means[position[labels]]
    return (residual * w[:, None]).T @ residual


def _shrinkage_rows(V, rows, total, means, position, local, n_samples):
    """The scaled residuals of the rows ``local`` of a shard (part of the
    strided sample on which the shrinkage is estimated)."""
    labels, weights = rows
    w = weights[local] / total
    residual = V[local] - means[position[labels[local]]]
    return residual * np.sqrt(w * n_samples)[:, None]


def _linear_view(V, model):
    """Unit rows (float32) of the discriminant's probabilities."""
    from ._negatives import discriminant_unit_block

    return discriminant_unit_block(model, V)


def _agreement(halo, Pn, Pn_halos, Qn, Qn_halos, temperature, view_weight,
               view_combination):
    """The float32 shares of :func:`~sklearn_mixedlp._negatives.agreement_data`
    on a shard's rows of ``W`` (aligned with its stored entries): the share
    of each edge's affinity that the views say joins two classes."""
    Qn = None if Qn is None else _extended(Qn, Qn_halos)
    return agreement_data(
        halo.W, _extended(Pn, Pn_halos), Qn, temperature=temperature,
        view_weight=view_weight, view_combination=view_combination, shares=True,
    )


def _cut(halo, shares, beta):
    """``max(w (1 - beta share), 0)`` on a shard's stored entries, as on one
    machine, and whether it cut a positive affinity to 0."""
    cut, _, removed = _cut_values(halo.W, shares, beta)
    return cut, int(removed)


def _transform(V, svd):
    return np.asarray(svd.transform(V))


def _rows_of(V, local):
    return np.asarray(V[local])


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


def _ratio(a, b, active):
    """``a / b`` on the active columns, 0 elsewhere."""
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=active & (b != 0))
    return out


def _check_estimator(estimator):
    from ._label_propagation import HardNegativeLP, MixedLabelPropagation

    if type(estimator) not in (MixedLabelPropagation, HardNegativeLP):
        raise TypeError(
            "fit_distributed fits a MixedLabelPropagation or a HardNegativeLP; "
            f"got {type(estimator).__name__}."
        )
    estimator._validate_params()
    if isinstance(estimator, MixedLabelPropagation) and estimator.negatives is not None:
        raise ValueError(
            "fit_distributed supports MixedLabelPropagation(negatives=None) "
            f"only; got negatives={estimator.negatives!r}."
        )
    if isinstance(estimator, HardNegativeLP):
        if estimator.mining not in ("two_view", "agreement"):
            raise ValueError(
                "fit_distributed supports HardNegativeLP(mining='two_view' or "
                f"'agreement'); got mining={estimator.mining!r}."
            )
        if estimator.dissimilarity_loss != "cut":
            raise ValueError(
                "fit_distributed supports HardNegativeLP(dissimilarity_loss="
                f"'cut'); got {estimator.dissimilarity_loss!r}."
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
    if min(X.chunks[0]) < 1 or X.shape[0] < 2:
        raise ValueError(
            "X needs at least 2 rows and every chunk of rows (a shard) at least "
            f"one; got chunks of {list(X.chunks[0])} rows."
        )
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    return X


def fit_distributed(estimator, X, y, *, client=None):
    """Fit a label propagation on a Dask cluster, one shard per chunk of rows.

    The kNN graph is built per shard with faiss (every shard's rows are
    searched in every shard's index and the candidates merged: the exact
    neighbours), and each propagation ``A F = B`` is solved by a block
    conjugate gradient on row-partitioned CSR blocks: the products on the
    workers, the per-column reductions on the client. The mining of a
    :class:`~sklearn_mixedlp.HardNegativeLP` runs on the shards' edges, its
    linear discriminant fitted from statistics reduced on the client (see
    :ref:`distributed` for the data layout and the communication). The
    result is the single-machine ``estimator.fit(X, y)`` on the same rows,
    to the solver's tolerance.

    Parameters
    ----------
    estimator : HardNegativeLP or MixedLabelPropagation
        A :class:`~sklearn_mixedlp.HardNegativeLP` with ``mining``
        ``'two_view'`` (the default) or ``'agreement'`` and
        ``dissimilarity_loss='cut'`` (the default), or a
        :class:`~sklearn_mixedlp.MixedLabelPropagation` with
        ``negatives=None`` (plain label propagation); ``knn_backend``
        ``'auto'`` or ``'faiss'``. Its other parameters apply as in ``fit``.
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
    estimator : HardNegativeLP or MixedLabelPropagation
        The estimator, fitted: ``classes_``, ``label_distributions_``,
        ``transduction_``, ``confidence_``, ``n_iter_``, ``mu_``,
        ``n_neighbors_``, ``lift_height_``, ``knn_backend_``, ``mining_`` and
        ``fit_stages_`` (wall time per stage) as after ``fit``, plus
        ``n_shards_`` and ``halo_rows_`` (the halo of each shard). ``affinity_`` and
        ``dissimilarity_`` are not gathered and ``predict`` on new rows is
        not available: the training rows stay on the cluster.

    Raises
    ------
    TypeError
        If ``estimator`` is neither of the two estimators or ``X`` is not a
        dask array.
    ValueError
        If ``X`` has NaN or infinite values (before the neighbour search),
        ``y`` does not have one label per row, no row is labeled, or the
        estimator's options are not distributed (see ``estimator``).

    Examples
    --------
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import HardNegativeLP
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> from sklearn_mixedlp.distributed import fit_distributed
    >>> X, y = load_digits(return_X_y=True)
    >>> y_train = mask_labels(y, 5, random_state=0)
    >>> with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster):
    ...     est = fit_distributed(HardNegativeLP(n_neighbors=10),
    ...                           da.from_array(X, chunks=(900, -1)), y_train)
    >>> est.n_shards_
    2
    >>> same = HardNegativeLP(n_neighbors=10).fit(X, y_train)
    >>> bool((est.transduction_ == same.transduction_).all())
    True
    """

    _check_estimator(estimator)
    X = _as_dask_array(X)
    distributed = import_optional("distributed", "fit_distributed")
    client = distributed.get_client() if client is None else client
    fit = _ShardedFit(estimator, X, y, client, distributed)
    fit.graph()
    G, orphan = fit.propagate()
    fit.outputs(G, orphan)
    return estimator


# The ridge of the single-machine system on the rows without a labeled
# component (combinatorial Laplacian), relative to the mean degree.
_RIDGE = 1e-6


class _ShardedFit:
    """The stages of one :func:`fit_distributed`, run from the client."""

    def __init__(self, est, X, y, client, distributed):
        self.est, self.distributed = est, distributed
        self.start = self.last = time.perf_counter()
        self.stages = {}
        n_samples, self.n_features = X.shape
        # the precision of the distributions, as in a one-machine fit
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        y = column_or_1d(fill_unlabeled(y), warn=True)
        if y.shape[0] != n_samples:
            raise ValueError(
                f"y must have one label per row of X ({n_samples}); got {y.shape[0]}."
            )
        unlabeled = unlabeled_mask(y)
        est.classes_, self.y_index = est._encode_labels(y, unlabeled)
        self.labeled = ~unlabeled
        est.class_prior_ = est._target_masses(self.y_index[self.labeled])
        self.n_samples, self.n_classes = n_samples, est.classes_.size
        est.mu_ = est.mu
        if est.mu == "auto":
            est.mu_ = max(1 / 99, np.count_nonzero(self.labeled) / n_samples)
        self.k = clip_n_neighbors(
            auto_neighbors(est.n_neighbors, n_samples, np.count_nonzero(self.labeled)),
            n_samples,
        )
        self.offsets = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.n_shards = self.offsets.size - 1
        # shards: one chunk of rows each, normalised where they are
        parts = client.compute(list(X.to_delayed().ravel()))
        distributed.wait(parts)
        who = client.who_has(parts)
        workers = [sorted(who[p.key])[0] for p in parts]
        self.cl = cl = _Cluster(client, workers)
        # each shard checked once, where it is
        checked = [cl.on(s, _checked_shard, parts[s], int(self.offsets[s])) for s in self.shards]
        est.lift_height_ = 0.0
        if est.lift > 0:
            # the root-mean-square row norm, reduced over the shards
            sums = cl.gather([cl.on(s, row_norm_sums, checked[s]) for s in self.shards])
            est.lift_height_ = lift_height(sums, n_samples, est.lift)
        self.width = self.n_features + (est.lift_height_ > 0)  # lifted or not
        normal = [
            cl.on(s, _normalize_shard, checked[s], est.lift_height_) for s in self.shards
        ]
        del checked
        self.V, zero = zip(*(cl.split(s, normal[s], 2) for s in self.shards))
        self.zero = np.concatenate(cl.gather(list(zero)))  # raises on NaN
        self.lap("validation", f"{self.n_shards} shards on {len(set(workers))} workers")

    @property
    def shards(self):
        return range(self.n_shards)

    def rows(self, s):
        return slice(int(self.offsets[s]), int(self.offsets[s + 1]))

    def lap(self, stage, message, n_iter=0):
        now = time.perf_counter()
        self.stages[stage] = {"seconds": now - self.last, "n_iter": int(n_iter)}
        if self.est.verbose:
            print(
                f"[fit_distributed] {stage}: {message} ({now - self.last:.2f}s, "
                f"{now - self.start:.2f}s in all)"
            )
        self.last = now

    def halos(self, s, values):
        """The halo rows of shard ``s`` from the shards' blocks ``values``
        (futures), worker to worker."""
        return [
            self.cl.on(t, _take, values[t], self.needed[s][t])
            for t in self.shards if t != s
        ]

    def vector_halos(self, s, vector):
        """The halo rows of shard ``s`` of an ``N``-vector on the client."""
        return [
            self.cl.on(t, _take, vector[self.rows(t)], self.needed[s][t])
            for t in self.shards if t != s
        ]

    def sum(self, futures):
        return np.sum(self.cl.gather(list(futures)), axis=0)

    # -- the graph ----------------------------------------------------------
    def graph(self):
        est, cl, k, offsets = self.est, self.cl, self.k, self.offsets
        index = [cl.on(s, _shard_index, self.V[s], k, est.random_state) for s in self.shards]
        neighbours = []
        for s in self.shards:
            candidates = [
                cl.on(t, _query, index[t], self.V[s], k + 1, int(offsets[t]))
                for t in self.shards
            ]
            neighbours.append(cl.on(s, _merge, candidates, k, int(offsets[s])))
        self.distributed.wait(neighbours)
        del index
        est.n_neighbors_, est.knn_backend_ = k, "faiss"
        self.lap("neighbors", f"{k} neighbours with 'faiss' on {self.n_shards} shards")

        # the affinities, then W = A + A^T by one exchange of columns
        zero = cl.client.scatter(self.zero, broadcast=True)
        A = [
            cl.on(s, _affinity, neighbours[s], zero, int(offsets[s]), est.kernel,
                  est.gamma, self.n_samples)
            for s in self.shards
        ]
        columns = [
            [cl.on(s, _columns, A[s], int(offsets[t]), int(offsets[t + 1]))
             for t in self.shards]
            for s in self.shards
        ]
        W = [
            cl.on(t, _symmetric_rows, A[t], [columns[s][t] for s in self.shards],
                  int(offsets[t]))
            for t in self.shards
        ]
        self.halo = [cl.on(s, _Halo, W[s], s, offsets) for s in self.shards]
        self.needed = [[cl.on(s, _needed, self.halo[s], t) for t in self.shards]
                       for s in self.shards]
        est.halo_rows_ = np.array(cl.gather(
            [cl.on(s, operator.methodcaller("halo_sizes"), self.halo[s])
             for s in self.shards]
        )).sum(axis=1)
        del neighbours, A, columns, W
        self.base = [cl.on(s, _weights, self.halo[s]) for s in self.shards]
        self.base_orphan = self.orphans(self.base)
        # B = mu Y (Poisson: minus the labels' mean), row block by row
        # block, each kept as its labeled rows
        mu, labeled = est.mu_, self.labeled
        values = np.zeros((np.count_nonzero(labeled), self.n_classes))
        values[np.arange(values.shape[0]), self.y_index[labeled]] = mu
        if est.source == "poisson":
            values -= values.mean(axis=0)
        first = np.searchsorted(np.flatnonzero(labeled), offsets)
        self.B = []
        for s in self.shards:
            local = np.flatnonzero(labeled[self.rows(s)])
            self.B.append(cl.on(
                s, _sources, int(offsets[s + 1] - offsets[s]), local,
                values[first[s]:first[s + 1]],
            ))
        self.lap("graph", f"halo of {int(est.halo_rows_.sum())} rows")

    def orphans(self, weights):
        """Rows without a labeled row in their component of the graph
        ``weights``: the labeled rows' reach, grown one hop per round."""
        cl = self.cl
        reached = [cl.on(s, np.array, self.labeled[self.rows(s)]) for s in self.shards]
        count = int(self.labeled.sum())
        while True:
            reached = [
                cl.on(s, _reach, weights[s], reached[s], self.halos(s, reached))
                for s in self.shards
            ]
            new = int(sum(cl.gather([cl.on(s, _count, reached[s]) for s in self.shards])))
            if new == count:
                break
            count = new
        return ~np.concatenate(cl.gather(reached))

    def systems(self, weights, orphan):
        """The system of the graph ``weights``, row block by row block."""
        est, cl = self.est, self.cl
        degree = np.concatenate(cl.gather(
            [cl.on(s, operator.itemgetter(1), weights[s]) for s in self.shards]
        ))
        if est.laplacian == "normalized":
            scale = np.zeros_like(degree)
            np.divide(1.0, np.sqrt(degree), out=scale, where=degree > 0)
            diagonal = np.full_like(degree, 1.0 + est.mu_)
        else:
            scale = np.ones_like(degree)
            ridge = _RIDGE * max(degree.mean(), 1.0) * orphan
            diagonal = degree + est.mu_ * self.labeled + ridge
        return [
            cl.on(s, _system, weights[s], scale[self.rows(s)],
                  self.vector_halos(s, scale), diagonal[self.rows(s)], est.laplacian)
            for s in self.shards
        ]

    # -- the solves ---------------------------------------------------------
    def solve(self, systems, x0=None, tol=None):
        """Block CG (float64, Jacobi, columns frozen at ``tol``, by default
        the estimator's) from ``x0``; returns the solution's row blocks
        (futures)."""
        est, cl = self.est, self.cl
        labeled_norm = self.sum(
            cl.on(s, _source_norms, self.B[s]) for s in self.shards
        )
        b_norm = np.sqrt(labeled_norm)
        b_norm = b_norm + (b_norm == 0)
        tol = est.tol if tol is None else max(tol, est.tol)
        target = tol * b_norm
        state = [
            cl.on(s, _cg_start, systems[s], self.B[s],
                  None if x0 is None else x0[s],
                  [] if x0 is None else self.halos(s, x0))
            for s in self.shards
        ]
        alpha = beta = gamma = None
        n_iter = 0
        while True:
            # the halo rows of the preconditioned residual, worker to worker,
            # then the update and the product on every shard
            halos = [
                [cl.on(t, _preconditioned_rows, state[t], alpha, beta, systems[t],
                       self.needed[s][t])
                 for t in self.shards if t != s]
                for s in self.shards
            ]
            state = [cl.on(s, _iterate, systems[s], state[s], alpha, beta, halos[s])
                     for s in self.shards]
            n_iter += alpha is not None
            # the one reduction: convergence, step size and direction
            rr, gamma_new, delta = self.sum(
                cl.on(s, _sums_of, state[s]) for s in self.shards
            )
            norm = np.sqrt(rr)
            active = norm > target
            if not active.any() or n_iter >= est.max_iter:
                break
            if gamma is None:
                beta = np.zeros(self.n_classes)
                denominator = delta
            else:
                beta = _ratio(gamma_new, gamma, active)
                denominator = delta - beta * _ratio(gamma_new, alpha, active)
            alpha = _ratio(gamma_new, denominator, active)
            beta = np.where(active, beta, 0.0)
            gamma = gamma_new
        residuals = norm / b_norm
        if not (residuals <= tol).all():
            warnings.warn(
                f"Conjugate gradient stopped after max_iter={est.max_iter} "
                f"iterations with relative residual {residuals.max():.2e} > "
                f"tol={tol:g} in {int((residuals > tol).sum())} of "
                f"{residuals.size} column(s). Increase max_iter or tol.",
                ConvergenceWarning,
            )
        est.n_iter_ = getattr(est, "n_iter_", 0) + n_iter
        self.n_iter = n_iter
        return [cl.on(s, _solution, state[s]) for s in self.shards]

    def propagate(self):
        """The label propagation, then (HardNegativeLP) the rounds of mining
        and the propagation on the cut graph; returns the solution's row
        blocks and its orphan rows."""
        est = self.est
        est.n_iter_ = 0
        # as in the single-machine fit, the solves that only feed the
        # mining's rounds stop early
        mining_tol = est._mining_solve_tol() if hasattr(est, "n_rounds") else None
        F = self.solve(self.systems(self.base, self.base_orphan), tol=mining_tol)
        self.lap("label_propagation", f"{self.n_iter} iterations", self.n_iter)
        if not hasattr(est, "n_rounds"):  # MixedLabelPropagation
            return F, self.base_orphan
        est.mining_ = est.mining
        V = self.features() if est.mining == "two_view" else None
        orphan, n_iter, shares = self.base_orphan, 0, None
        for round_ in range(est.n_rounds):
            if round_:
                F, orphan = self.solve_cut(shares, F, tol=mining_tol)
                n_iter += self.n_iter
            shares = self.mine(F, orphan, V)
        self.lap("mining", f"{est.n_rounds} rounds", n_iter)
        F, orphan = self.solve_cut(shares, F)
        self.lap("mixed_solve", f"{self.n_iter} iterations", self.n_iter)
        return F, orphan

    def solve_cut(self, shares, F, tol=None):
        """The propagation on the cut graph ``max(W (1 - beta shares), 0)``,
        warm-started from ``F``."""
        cl = self.cl
        cut = [cl.on(s, _cut, self.halo[s], shares[s], self.est.beta)
               for s in self.shards]
        removed = sum(cl.gather([cl.on(s, operator.itemgetter(1), cut[s])
                                 for s in self.shards]))
        weights = [cl.on(s, _weights, self.halo[s], cl.on(s, operator.itemgetter(0), cut[s]))
                   for s in self.shards]
        orphan = self.orphans(weights) if removed else self.base_orphan
        return self.solve(self.systems(weights, orphan), F, tol=tol), orphan

    # -- the mining ----------------------------------------------------------
    def mine(self, F, orphan, V):
        """The float32 shares of each edge's affinity that the views say
        join two classes, per shard (as ``HardNegativeLP``'s two-view and
        agreement mining)."""
        est, cl, C = self.est, self.cl, self.n_classes
        present = np.bincount(self.y_index[self.labeled], minlength=C) > 0
        uniform = present / present.sum()
        factor = None
        if est.class_mass_normalization:
            mass = self.sum(cl.on(s, _mass, F[s], orphan[self.rows(s)]) for s in self.shards)
            factor = _class_mass_factors(est.class_prior_, mass)
        views = [cl.on(s, _views, F[s], orphan[self.rows(s)], factor, uniform)
                 for s in self.shards]
        Pn = [cl.on(s, _view_part, views[s], 0) for s in self.shards]
        Qn = [None] * self.n_shards
        if V is not None:
            model = self.discriminant(V, views)
            Qn = [cl.on(s, _linear_view, V[s], model) for s in self.shards]
        return [
            cl.on(s, _agreement, self.halo[s], Pn[s], self.halos(s, Pn), Qn[s],
                  [] if V is None else self.halos(s, Qn), est._temperature(),
                  est.view_weight, est.view_combination)
            for s in self.shards
        ]

    def features(self):
        """The rows of the linear view (as ``discriminant_features``): the
        normalised rows, projected on their leading directions (fitted on a
        sample of rows) when they have more than ``max(64, 2 C)`` columns."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.utils import check_random_state

        cl, n, d = self.cl, self.n_samples, self.width
        n_components = min(d, linear_view_width(self.n_classes, self.est.lift_height_ > 0))
        if d <= n_components:
            return list(self.V)
        rng = check_random_state(self.est.random_state)
        n_components = min(n_components, d - 1, n - 1)
        if n_components < 1:
            return [cl.on(s, np.zeros, (int(self.offsets[s + 1] - self.offsets[s]), 1))
                    for s in self.shards]
        sample = np.sort(rng.choice(n, min(n, 20_000), replace=False))
        parts = []
        for s in self.shards:
            local = sample[(sample >= self.offsets[s]) & (sample < self.offsets[s + 1])]
            parts.append(cl.on(s, _rows_of, self.V[s], local - self.offsets[s]))
        svd = TruncatedSVD(n_components, algorithm="randomized", random_state=rng)
        svd.fit(np.concatenate(cl.gather(parts)))
        return [cl.on(s, _transform, self.V[s], svd) for s in self.shards]

    def discriminant(self, V, views):
        """The linear discriminant of ``linear_discriminant_proba`` fitted on
        all shards: its statistics reduced on the client."""
        from sklearn.covariance import ledoit_wolf_shrinkage

        from ._negatives import _SHRINKAGE_ROWS

        cl, C, n = self.cl, self.n_classes, self.n_samples
        rows = [
            cl.on(s, _discriminant_rows, V[s], self.labeled[self.rows(s)],
                  self.y_index[self.rows(s)], views[s])
            for s in self.shards
        ]
        total = float(self.sum(
            cl.on(s, lambda r: r[1].sum(), rows[s]) for s in self.shards
        ))
        if not total > 0:
            return ("constant", np.full(C, 1.0 / C))
        parts = cl.gather([cl.on(s, _class_sums, V[s], rows[s], total, C)
                           for s in self.shards])
        mass = np.sum([p[0] for p in parts], axis=0)
        sums = np.sum([p[1] for p in parts], axis=0)
        n_features = sums.shape[1]
        present = np.flatnonzero(mass > 0)
        means = sums[present] / mass[present, None]
        position = np.full(C, -1)
        position[present] = np.arange(present.size)
        S = self.sum(cl.on(s, _scatter, V[s], rows[s], total, means, position)
                     for s in self.shards)
        shrinkage = 0.0
        if n_features > 1:
            sample = np.arange(0, n, -(-n // _SHRINKAGE_ROWS))
            scaled = []
            for s in self.shards:
                local = sample[(sample >= self.offsets[s]) & (sample < self.offsets[s + 1])]
                scaled.append(cl.on(s, _shrinkage_rows, V[s], rows[s], total, means,
                                    position, local - self.offsets[s], n))
            shrinkage = ledoit_wolf_shrinkage(
                np.concatenate(cl.gather(scaled)), assume_centered=True
            )
        from ._negatives import _discriminant_model

        return _discriminant_model(S, means, mass, present, shrinkage, C)

    # -- the outputs ----------------------------------------------------------
    def outputs(self, F, orphan):
        """The fitted attributes of the transduction, as at the end of ``fit``."""
        from ._label_propagation import (
            _class_mass_normalize,
            _set_distributions,
            _warn_changed_labels,
        )

        est, C = self.est, self.n_classes
        G = np.concatenate(self.cl.gather(F))
        G[orphan] = 0.0
        y_index, labeled = self.y_index, self.labeled
        if est.class_mass_normalization:
            G = _class_mass_normalize(G, est.class_prior_)
        _set_distributions(est, G, y_index, labeled, C, self.dtype)
        est.n_features_in_ = self.n_features
        est.n_shards_ = self.n_shards
        est._distributed_fit = True
        _warn_changed_labels(est, y_index, labeled)
        self.lap("output", "distributions, confidences")
        est.fit_stages_ = self.stages
