"""Retrieval and clustering metrics for learned embeddings.

The retrieval metrics (:func:`recall_at_k`, :func:`precision_at_k`,
:func:`r_precision`, :func:`map_at_r`) treat every sample in turn as a query
and rank all *other* samples by their distance to it. The query itself is
excluded by index, never by distance, so exact duplicates of a query count as
ordinary neighbours.

Neighbours are searched in blocks of ``batch_size`` queries, so the full
``n_samples x n_samples`` distance matrix is never materialised; the largest
number of neighbours any requested quantity needs is searched only once.

Ties in distance are broken by sample index (smaller index first) with the
``"numpy"`` backend. The ``"faiss"`` backend searches in single precision
and may break ties (and near-ties) differently.

:func:`neighbor_recall` checks an approximate neighbour search (the graph
backends ``'faiss'`` above 50,000 rows and ``'pynndescent'``) against
exact search on sampled rows.
"""

import inspect
import numbers

import numpy as np
from sklearn import get_config
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils import check_array, check_consistent_length, column_or_1d

from ._graph import neighbor_recall
from ._utils import import_optional, is_installed, safe_row_norms, unlabeled_mask

__all__ = [
    "make_retrieval_scorer",
    "map_at_r",
    "neighbor_recall",
    "nmi_score",
    "precision_at_k",
    "r_precision",
    "recall_at_k",
]

_METRICS = ("cosine", "euclidean")
_BACKENDS = ("auto", "numpy", "faiss")


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------


def _check_X_y(X, y):
    """Validate embeddings and labels; return ``X``, encoded labels, counts."""
    X = check_array(
        X,
        dtype=[np.float64, np.float32],
        ensure_min_samples=2,
        input_name="X",
    )
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    _, y_enc, counts = np.unique(y, return_inverse=True, return_counts=True)
    return X, y_enc.ravel(), counts


def _check_options(metric, backend, batch_size):
    if metric not in _METRICS:
        raise ValueError(
            f"Unknown metric {metric!r}; expected one of {list(_METRICS)}."
        )
    if backend not in _BACKENDS:
        raise ValueError(
            f"Unknown backend {backend!r}; expected one of {list(_BACKENDS)}."
        )
    if batch_size is not None and (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(
            f"batch_size must be a positive integer or None, got {batch_size!r}."
        )


def _check_k(k, n_samples):
    """Return ``(ks, is_scalar)`` with every ``k`` in ``[1, n_samples - 1]``."""
    is_scalar = isinstance(k, (numbers.Number, str, bytes)) or np.ndim(k) == 0
    ks = [k] if is_scalar else list(k)
    if not ks:
        raise ValueError("k must be a positive integer or a non-empty sequence.")
    for value in ks:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"k must be an integer, got {value!r}.")
        if value < 1:
            raise ValueError(f"k must be >= 1, got k={value}.")
        if value >= n_samples:
            raise ValueError(
                f"k={value} must be smaller than n_samples={n_samples}: each "
                f"query has only n_samples - 1 = {n_samples - 1} other items."
            )
    return [int(value) for value in ks], is_scalar


def _resolve_backend(backend):
    if backend == "faiss":
        import_optional("faiss", "backend='faiss'")
        return "faiss"
    if backend == "auto":
        return "faiss" if is_installed("faiss") else "numpy"
    return "numpy"


