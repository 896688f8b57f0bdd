"""Dissimilarity ("negative") edge weights ``Wdis``.

All weight functions return a symmetric, non-negative sparse CSR matrix
with a zero diagonal:

- :func:`agreement_weights`: the share of each edge's affinity that two
  views of the data, the propagated label distributions and a linear
  discriminant fitted on the pseudolabels, say joins different classes;
- :func:`hard_negative_weights`: edge-removal mining, eqs. 18-22;
- :func:`control_negative_weights`: the paper's 'Control' baseline;
- :func:`mom_negative_weights`: Mining on Manifolds (kNN, not mutual kNN);
- :func:`check_negatives`: user-supplied matrices or index pairs.

Edge computations run over chunks of the upper triangle of ``W`` so the
working memory is ``O(chunk * C)`` on top of the ``O(N k + N C)`` inputs.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.covariance import ledoit_wolf_shrinkage
from sklearn.utils import check_random_state

from . import _kernels
from ._graph import drop_diagonal, l2_normalize_quiet
from ._utils import (
    _MIN_THREADED_CHUNKS,
    entropy_confidence,
    map_blocks,
    map_rows,
    map_threads,
    normalize_distributions,
)

# Edges processed per chunk is _CHUNK_ENTRIES // n_classes (a chunk of
# float64 scores is 1 MiB: the temporaries of a chunk stay in cache).
_CHUNK_ENTRIES = 2**17
# Remaining degree (relative) below which a sample is taken to have no
# neighbour left once an edge is removed.
_TINY_DEGREE = 1e-12

# Rows used to estimate the shrinkage of the discriminant's covariance.
_SHRINKAGE_ROWS = 10_000


def _upper_edges(W):
    """Row, column and weight of every stored edge ``i < j`` of ``W``."""
    upper = sp.triu(W, k=1, format="coo")
    return upper.row, upper.col, upper.data


def _edge_chunks(n_edges, n_classes):
    step = max(1, _CHUNK_ENTRIES // max(n_classes, 1))
    for start in range(0, n_edges, step):
        yield slice(start, start + step)


def _symmetric_from_upper(rows, cols, values, n_samples):
    keep = values > 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    upper = sp.csr_matrix((values, (rows, cols)), shape=(n_samples, n_samples))
    Wdis = (upper + upper.T).tocsr()
    Wdis.sort_indices()
    return Wdis


def _dissimilarity(Zij, Zji):
    """``omega(Zij) omega(Zji) (1 - Zij . Zji)``: eqs. 21-22."""
    p_dis = 1.0 - np.einsum("ec,ec->e", Zij, Zji)
    return entropy_confidence(Zij) * entropy_confidence(Zji) * np.clip(p_dis, 0, 1)


def hard_negative_weights(W, F, temperature, *, scale_free=False, row_scale=None):
    """Hard-negative weights by edge removal (eqs. 18-22).

    For each stored edge ``(i, j)`` of ``W``::

        Zt_ij = softmax(temperature * (D_ii F_i - w_ij F_j))      (20)
        Wdis_ij = omega(Zt_ij) omega(Zt_ji) (1 - Zt_ij . Zt_ji)   (21-22)

    With ``scale_free=True`` the temperature acts on the neighbour average
    without ``j`` (eq. 19), ``h_ij = (D_ii F_i - w_ij F_j) / (D_ii -
    w_ij)``, centred per row and divided by the mean over the samples of
    the spread (standard deviation over the classes) of the rows of ``F``,
    so ``temperature`` is in units of a typical row's spread whatever the
    scale of ``F`` and of the degrees; and ``Wdis_ij`` is multiplied by
    ``w_ij``, so a negative edge never outweighs its own affinity (the
    dissimilarity is measured in the units of the graph). A sample whose
    only neighbour is ``j`` has no information without it and gets no
    negative.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix.
    F : ndarray of shape (n_samples, n_classes)
        Label propagation scores whose weighted neighbour average is the
        fixed point of eq. 17.
    temperature : float
        The temperature ``lambda`` of eq. 20.
    scale_free : bool, default=False
        Use the scale-free variant described above.
    row_scale : ndarray of shape (n_samples,), default=None
        Mine on ``row_scale[:, None] * F`` (e.g. ``D^-1/2 F`` for the
        normalised Laplacian), computed chunk by chunk instead of as a new
        ``n x C`` block.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
        Symmetric dissimilarity weights on the sparsity pattern of ``W``.
    """
    n_samples, n_classes = F.shape
    if n_classes < 2:
        return sp.csr_matrix((n_samples, n_samples))
    degree = np.asarray(W.sum(axis=1)).ravel()
    scale = np.ones(n_samples) if row_scale is None else np.asarray(row_scale)
    rows, cols, w = _upper_edges(W)
    row_spread = np.empty(n_samples)
    for s in _edge_chunks(n_samples, n_classes):
        row_spread[s] = np.std(F[s], axis=1) * np.abs(scale[s])
    informed = row_spread > 0  # rows without information do not set the scale
    spread = float(row_spread[informed].mean()) if informed.any() else 0.0
    if scale_free and not spread > 0:
        return sp.csr_matrix((n_samples, n_samples))
    tiny = _TINY_DEGREE * max(float(np.abs(degree).max(initial=0.0)), 1.0)
    values = np.empty(rows.size)

    def logits(i, j, wij):
        """``c * (D_ii F_i - w_ij F_j)``, the argument of eq. 20's softmax
        for each edge; a shift per row does not change the softmax, so the
        centring of the scale-free variant is left out."""
        H = F[j]
        H *= (-wij * scale[j])[:, None]
        Fi = F[i]
        Fi *= (degree[i] * scale[i])[:, None]
        H += Fi  # eqs. 18-19: i's scores without edge (i, j)
        if scale_free:
            rest = degree[i] - wij
            factor = np.zeros_like(rest)
            np.divide(temperature / spread, rest, out=factor, where=rest > tiny)
            H *= factor[:, None]  # leave-one-out mean (19), in units of spread
        else:
            H *= temperature
        return H

    def chunk(s):
        i, j, wij = rows[s], cols[s], w[s]
        Eij, Sij, omega_ij = _softmax_parts(logits(i, j, wij))  # eq. 20
        Eji, Sji, omega_ji = _softmax_parts(logits(j, i, wij))
        same = np.einsum("ec,ec->e", Eij, Eji) / (Sij * Sji)  # Zt_ij . Zt_ji
        values[s] = omega_ij * omega_ji * np.clip(1.0 - same, 0.0, 1.0)  # 21-22
        if scale_free:
            values[s] *= wij

    _map_chunks(chunk, rows.size, n_classes)
    return _symmetric_from_upper(rows, cols, values, n_samples)


def _softmax_parts(X):
    """For each row ``x`` of ``X`` (overwritten): ``e = exp(x - max x)``,
    its sum ``S`` and the confidence ``omega`` of ``softmax(x) = e / S``
    (eq. 21), from ``H = log S - (e . (x - max x)) / S`` without forming
    the softmax."""
    X -= X.max(axis=1, keepdims=True)
    E = np.exp(X)
    S = E.sum(axis=1)
    entropy = np.log(S) - np.einsum("ec,ec->e", E, X) / S
    n_classes = X.shape[1]
    omega = np.clip(1.0 - entropy / np.log(n_classes), 0.0, 1.0)
    return E, S, omega


def _map_chunks(fn, n_edges, n_classes):
    """``fn(slice)`` over cache-sized chunks of the edges, on all cores
    (numpy releases the GIL); each chunk writes its own slice."""
    map_threads(fn, _edge_chunks(n_edges, n_classes), min_items=_MIN_THREADED_CHUNKS)


def agreement_weights(
    W, P, Q=None, *, temperature=0.25, view_weight=0.5, view_combination="product"
):
    """Negative weights from the disagreement of two views across each edge.

    For each stored edge ``(i, j)`` of ``W``, with ``d_ij = 1 - cos(P_i,
    P_j)`` the disagreement of the propagated class distributions of its
    ends and ``q_ij = 1 - cos(Q_i, Q_j)`` that of a second view::

        Wdis_ij = w_ij * (1 - exp(-e_ij / temperature))

    with ``e_ij = (1 + view_weight) * sqrt(d_ij * q_ij)`` (``view_combination
    ='product'``: both views must see the ends differ) or ``e_ij = d_ij +
    view_weight * q_ij`` (``'sum'``: either view may), the two equal where
    the views agree (``d_ij = q_ij``); ``e_ij = d_ij`` without ``Q``.
    Both disagreements lie in ``[0, 1]`` (the rows are non-negative), so
    ``0 <= Wdis_ij < w_ij``: the negative weight is the share of the
    affinity that the views say joins two different classes, and an edge
    whose ends agree in both views keeps all of it.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix.
    P : ndarray of shape (n_samples, n_classes)
        Non-negative class distributions of the propagation.
    Q : ndarray of shape (n_samples, n_classes), default=None
        Non-negative class probabilities of the second view; None uses
        ``P`` alone.
    temperature : float, default=0.25
        Disagreement at which an edge keeps ``exp(-1)`` of its affinity.
    view_weight : float, default=0.5
        With ``'sum'`` the weight of the second view's disagreement; with
        ``'product'`` the scale ``1 + view_weight`` of the geometric mean.
    view_combination : {'product', 'sum'}, default='product'
        How the two disagreements combine (see above).

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
        Symmetric dissimilarity weights on the sparsity pattern of ``W``.
    """
    W = sp.csr_matrix(W)
    W.sort_indices()
    values = agreement_data(
        W, unit_rows(P), None if Q is None else unit_rows(Q),
        temperature=temperature, view_weight=view_weight,
        view_combination=view_combination,
    )
    return on_pattern(W, values)


def on_pattern(W, values):
    """The CSR matrix of ``values`` on the stored entries of ``W``, without
    stored zeros (the index arrays are copied: ``W`` is left alone)."""
    M = sp.csr_matrix((values, W.indices.copy(), W.indptr.copy()), shape=W.shape)
    M.eliminate_zeros()
    return M


def unit_rows(P):
    """Rows of ``P`` scaled to unit norm, as float32 (zero rows stay
    zero): the rows whose dot products :func:`agreement_data` takes."""
    norms = np.linalg.norm(P, axis=1, keepdims=True)
    return np.divide(P, norms, out=np.zeros_like(P), where=norms > 0).astype(
        np.float32, copy=False
    )


_unit_rows = unit_rows


class DistributionRows:
    """The unit rows of class distributions, read from the scores they
    come from: row ``i`` is ``max(G_i, 0) * factor`` scaled to unit norm,
    or the unit row of ``uniform`` where ``scale[i] == 0``.

    What :func:`agreement_data` reads of a propagation, without an
    ``n x C`` block beside ``G`` (the unit rows of ``P`` equal those of
    ``G`` clipped and weighted by class, whatever the row sums). Indexing
    gives the rows of :func:`unit_rows`, in float64 (the compiled kernel
    reads ``G`` in float64 as well: both paths round alike).

    Parameters
    ----------
    G : ndarray of shape (n_samples, n_classes)
        Scores (kept by reference, not copied).
    scale : ndarray of shape (n_samples,)
        ``1 / ||max(G_i, 0) * factor||``, or 0 for the rows that take the
        uniform distribution.
    uniform : ndarray of shape (n_classes,)
        The distribution of the rows with ``scale == 0``.
    factor : ndarray of shape (n_classes,), default=None
        Weight of each class (class-mass normalisation); None is 1.
    """

    def __init__(self, G, scale, uniform, factor=None):
        self.G, self.scale = G, np.asarray(scale, dtype=np.float64)
        n_classes = G.shape[1]
        self.factor = (
            np.ones(n_classes) if factor is None else np.asarray(factor, dtype=np.float64)
        )
        uniform = np.asarray(uniform, dtype=np.float64)
        self.uniform = uniform / max(np.linalg.norm(uniform), np.finfo(float).tiny)
        self.shape = G.shape

    def __getitem__(self, rows):
        g = np.clip(self.G[rows], 0.0, None) * self.factor
        scale = self.scale[rows]
        g *= np.asarray(scale)[..., None]
        g[scale == 0] = self.uniform
        return g

    def _kernel_arguments(self):
        return (
            self.G, self.factor**2, self.uniform * self.factor,
            float(self.uniform @ self.uniform), self.scale,
        )


def edge_mirrors(W, n_classes):
    """Where each stored entry of the CSR matrix ``W`` finds its mirror,
    for the compiled :func:`agreement_data` on ``n_classes`` columns (see
    :func:`~sklearn_mixedlp._kernels_numba.mirror_positions`): an array
    of ``W.nnz`` positions, or None where :func:`agreement_data` runs
    without the compiled kernels or ``W``'s indices are not known to be
    sorted. It depends on the pattern only, but :func:`agreement_data`
    computes it on each call: the mining's rounds would otherwise keep
    ``W.nnz`` integers through the solves between them (their peak
    memory)."""
    kernels = _kernels.get(W.nnz * n_classes)
    if kernels is None or not W.has_sorted_indices or W.nnz == 0:
        return None
    out = np.empty(W.nnz, dtype=np.int32 if W.nnz < 2**31 else np.int64)
    kernels.mirror_positions(W.indptr, W.indices, out)
    return out


def agreement_data(
    W, Pn, Qn=None, *, temperature=0.25, view_weight=0.5, view_combination="product",
    shares=False,
):
    """The values of :func:`agreement_weights` on every stored entry of the
    CSR matrix ``W``, in the order of ``W.data``, from the unit rows ``Pn``
    (and ``Qn``) of :func:`unit_rows`, or a :class:`DistributionRows`
    ``Pn`` (read from its scores). With ``shares``, the share of each
    affinity instead, ``1 - exp(-e / temperature)`` in ``[0, 1]``, as
    float32 (half the memory; a fully cut edge is exactly 1, so its cut
    affinity is exactly 0).

    The result is exactly symmetric. With the compiled kernels (numba)
    each row's neighbours are read in place, on all cores, and on a
    pattern with sorted indices each edge is computed once, from its
    upper entry, and written to both (half the row reads of both
    triangles; where the lower entry is comes from :func:`edge_mirrors`);
    without, the edges are
    taken in chunks of rows with numpy, both triangles, each entry from
    its own row (``(i, j)`` and ``(j, i)`` multiply the same numbers in
    the same order).
    """
    if view_combination not in ("product", "sum"):
        raise ValueError(
            f"view_combination must be 'product' or 'sum', got {view_combination!r}."
        )
    product = view_combination == "product"
    values = np.empty(W.nnz, dtype=np.float32 if shares else np.float64)
    if W.nnz == 0:
        return values
    kernels = _kernels.get(W.nnz * Pn.shape[1])
    lazy = isinstance(Pn, DistributionRows)
    if kernels is not None:
        Q = Qn if Qn is not None else np.zeros((Pn.shape[0], 0), dtype=np.float32)
        w = np.ascontiguousarray(W.data, dtype=np.float64)
        args = (float(view_weight), product, float(temperature), not shares, values)
        mirrors = edge_mirrors(W, Pn.shape[1])
        if mirrors is None:
            mirrors = np.empty(0, dtype=np.int32)

        def fn(rows):
            if lazy:
                kernels.agreement_values_from(
                    W.indptr, W.indices, w, *Pn._kernel_arguments(), Q,
                    Qn is not None, *args, rows.start, rows.stop, mirrors,
                )
            else:
                kernels.agreement_values(
                    W.indptr, W.indices, w, Pn, Q, Qn is not None, *args,
                    rows.start, rows.stop, mirrors,
                )

        map_rows(fn, W.indptr, 2**18)
        return values
    counts = np.diff(W.indptr)
    if lazy:
        # below the kernels' size the unit rows fit: each row once, not
        # once per stored entry of its row and of its neighbours' rows
        Pn = Pn[np.arange(Pn.shape[0])]

    def chunk(rows):
        lo, hi = W.indptr[rows.start], W.indptr[rows.stop]
        i = np.repeat(np.arange(rows.start, rows.stop), counts[rows])
        j = W.indices[lo:hi]
        e = 1.0 - np.einsum("ec,ec->e", Pn[i], Pn[j], dtype=np.float64)
        if Qn is not None:
            q = 1.0 - np.einsum("ec,ec->e", Qn[i], Qn[j], dtype=np.float64)
            if product:
                np.clip(e, 0.0, None, out=e)
                e = (1.0 + view_weight) * np.sqrt(e * np.clip(q, 0.0, None))
            else:
                e += view_weight * q
        np.clip(e, 0.0, None, out=e)
        share = -np.expm1(-e / temperature)
        values[lo:hi] = share if shares else W.data[lo:hi] * share

    map_rows(chunk, W.indptr, _CHUNK_ENTRIES // max(Pn.shape[1], 1))
    return values


def linear_view_width(n_classes, lifted=False):
    """The most features the linear view fits its discriminant on:
    ``max(64, 2 * n_classes)``, plus the constant coordinate of lifted rows
    (``lift``), which is not a feature of the data. Wider rows are projected
    on their leading directions by :func:`discriminant_features`; narrower
    ones are used as they are."""
    return max(64, 2 * n_classes) + bool(lifted)


def discriminant_features(X, n_classes, random_state=None, lifted=False):
    """The rows on which :func:`linear_discriminant_proba` is fitted.

    The L2-normalised rows (the geometry of the graph), projected on their
    leading principal directions when they have more than ``max(64, 2 *
    n_classes)`` features or are sparse, so that the discriminant stays
    cheap (``O(n d^2)``) and its covariance well estimated.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        L2-normalised feature rows.
    n_classes : int
        Number of classes.
    random_state : int, RandomState instance or None, default=None
        Seed of the randomised projection.
    lifted : bool, default=False
        Whether the last column of ``X`` is the constant coordinate of
        ``lift`` (see :func:`linear_view_width`).

    Returns
    -------
    V : ndarray of shape (n_samples, n_components)
        float32 for float32 rows, else float64.
    """
    n_samples, n_features = X.shape
    n_components = min(n_features, linear_view_width(n_classes, lifted))
    if n_features <= n_components:
        # float32 rows stay float32 (the discriminant computes in float64,
        # by chunks of rows): no float64 copy of a large feature matrix
        V = X.toarray() if sp.issparse(X) else np.asarray(X)
        return V if V.dtype in (np.float32, np.float64) else V.astype(np.float64)
    from sklearn.decomposition import TruncatedSVD

    rng = check_random_state(random_state)
    n_components = min(n_components, n_features - 1, n_samples - 1)
    if n_components < 1:
        return np.zeros((n_samples, 1))
    # fitted on a sample of rows, applied to all: centring is left out so
    # that sparse rows stay sparse (the discriminant removes the means)
    sample = rng.choice(n_samples, min(n_samples, 20_000), replace=False)
    svd = TruncatedSVD(n_components, algorithm="randomized", random_state=rng)
    svd.fit(X[np.sort(sample)])
    V = np.asarray(svd.transform(X))
    return V if V.dtype in (np.float32, np.float64) else V.astype(np.float64)


class UnitFeatureRows:
    """The L2-normalised rows of ``X``, in the order ``order``, normalised
    as they are read: what :func:`discriminant_features` gives for narrow
    dense rows, without an ``n x d`` copy of ``X`` (a memory-mapped ``X``
    is read in place, chunk by chunk).

    Indexing by rows (a slice or an index array) gives those rows of
    ``l2_normalize(X)[order]``, in the dtype of ``X`` (float64 for any
    dtype but float32).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite dense feature rows.
    order : ndarray of shape (n_samples,), default=None
        Row ``i`` is row ``order[i]`` of ``X``; None keeps the order.
    """

    def __init__(self, X, order=None):
        self.X, self.order = X, order
        self.shape = X.shape
        self.dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    def __getitem__(self, rows):
        if self.order is not None:
            rows = self.order[rows]
        block = np.asarray(self.X[rows], dtype=self.dtype)
        return l2_normalize_quiet(block)[0]


def linear_discriminant_proba(V, labels, weights, n_classes, *, shrinkage=None):
    """Class probabilities of a weighted linear discriminant (shared covariance).

    Fits Gaussian classes with weighted means ``m_c`` and a pooled,
    weighted within-class covariance ``S`` shrunk towards a multiple of the
    identity (Ledoit-Wolf intensity), then returns ``softmax_c(v^T S^-1 m_c
    - m_c^T S^-1 m_c / 2 + log pi_c)`` with ``pi_c`` the weighted class
    masses. A linear view of the data: it labels a row from directions of
    the feature space, where the propagation labels it from its
    neighbours.

    Parameters
    ----------
    V : ndarray of shape (n_samples, n_features)
        Feature rows.
    labels : ndarray of shape (n_samples,)
        Class index of each row, in ``[0, n_classes)``.
    weights : ndarray of shape (n_samples,)
        Non-negative weight of each row.
    n_classes : int
        Number of classes; a class without weight gets probability 0.
    shrinkage : float in [0, 1], default=None
        Shrinkage intensity of the covariance; None estimates it
        (Ledoit-Wolf, on at most 10,000 evenly spaced rows).

    Returns
    -------
    Q : ndarray of shape (n_samples, n_classes)
        Row-stochastic class probabilities.
    """
    model = _fit_discriminant(V, labels, weights, n_classes, shrinkage)
    Q = np.empty((V.shape[0], n_classes))
    for s in _row_blocks(V.shape[0]):
        Q[s] = _discriminant_proba(model, V[s])
    return Q


def discriminant_unit_rows(V, labels, weights, n_classes, *, shrinkage=None):
    """:func:`unit_rows` of :func:`linear_discriminant_proba`, computed in
    chunks of rows (float32, without the ``n x C`` float64 probabilities)."""
    model = _fit_discriminant(V, labels, weights, n_classes, shrinkage)
    Qn = np.empty((V.shape[0], n_classes), dtype=np.float32)

    def fn(s):
        Qn[s] = discriminant_unit_block(model, V[s])

    map_blocks(fn, _row_blocks(V.shape[0]))
    return Qn


def discriminant_unit_block(model, V):
    """:func:`unit_rows` of the probabilities of a :func:`_fit_discriminant`
    model for rows ``V``: the logits in float64 (their two terms can
    nearly cancel), the rest in float32 and without the softmax's
    normalisation, which the unit rows do not depend on (the same float32
    rows in 0.6x the time)."""
    if model[0] == "constant":
        return unit_rows(_discriminant_proba(model, V[:1])).repeat(V.shape[0], axis=0)
    Q = _shifted_logits(model, V).astype(np.float32)
    np.exp(Q, out=Q)  # the largest entry of each row is 1
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    return _on_classes(Q, model)


def _row_blocks(n_rows, rows=2**14):
    return [slice(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]


def _fit_discriminant(V, labels, weights, n_classes, shrinkage):
    """``(kind, ...)``: the constant probabilities of a degenerate fit, or
    the coefficients, offsets and present classes of the discriminant.
    ``O(n d^2)``: the class sums and the pooled covariance are
    accumulated over row chunks, in float64."""
    n_samples, n_features = V.shape
    weights = np.asarray(weights, dtype=np.float64)
    labels = np.asarray(labels)
    total = weights.sum()
    if not total > 0:
        return ("constant", np.full(n_classes, 1.0 / n_classes))
    w = weights / total
    mass = np.bincount(labels, weights=w, minlength=n_classes)
    present = np.flatnonzero(mass > 0)
    # the class sums, by chunks of rows in float64 (V may be float32)
    # (each block on its own, summed in block order)
    def class_sums(s):
        onehot = sp.csr_matrix(
            (w[s], (labels[s], np.arange(s.stop - s.start))),
            shape=(n_classes, s.stop - s.start),
        )
        return onehot @ np.asarray(V[s], dtype=np.float64)

    sums = np.zeros((n_classes, n_features))
    for part in map_blocks(class_sums, _row_blocks(n_samples, 2**16)):
        sums += part
    means = sums[present] / mass[present, None]
    position = np.full(n_classes, -1)
    position[present] = np.arange(present.size)

    def scatter(s):
        residual = V[s] - means[position[labels[s]]]
        return (residual * w[s, None]).T @ residual

    S = np.zeros((n_features, n_features))
    for part in map_blocks(scatter, _row_blocks(n_samples)):
        S += part
    # Ledoit-Wolf intensity on the residuals scaled so that their plain
    # covariance is the weighted one, estimated on a sample of rows
    if shrinkage is None and n_features > 1:
        # every row, or an evenly strided sample of them
        sample = slice(None, None, -(-n_samples // _SHRINKAGE_ROWS))
        residual = V[sample] - means[position[labels[sample]]]
        scaled = residual * np.sqrt(w[sample] * n_samples)[:, None]
        shrinkage = ledoit_wolf_shrinkage(scaled, assume_centered=True)
    elif shrinkage is None:
        shrinkage = 0.0
    return _discriminant_model(S, means, mass, present, shrinkage, n_classes)


def _discriminant_model(S, means, mass, present, shrinkage, n_classes):
    """The linear discriminant of the pooled within-class scatter ``S``
    (consumed), shrunk by ``shrinkage`` towards a multiple of the identity,
    the class ``means`` of the ``present`` classes and their ``mass``: a
    ``("linear", coef, offset, present, n_classes)`` model, or a
    ``("constant", priors)`` one when ``S`` is 0."""
    n_features = S.shape[0]
    scale = np.trace(S) / n_features
    if not scale > 0:
        Q = np.zeros(n_classes)
        Q[present] = mass[present] / mass[present].sum()
        return ("constant", Q)
    S *= 1.0 - shrinkage
    S.flat[:: n_features + 1] += (shrinkage + 1e-12) * scale
    coef = np.linalg.solve(S, means.T)  # (n_features, n_present)
    offset = np.log(mass[present]) - 0.5 * np.einsum("cf,fc->c", means, coef)
    return ("linear", coef, offset, present, n_classes)


def _discriminant_proba(model, V):
    """The probabilities of a :func:`_fit_discriminant` model for rows ``V``."""
    if model[0] == "constant":
        return np.tile(model[1], (V.shape[0], 1))
    Q = _shifted_logits(model, V)
    np.exp(Q, out=Q)
    Q /= Q.sum(axis=1, keepdims=True)
    return _on_classes(Q, model)


def _shifted_logits(model, V):
    """The logits of a linear :func:`_fit_discriminant` model for rows ``V``
    (float64), each row less its largest."""
    _, coef, offset, _, _ = model
    logits = np.asarray(V @ coef)
    logits += offset
    logits -= logits.max(axis=1, keepdims=True)
    return logits


def _on_classes(Q, model):
    """The columns ``Q`` of a linear model's present classes put in place
    among all its classes (zero columns for the others)."""
    _, _, _, present, n_classes = model
    if present.size == n_classes:
        return Q
    out = np.zeros((Q.shape[0], n_classes), dtype=Q.dtype)
    out[:, present] = Q
    return out


def control_negative_weights(W, F, *, scale_free=False):
    """The paper's 'Control' baseline: eq. 22 with ``Zt_ij`` replaced by the
    L1-normalised ``F_i`` (negatives clipped to 0) for every ``j``.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix (gives the edges).
    F : ndarray of shape (n_samples, n_classes)
        Label propagation solution.
    scale_free : bool, default=False
        Multiply each weight by the edge's affinity ``w_ij`` (as in
        :func:`hard_negative_weights`).

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
    """
    n_samples, n_classes = F.shape
    if n_classes < 2:
        return sp.csr_matrix((n_samples, n_samples))
    P, _ = normalize_distributions(F)
    rows, cols, w = _upper_edges(W)
    values = np.empty(rows.size)
    for s in _edge_chunks(rows.size, n_classes):
        values[s] = _dissimilarity(P[rows[s]], P[cols[s]])
        if scale_free:
            values[s] *= w[s]
    return _symmetric_from_upper(rows, cols, values, n_samples)


def mom_negative_weights(knn):
    """Mining on Manifolds negatives (Iscen et al. 2018).

    ``Wdis_ij = 1`` for pairs that are k-nearest neighbours in one
    direction only (kNN but not mutual kNN), 0 otherwise.

    Parameters
    ----------
    knn : sparse matrix of shape (n_samples, n_samples)
        Boolean kNN adjacency: ``knn[j, i] != 0`` when ``i`` is one of the
        ``k`` nearest neighbours of ``j``.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)
    """
    K = (sp.csr_matrix(knn) != 0).astype(np.float64)
    Wdis = drop_diagonal(abs(K - K.T).tocsr())
    Wdis.sort_indices()
    return Wdis


def check_negatives(negatives, n_samples):
    """Validate user-supplied negative edges and return ``Wdis``.

    Parameters
    ----------
    negatives : sparse matrix of shape (n_samples, n_samples) or array-like \
            of shape (n_pairs, 2) or (n_pairs, 3)
        Either a non-negative matrix of dissimilarity weights, or index pairs
        ``(i, j)`` with an optional weight column (default weight 1).
        Pairs listed more than once have their weights summed. The result
        is symmetrised as ``max(S, S^T)``, so each pair may be listed once.

    Returns
    -------
    Wdis : sparse CSR matrix of shape (n_samples, n_samples)

    Raises
    ------
    ValueError
        On a wrong shape, out-of-range or non-integer indices, self pairs,
        negative or non-finite weights.
    """
    if sp.issparse(negatives):
        S = sp.csr_matrix(negatives, dtype=np.float64)
        if S.shape != (n_samples, n_samples):
            raise ValueError(
                f"negatives must be a ({n_samples}, {n_samples}) matrix, one "
                f"row and column per sample; got shape {S.shape}."
            )
        S.sum_duplicates()
    else:
        pairs = np.asarray(negatives, dtype=np.float64)
        if pairs.size == 0:
            pairs = pairs.reshape(0, 2)
        if pairs.ndim != 2 or pairs.shape[1] not in (2, 3):
            raise ValueError(
                "negatives must be a sparse matrix or an array of (i, j) or "
                f"(i, j, weight) rows; got an array of shape {pairs.shape}."
            )
        ij = pairs[:, :2]
        if not np.all(np.isfinite(ij)) or np.any(ij != np.round(ij)):
            raise ValueError("negative pair indices must be integers.")
        ij = ij.astype(np.int64)
        if ij.size and (ij.min() < 0 or ij.max() >= n_samples):
            raise ValueError(
                f"negative pair indices must lie in [0, {n_samples - 1}]; got "
                f"values from {ij.min()} to {ij.max()}."
            )
        weights = pairs[:, 2] if pairs.shape[1] == 3 else np.ones(len(pairs))
        S = sp.csr_matrix((weights, (ij[:, 0], ij[:, 1])), shape=(n_samples, n_samples))
    if not np.all(np.isfinite(S.data)):
        raise ValueError("negatives contain NaN or infinite weights.")
    if S.nnz and S.data.min() < 0:
        raise ValueError("negatives must have non-negative weights.")
    if np.any(S.diagonal() != 0):
        raise ValueError(
            "negatives contain a self pair (i, i): a sample cannot be its own negative."
        )
    Wdis = S.maximum(S.T).tocsr()
    Wdis.eliminate_zeros()
    Wdis.sort_indices()
    return Wdis