def _auto_batch_size(n_samples, k, itemsize):
    """Rows per block so that one block fits in sklearn's working memory."""
    # One row of the distance block, the argpartition indices and the
    # per-query relevance/cumulative-sum arrays of width k.
    row_bytes = n_samples * (itemsize + 8) + 24 * k
    budget = get_config()["working_memory"] * 2**20
    return int(max(1, min(n_samples, budget // max(row_bytes, 1))))


# ---------------------------------------------------------------------------
# Blocked exact k-nearest-neighbour search (query itself excluded)
# ---------------------------------------------------------------------------


def _numpy_block(Xn, sq_norms, queries, k, metric):
    """k nearest other rows of ``Xn`` for the rows ``queries``, sorted."""
    rows = np.arange(len(queries))
    # Smaller "key" means closer. For cosine the rows are L2-normalised and
    # the key is the negated dot product; for euclidean the key is
    # ||x||^2 - 2 <q, x>, i.e. the squared distance minus the constant ||q||^2.
    D = Xn[queries] @ Xn.T
    if metric == "cosine":
        np.negative(D, out=D)
    else:
        D *= -2.0
        D += sq_norms
    D[rows, queries] = np.inf  # exclude the query itself, by index

    cand = np.argpartition(D, k - 1, axis=1)[:, :k]
    cand_d = np.take_along_axis(D, cand, axis=1)
    order = np.lexsort((cand, cand_d), axis=-1)  # by key, then by index
    cand = np.take_along_axis(cand, order, axis=1)
    cand_d = np.take_along_axis(cand_d, order, axis=1)

    # argpartition picks arbitrarily among keys tied with the k-th one;
    # redo those (rare) rows with a stable sort so ties go by index.
    kth = cand_d[:, -1:]
    n_tied = np.count_nonzero(D == kth, axis=1)
    n_tied_kept = np.count_nonzero(cand_d == kth, axis=1)
    for r in np.flatnonzero(n_tied > n_tied_kept):
        cand[r] = np.argsort(D[r], kind="stable")[:k]
    return cand


def _faiss_block(index, Xq, queries, k):
    """k nearest other rows from a faiss index, query excluded by index."""
    _, ind = index.search(Xq[queries], k + 1)
    is_self = ind == queries[:, None]
    keep = ~is_self
    # Rows where the query was not among the k + 1 results (many exact
    # duplicates): drop the farthest result instead.
    keep[~is_self.any(axis=1), -1] = False
    return ind[keep].reshape(len(queries), k).astype(np.intp, copy=False)


def _unit_rows(X):
    """The rows of ``X`` divided by their norms (all-zero rows stay zero).

    Rows of huge or tiny entries, whose norms overflow or underflow, are
    scaled by a power of two first (see :func:`safe_row_norms`)."""
    norms, scale = safe_row_norms(X)
    norms = norms[:, None]
    rescaled = np.flatnonzero(scale != 1)
    if not rescaled.size:
        return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)
    Xn = np.zeros_like(X)
    plain = np.flatnonzero((scale == 1) & (norms[:, 0] > 0))
    Xn[plain] = X[plain] / norms[plain].astype(X.dtype)
    block = X[rescaled].astype(np.float64) * scale[rescaled][:, None]
    Xn[rescaled] = block / norms[rescaled]
    return Xn


def _rescaled(X):
    """``X`` times a power of two that keeps its squared distances finite
    and non-zero (Euclidean rankings do not depend on a common scale);
    ``X`` itself when no rescaling is needed."""
    amax = float(np.abs(X).max(initial=0.0))
    _, exponent = np.frexp(amax)
    limit = 400 if X.dtype == np.float64 else 50
    if amax == 0 or -limit <= exponent <= limit:
        return X
    factor = np.ldexp(1.0, min(-int(exponent), 1000))
    return (X.astype(np.float64) * factor).astype(X.dtype)


def _iter_kneighbors(X, k, queries, *, metric, batch_size, backend):
    """Yield ``(query_block, neighbours)`` blocks of the exact k-NN search.

    ``neighbours[i]`` holds the indices of the ``k`` rows of ``X`` nearest
    to ``X[query_block[i]]``, nearest first, ``query_block[i]`` excluded.
    """
    n_samples = X.shape[0]
    backend = _resolve_backend(backend)
    if batch_size is None:
        batch_size = _auto_batch_size(n_samples, k, X.dtype.itemsize)

    Xn = _unit_rows(X) if metric == "cosine" else _rescaled(X)

    if backend == "faiss":
        faiss = import_optional("faiss", "backend='faiss'")
        Xq = np.ascontiguousarray(Xn, dtype=np.float32)
        index_cls = faiss.IndexFlatIP if metric == "cosine" else faiss.IndexFlatL2
        index = index_cls(Xq.shape[1])
        index.add(Xq)
        for start in range(0, len(queries), batch_size):
            block = queries[start : start + batch_size]
            yield block, _faiss_block(index, Xq, block, k)
    else:
        sq_norms = np.einsum("ij,ij->i", Xn, Xn) if metric == "euclidean" else None
        for start in range(0, len(queries), batch_size):
            block = queries[start : start + batch_size]
            yield block, _numpy_block(Xn, sq_norms, block, k, metric)


def _relevance_blocks(X, y_enc, k, queries, metric, batch_size, backend):
    """Yield ``(query_block, rel)`` with ``rel[i, j]`` = j-th neighbour relevant."""
    _check_options(metric, backend, batch_size)
    for block, ind in _iter_kneighbors(
        X, k, queries, metric=metric, batch_size=batch_size, backend=backend
    ):
        yield block, y_enc[ind] == y_enc[block][:, None]


# ---------------------------------------------------------------------------
# Retrieval metrics
# ---------------------------------------------------------------------------

_COMMON_PARAMS = """\
    metric : {"cosine", "euclidean"}, default="cosine"
        Distance used to rank the other samples. ``"cosine"`` L2-normalises
        the rows (an all-zero row stays zero) and ranks by dot product.
        Rows of huge or tiny values (beyond about 1e150 or 1e-150) are
        rescaled exactly by a power of two first, so their norms and
        distances do not overflow or underflow.
    batch_size : int or None, default=None
        Number of queries searched per block. ``None`` picks the largest
        block that fits in scikit-learn's ``working_memory`` setting.
        With the numpy backend the result does not depend on it.
    backend : {"auto", "numpy", "faiss"}, default="auto"
        Exact neighbour search implementation. ``"auto"`` uses faiss
        (``IndexFlatIP`` / ``IndexFlatL2``) when it is installed and numpy
        otherwise. With numpy, ties in distance are broken by sample index;
        faiss computes in float32 and may break ties differently."""


def _add_common_params(func):
    if func.__doc__:  # None under python -OO
        func.__doc__ = func.__doc__.replace("    {common_params}", _COMMON_PARAMS)
    return func


@_add_common_params
def recall_at_k(X, y, k=1, *, metric="cosine", batch_size=None, backend="auto"):
    """Recall@k: fraction of queries with a same-class item among their k-NN.

    Eq. (34) of Zhuang & Moulin (CVPR 2023). Every sample is used as a query;
    it is a hit when at least one of its ``k`` nearest *other* samples (the
    query itself is excluded by index, so duplicates of it do count) has the
    query's label. Queries whose class has no other member are counted as
    misses.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    y : array-like of shape (n_samples,)
        Class labels.
    k : int or sequence of int, default=1
        Number of neighbours, ``1 <= k < n_samples``. With a sequence the
        neighbours are searched once, for the largest ``k``.
    {common_params}

    Returns
    -------
    recall : float or dict
        Recall@k in ``[0, 1]``; a dict ``{k: recall}`` when ``k`` is a
        sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.metrics import recall_at_k
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> recall_at_k(X, y, k=1, metric="euclidean")
    0.75
    >>> recall_at_k(X, y, k=[1, 3], metric="euclidean")
    {1: 0.75, 3: 1.0}
    """
    X, y_enc, _ = _check_X_y(X, y)
    n_samples = X.shape[0]
    ks, is_scalar = _check_k(k, n_samples)
    k_max = max(ks)
    hits = dict.fromkeys(ks, 0)
    queries = np.arange(n_samples)
    for _, rel in _relevance_blocks(
        X, y_enc, k_max, queries, metric, batch_size, backend
    ):
        first = np.where(rel.any(axis=1), rel.argmax(axis=1), k_max)
        for kk in ks:
            hits[kk] += int(np.count_nonzero(first < kk))
    result = {kk: hits[kk] / n_samples for kk in ks}
    return result[ks[0]] if is_scalar else result


@_add_common_params
def precision_at_k(X, y, k=8, *, metric="cosine", batch_size=None, backend="auto"):
    """Precision@k: mean fraction of the k-NN sharing the query's label.

    Eq. (35) of Zhuang & Moulin (CVPR 2023):
    ``P@k = mean_q |{j in kNN(q) : y_j = y_q}| / k``, where ``kNN(q)`` are
    the ``k`` nearest samples other than ``q`` itself (excluded by index).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    y : array-like of shape (n_samples,)
        Class labels.
    k : int or sequence of int, default=8
        Number of neighbours, ``1 <= k < n_samples``. With a sequence the
        neighbours are searched once, for the largest ``k``.
    {common_params}

    Returns
    -------
    precision : float or dict
        Precision@k in ``[0, 1]``; a dict ``{k: precision}`` when ``k`` is
        a sequence.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.metrics import precision_at_k
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> precision_at_k(X, y, k=2, metric="euclidean")
    0.375
    """
    X, y_enc, _ = _check_X_y(X, y)
    n_samples = X.shape[0]
    ks, is_scalar = _check_k(k, n_samples)
    k_max = max(ks)
    n_relevant = dict.fromkeys(ks, 0)
    queries = np.arange(n_samples)
    for _, rel in _relevance_blocks(
        X, y_enc, k_max, queries, metric, batch_size, backend
    ):
        cumulative = np.cumsum(rel, axis=1)
        for kk in ks:
            n_relevant[kk] += int(cumulative[:, kk - 1].sum())
    result = {kk: n_relevant[kk] / (kk * n_samples) for kk in ks}
    return result[ks[0]] if is_scalar else result


def _r_metrics(X, y, metric, batch_size, backend, *, average_precision):
    """Shared implementation of R-precision and MAP@R."""
    X, y_enc, counts = _check_X_y(X, y)
    R = counts[y_enc] - 1  # number of other items of the query's class
    queries = np.flatnonzero(R > 0)
    if queries.size == 0:
        raise ValueError(
            "Every class has a single sample, so no query has a relevant "
            "item and the metric is undefined."
        )
    r_max = int(R.max())
    # Per-query scores, summed once at the end so that the result does not
    # depend on the batch size (not even in the last bit).
    scores = np.zeros(X.shape[0])
    for block, rel in _relevance_blocks(
        X, y_enc, r_max, queries, metric, batch_size, backend
    ):
        R_block = R[block]
        rel &= np.arange(r_max) < R_block[:, None]  # keep the first R only
        if average_precision:
            cumulative = np.cumsum(rel, axis=1)
            precision_at_i = cumulative / np.arange(1, r_max + 1)
            score = np.where(rel, precision_at_i, 0.0).sum(axis=1)
        else:
            score = np.count_nonzero(rel, axis=1)
        scores[block] = score / R_block
    return float(np.mean(scores[queries]))


@_add_common_params
def r_precision(X, y, *, metric="cosine", batch_size=None, backend="auto"):
    """R-precision: precision at R, R = number of other items of the class.

    For a query ``q`` whose class has ``R`` other members, R-precision is the
    fraction of its ``R`` nearest other samples that share its label. The
    score is the mean over queries; queries whose class has no other member
    (``R = 0``) are skipped. Only ``max(R)`` neighbours are searched, once.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    y : array-like of shape (n_samples,)
        Class labels. At least one class needs two or more samples.
    {common_params}

    Returns
    -------
    r_precision : float
        Mean R-precision in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.metrics import r_precision
    >>> X = np.array([[0.0], [1.0], [3.0], [7.0]])
    >>> y = np.array([0, 0, 1, 1])
    >>> r_precision(X, y, metric="euclidean")
    0.75
    """
    return _r_metrics(X, y, metric, batch_size, backend, average_precision=False)


@_add_common_params
def map_at_r(X, y, *, metric="cosine", batch_size=None, backend="auto"):
    """MAP@R: mean average precision at R (Musgrave et al., 2020).

    As defined in "A Metric Learning Reality Check" (Musgrave, Belongie &
    Lim, ECCV 2020): for a query with ``R`` other items of its class,

    ``MAP@R = (1 / R) * sum_{i=1}^{R} P(i) * rel(i)``

    where ``rel(i)`` is 1 when the ``i``-th nearest other sample shares the
    query's label and ``P(i)`` is the precision among the first ``i``
    neighbours. The score is the mean over queries; queries with ``R = 0``
    are skipped.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    y : array-like of shape (n_samples,)
        Class labels. At least one class needs two or more samples.
    {common_params}

    Returns
    -------
    map_at_r : float
        Mean MAP@R in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.metrics import map_at_r
    >>> X = np.array([[0.0], [1.0], [2.4], [4.0], [6.0]])
    >>> y = np.array([0, 1, 0, 0, 1])
    >>> round(map_at_r(X, y, metric="euclidean"), 4)
    0.2
    """
    return _r_metrics(X, y, metric, batch_size, backend, average_precision=True)


# ---------------------------------------------------------------------------
# Clustering metric
# ---------------------------------------------------------------------------


def nmi_score(X, y, *, n_clusters=None, random_state=None):
    """NMI between the labels and a k-means clustering of the embeddings.

    Eq. (30) of Zhuang & Moulin (CVPR 2023):
    ``NMI = 2 I(Y; C) / (H(Y) + H(C))``, where ``C`` are the assignments of
    ``KMeans(n_clusters, n_init=10)`` fitted on ``X``. Computed with
    :func:`sklearn.metrics.normalized_mutual_info_score` (arithmetic
    average, which is eq. 30).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Embeddings.
    y : array-like of shape (n_samples,)
        Class labels.
    n_clusters : int or None, default=None
        Number of k-means clusters; ``None`` uses the number of classes.
    random_state : int, RandomState instance or None, default=None
        Seed of k-means, for reproducible scores.

    Returns
    -------
    nmi : float
        Normalised mutual information in ``[0, 1]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.metrics import nmi_score
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> nmi_score(X, [0, 0, 1, 1], random_state=0)
    1.0
    """
    X, y_enc, counts = _check_X_y(X, y)
    if n_clusters is None:
        n_clusters = len(counts)
    if (
        not isinstance(n_clusters, numbers.Integral)
        or isinstance(n_clusters, bool)
        or not 1 <= n_clusters <= X.shape[0]
    ):
        raise ValueError(
            f"n_clusters must be an integer in [1, n_samples={X.shape[0]}], "
            f"got {n_clusters!r}."
        )
    clusters = KMeans(
        n_clusters=int(n_clusters), n_init=10, random_state=random_state
    ).fit_predict(_rescaled(X))
    return float(
        normalized_mutual_info_score(y_enc, clusters, average_method="arithmetic")
    )


# ---------------------------------------------------------------------------
# Scorer for model selection
# ---------------------------------------------------------------------------

_SCORE_FUNCS = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "map_at_r": map_at_r,
    "r_precision": r_precision,
    "nmi": nmi_score,
}


class _RetrievalScorer:
    """Picklable ``scorer(estimator, X, y)`` built by make_retrieval_scorer."""

    def __init__(self, name, kwargs):
        self.name = name
        self.kwargs = kwargs

    def __call__(self, estimator, X, y, **_ignored):
        if y is None:
            raise ValueError(f"The {self.name!r} retrieval scorer needs the labels y.")
        embedding = estimator.transform(X)
        y = column_or_1d(y, warn=True)
        check_consistent_length(embedding, y)
        keep = ~unlabeled_mask(y)
        return float(_SCORE_FUNCS[self.name](embedding[keep], y[keep], **self.kwargs))

    def __repr__(self):
        args = "".join(f", {key}={value!r}" for key, value in self.kwargs.items())
        return f"make_retrieval_scorer(metric={self.name!r}{args})"


def make_retrieval_scorer(metric="recall", *, distance=None, **kwargs):
    """Scorer evaluating a transformer's embeddings with a retrieval metric.

    The returned callable ``scorer(estimator, X, y)`` computes
    ``estimator.transform(X)``, drops the rows whose label is ``-1``
    (unlabeled, the semi-supervised convention) and returns the chosen
    metric of the remaining embeddings. It can be passed as ``scoring=`` to
    :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score`, etc. Greater is
    better for every metric.

    Parameters
    ----------
    metric : {"recall", "precision", "map_at_r", "r_precision", "nmi"}, \
default="recall"
        Metric: :func:`recall_at_k`, :func:`precision_at_k`,
        :func:`map_at_r`, :func:`r_precision` or :func:`nmi_score`.
    distance : {"cosine", "euclidean"} or None, default=None
        Passed as ``metric=`` to the retrieval functions (``None`` keeps
        their default, ``"cosine"``). Not accepted for ``"nmi"``.
    **kwargs
        Further keyword arguments of the metric function, e.g. ``k=5``,
        ``backend="numpy"`` or ``random_state=0``. ``k`` must be a single
        integer, since a scorer returns one number.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.model_selection import cross_val_score
    >>> from sklearn_mixedlp.metrics import make_retrieval_scorer
    >>> X, y = load_digits(return_X_y=True)
    >>> scorer = make_retrieval_scorer("recall", k=1, distance="euclidean")
    >>> scores = cross_val_score(PCA(n_components=8), X, y, scoring=scorer)
    >>> scores.shape
    (5,)
    """
    if metric not in _SCORE_FUNCS:
        raise ValueError(
            f"Unknown retrieval scorer metric {metric!r}; expected one of "
            f"{sorted(_SCORE_FUNCS)}."
        )
    func = _SCORE_FUNCS[metric]
    kwargs = dict(kwargs)
    if distance is not None:
        if metric == "nmi":
            raise ValueError("distance is not used by the 'nmi' scorer.")
        kwargs["metric"] = distance
    # Fail now, not in the middle of a grid search, on unknown arguments.
    inspect.signature(func).bind(None, None, **kwargs)
    if "k" in kwargs and not isinstance(kwargs["k"], numbers.Integral):
        raise TypeError(
            f"k must be a single integer for a scorer, got {kwargs['k']!r}."
        )
    if "metric" in kwargs:
        _check_options(kwargs["metric"], kwargs.get("backend", "auto"), None)
    return _RetrievalScorer(metric, kwargs)
