"""kNN affinity graphs (eq. 15 of Zhuang & Moulin, CVPR 2023).

Data flows one way through this module::

    X --l2_normalize--> V --NeighborIndex.self_kneighbors--> (sim, idx)
      --knn_affinity--> A --symmetrize--> W = A + A^T

Every neighbour-search backend sits behind :class:`NeighborIndex`: ``fit`` on
the normalised training rows, ``kneighbors`` for new rows and
``self_kneighbors`` for the training rows themselves (self excluded).
Similarities are inner products of L2-normalised rows (cosine similarity).
"""

import contextlib
import functools
import sys
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_params,
)

from . import _kernels
from ._utils import (
    _NORM_CHUNK_ENTRIES,
    available_cores,
    check_cuda_device,
    check_device,
    cuda_available,
    import_optional,
    is_cuda,
    is_installed,
    map_rows,
    map_threads,
    progress_bar,
    safe_row_norms,
    thread_count,
)

KNN_BACKENDS = ("auto", "exact", "torch", "faiss", "pynndescent", "precomputed")

# Above this many training rows the faiss backend switches from the exact
# IndexFlatIP to an approximate IndexIVFFlat. On all 70,000 Fashion-MNIST
# images (50 principal components, k = 50, 2 cores) IVF takes 2.2 s at
# recall@50 0.996 against 9.2 s for the exact index.
FAISS_EXACT_MAX_SAMPLES = 50_000
# Approximate index above the threshold: IndexIVFFlat (inner product,
# spherical k-means on FAISS_IVF_TRAIN_PER_LIST rows per list,
# FAISS_IVF_KMEANS_ITER iterations), nlist = 2 sqrt(N), nprobe = 20.
# Chosen by measuring the self kNN (k = 50) of make_sphere_mixture (100
# classes, 64 dimensions) on 2 CPU cores (shared with other jobs, so wall
# times are pessimistic; the k-means then had 64 rows per list and 10
# iterations): at 1M rows,
# build 32 s, search 195 s wall / 111 s CPU, recall@50 0.946; nlist 4096
# needed nprobe 32 for recall 0.92 and trained 3x longer; nprobe 16 gave
# recall 0.91-0.92. HNSW (M 32, efConstruction 80) at 200k rows: build 81 s,
# search 84 s at recall 0.947 (efSearch 64), against 7 s + 18 s for IVF
# (nlist 1024, nprobe 16) at recall 0.946: IVF wins. At a fixed nprobe the
# recall drops with N on this data (real embeddings are usually easier).
# The k-means: 40 rows per list (faiss asks for at least 39) and 6
# iterations train in 0.4x the work of 64 rows and 10 iterations at the
# same recall@10 (two seeds: 1M sphere rows 0.966-0.969 against 0.963;
# Fashion-MNIST pixels 0.997 and 50 principal components 0.998 both ways),
# 1.8 s against 2.5-4.3 s at 1M rows.
FAISS_IVF_LISTS_PER_SQRT_N = 2
FAISS_IVF_NPROBE = 20
FAISS_IVF_TRAIN_PER_LIST = 40
FAISS_IVF_KMEANS_ITER = 6
# Query rows per faiss search call of the IVF index (a gathered copy of
# this many rows at a time).
_FAISS_QUERY_CHUNK = 2**16
# The list-by-list search of an IVF index (numba): the queries are split
# into this many contiguous groups, one thread per group at a time, and
# each matrix product of a list with its bucket of queries holds at most
# _IVF_BLOCK_ENTRIES similarities (4 MiB of float32, in cache).
_IVF_QUERY_GROUPS = 8
_IVF_BLOCK_ENTRIES = 2**20
# Stored entries per row range of the compiled graph assembly (symmetrize,
# permute_symmetric), one range per thread at a time.
_GRAPH_ROW_ENTRIES = 2**20
# The compiled assembly counts each stored entry as this many entry-columns
# of the solves' work (see _kernels.MIN_WORK): it runs from 4 million
# stored entries, where scipy's A + A^T and reorderings take about as long
# as loading the kernels from numba's cache. On a 1M-row, 10-neighbour
# graph (20 million stored entries) it takes A + A^T from 1.14 to 0.67 s,
# a reordering from 0.71 to 0.52 s and one with values (the output's) from
# 1.94 to 0.61 s.
_ASSEMBLY_WORK_PER_ENTRY = 4
# Extra NNDescent arguments. pynndescent's defaults (n_trees and n_iters
# growing with N) are kept: on the same data (k = 50, 2 shared cores) they
# give recall@50 0.968 at 100k rows (25 s CPU, about 30 s wall) and 0.962 at
# 300k (83 s CPU, 125 s wall); n_trees 8 with max_candidates 30 saved only
# 6-15% for recall 0.955 / 0.946, and n_trees 4, n_iters 4, max_candidates
# 20 fell to 0.896.
PYNNDESCENT_PARAMS = {}
# Below this many training rows ``'auto'`` uses exact search when faiss is
# not installed (blocked BLAS is then fast enough); above, pynndescent when
# installed. Measured on the sphere mixture (64 dimensions, k = 10, 2 shared
# cores): exact search takes 84 s at 50,000 rows and 328 s at 100,000, while
# pynndescent takes about 30 s at 100,000 rows plus its numba compilation
# (about 50 s in a new environment, 20 s once numba's disk cache holds it).
EXACT_AUTO_MAX_SAMPLES = 50_000
# Number of similarity entries (rows x columns) computed per block by the
# exact backend: bounds its working memory to about 8 * _BLOCK_ENTRIES bytes.
_BLOCK_ENTRIES = 2**23


def l2_normalize(X):
    """Scale each row of ``X`` to unit Euclidean norm.

    Rows of huge or tiny entries (whose squares would overflow or
    underflow) are first scaled by a power of two, so that any finite
    non-zero row is normalised correctly.

    A zero row cannot be normalised: it stays zero, so it has similarity 0
    to every row and gets no edge in the graph (an isolated sample), and a
    warning names it.

    Parameters
    ----------
    X : {ndarray, sparse matrix, LiftedRows} of shape (n_samples, n_features)
        Finite feature matrix.

    Returns
    -------
    V : {ndarray, sparse CSR matrix} of shape (n_samples, n_features)
        Row-normalised copy of ``X`` (same dtype; an ndarray for
        :class:`LiftedRows`).
    zero : ndarray of shape (n_samples,)
        Boolean mask of the zero rows.
    """
    if isinstance(X, LiftedRows):
        return X.unit_rows()
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    norms, scale = safe_row_norms(X)
    zero = norms == 0
    if zero.any():
        rows = np.flatnonzero(zero)
        shown = ", ".join(map(str, rows[:10])) + (" ..." if rows.size > 10 else "")
        warnings.warn(
            f"{rows.size} row(s) of X have zero norm and cannot be "
            f"L2-normalised (rows {shown}). They are treated as isolated "
            "samples without neighbours: an unlabeled one gets the uniform "
            "distribution with confidence 0.",
            UserWarning,
        )
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=~zero)
    rescaled = np.flatnonzero(scale != 1)
    # rows of huge or tiny entries: 1 / norm would not be representable
    inv[rescaled] = 1.0
    inv = inv.astype(X.dtype, copy=False)
    if sp.issparse(X):
        V = sp.csr_matrix(sp.diags(inv) @ X)
        if rescaled.size:
            # V holds these rows unscaled (inv 1): exact power-of-two
            # scaling first, then 1 / norm, in float64
            row = np.repeat(np.arange(X.shape[0]), np.diff(V.indptr))
            hit = scale[row] != 1
            row = row[hit]
            values = V.data[hit].astype(np.float64) * scale[row]
            V.data[hit] = (values / norms[row]).astype(V.dtype)
        return V, zero
    V = X * inv[:, None]
    if rescaled.size:
        block = X[rescaled].astype(np.float64) * scale[rescaled][:, None]
        V[rescaled] = block / norms[rescaled][:, None]
    return V, zero


def row_norm_sums(X):
    """The largest row norm of ``X``, the sum of the squared row norms in
    units of it and the smallest row norm (float64, without overflow or
    underflow): the parts of :func:`rms_row_norm` and :func:`lift_height`,
    which chunks of rows can compute apart."""
    norms, scale = safe_row_norms(X)
    norms = np.asarray(norms, dtype=np.float64) / scale
    largest = norms.max(initial=0.0)
    smallest = norms.min(initial=np.inf)
    total = float(np.sum((norms / largest) ** 2)) if largest > 0 else 0.0
    return largest, total, smallest


def rms_row_norm(parts, n_rows):
    """The root-mean-square row norm of ``n_rows`` rows from the
    :func:`row_norm_sums` of the chunks that hold them (0 when every row is
    zero)."""
    largest = max((part[0] for part in parts), default=0.0)
    if not largest > 0:
        return 0.0
    return largest * np.sqrt(
        sum(part[1] * (part[0] / largest) ** 2 for part in parts) / n_rows
    )


# Rows whose norms all lie within this relative distance of each other
# (float32 rounding of normalised rows is about 1e-7) are not lifted.
_ONE_NORM_RTOL = 1e-6


def lift_height(parts, n_rows, lift):
    """The constant ``c`` of ``lift`` (``lift`` times the root-mean-square
    row norm) from the :func:`row_norm_sums` of the chunks of rows; 0 when
    every row has the same norm (within ``_ONE_NORM_RTOL``): the lift
    would leave their graph as it is (see :func:`lift_rows`) and only cost
    a coordinate."""
    largest = max((part[0] for part in parts), default=0.0)
    smallest = min((part[2] for part in parts), default=0.0)
    if lift == 0 or smallest >= largest * (1.0 - _ONE_NORM_RTOL):
        return 0.0
    return float(lift * rms_row_norm(parts, n_rows))


def lift_rows(X, lift, height=None, lazy=False):
    """Append a constant coordinate to every row of ``X``.

    The rows ``x`` become ``(x, c)``: on the unit sphere (after
    :func:`l2_normalize`) their similarity is ``(x^T z + c^2) /
    sqrt((|x|^2 + c^2)(|z|^2 + c^2))``. With ``c = 0`` this is the cosine of
    the rows; as ``c`` grows it tends to ``1 - |x - z|^2 / (2 c^2)``, the
    Euclidean geometry of the rows. Rows of equal norm keep their cosine
    order of neighbours and their self-tuning weights whatever ``c``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Finite float32 or float64 rows.
    lift : float
        ``c`` in units of the root-mean-square row norm of ``X``.
    height : float, default=None
        ``c`` itself (the value returned by an earlier call, to lift new
        rows as the training rows were); None computes it from ``X``.
    lazy : bool, default=False
        For a dense ``X``, return a :class:`LiftedRows` view that lifts the
        rows as they are read instead of a copy.

    Returns
    -------
    X_lifted : {ndarray, sparse CSR matrix, LiftedRows} of shape \
            (n_samples, n_features + 1)
        A copy of ``X`` with the column ``c`` appended (same dtype), or its
        lazy view; ``X`` itself when ``c`` is 0 (``lift=0``, or every row of
        one norm, zero rows included: see :func:`lift_height`): a zero column
        changes no similarity, and the rows are lifted exactly when the
        returned ``c`` is positive.
    height : float
        ``c``.
    """
    if height is None:
        height = lift_height([row_norm_sums(X)], X.shape[0], lift)
    if not height <= float(np.finfo(X.dtype).max):
        raise ValueError(
            f"lift={lift!r}: the lifted coordinate ({height:.3g}, lift times the "
            f"root-mean-square row norm) overflows {X.dtype}. Rescale X (the "
            "graph does not depend on a common scale of the rows)."
        )
    if height == 0:
        return X, height
    if sp.issparse(X):
        column = np.full((X.shape[0], 1), height, dtype=X.dtype)
        return sp.hstack([sp.csr_matrix(X), column], format="csr", dtype=X.dtype), height
    lifted = LiftedRows(X, height)
    return (lifted if lazy else lifted[:]), height


class LiftedRows:
    """The rows of a dense ``X`` with the constant ``height`` appended, as
    :func:`lift_rows` gives them, lifted as they are read: no ``n x (d + 1)``
    copy of ``X`` (a memory-mapped ``X`` is read in place, by chunks).

    Indexing by rows (a slice or an index array) gives those rows of
    ``lift_rows(X, None, height)[0]``; :func:`l2_normalize` normalises them
    by chunks of rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Finite float32 or float64 rows.
    height : float
        The appended constant ``c`` (positive).
    """

    def __init__(self, X, height):
        self.X, self.height = X, height
        self.shape = (X.shape[0], X.shape[1] + 1)
        self.dtype = X.dtype
        self.ndim = 2

    def __getitem__(self, rows):
        block = self.X[rows]
        lifted = np.empty((block.shape[0], self.shape[1]), dtype=self.dtype)
        lifted[:, :-1] = block
        lifted[:, -1] = self.height
        return lifted

    def unit_rows(self):
        """The L2-normalised lifted rows (an array) and the mask of zero
        rows (none: every lifted row has the coordinate ``c``)."""
        V = np.empty(self.shape, dtype=self.dtype)
        step = max(1, _NORM_CHUNK_ENTRIES // self.shape[1])
        for start in range(0, self.shape[0], step):
            V[start : start + step] = l2_normalize(self[start : start + step])[0]
        return V, np.zeros(self.shape[0], dtype=bool)


def _top_k(S, k):
    """Indices and values of the ``k`` largest entries of each row of ``S``,
    sorted by decreasing value (ties broken by column index)."""
    part = np.argpartition(-S, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(S, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return np.take_along_axis(S, idx, axis=1), idx


def _dense_block(M):
    return M.toarray() if sp.issparse(M) else np.asarray(M)


def _drop_self(sim, idx, k, rows=None):
    """Remove each row's own index from a ``k + 1`` neighbour list.

    Row ``r`` of ``idx`` lists neighbours of training row ``rows[r]``
    (default ``r``). If that row appears, it is removed; otherwise (an
    exact duplicate outranked it) the last neighbour is dropped.
    """
    n = idx.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows)
    is_self = idx == rows[:, None]
    # Drop the self entry, or the last column when self was not returned.
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), idx.shape[1] - 1)
    keep = np.ones(idx.shape, dtype=bool)
    keep[np.arange(n), drop] = False
    return sim[keep].reshape(n, k), idx[keep].reshape(n, k)


class NeighborIndex:
    """Maximum-inner-product neighbour search on L2-normalised rows.

    One small interface over several backends; the fitted index can be
    pickled (faiss indexes are serialised to bytes, the torch backend keeps
    numpy rows, so an index fitted on a GPU loads on a machine without one).

    Parameters
    ----------
    backend : {'exact', 'torch', 'faiss', 'pynndescent'}, default='exact'
        ``'exact'``: blocked brute force with numpy (dense or sparse rows).
        ``'torch'``: blocked brute force with torch on ``device`` (float32,
        dense rows). ``'faiss'``: ``IndexFlatIP`` up to
        ``exact_max_samples`` rows, an approximate ``IndexIVFFlat`` above
        (searched list by list with matrix products and compiled per-query
        heaps when numba is installed, by faiss otherwise: the same
        neighbours).
        ``'pynndescent'``: approximate NN-descent graph of the training
        rows; new rows are searched exactly.
    exact_max_samples : int, default=50_000
        Size threshold of the faiss backend.
    device : str, default='auto'
        Device of the torch backend: ``'auto'`` (CUDA when available),
        ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
    random_state : int, RandomState instance or None, default=None
        Seed of the approximate backends.
    n_jobs : int or None, default=None
        Threads of the faiss and pynndescent backends; None or -1: all
        available cores.
    """

    def __init__(
        self,
        backend="exact",
        *,
        exact_max_samples=FAISS_EXACT_MAX_SAMPLES,
        device="auto",
        random_state=None,
        n_jobs=None,
    ):
        self.backend = backend
        self.exact_max_samples = exact_max_samples
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- fitting ---------------------------------------------------------
    def fit(self, V, n_neighbors=15):
        """Index the L2-normalised training rows ``V``.

        ``n_neighbors`` is the size of the neighbour lists that will be
        asked of :meth:`self_kneighbors` (the NN-descent graph is built
        for it).
        """
        self.n_samples_ = V.shape[0]
        if self.backend == "exact":
            self._V = V
        elif self.backend == "torch":
            _require_dense(V, "torch")
            self.device_ = resolve_knn_device(self.device)
            self._V = V  # numpy: moved to the device for each search
        elif self.backend == "faiss":
            self._fit_faiss(V)
        elif self.backend == "pynndescent":
            nndescent = import_optional("pynndescent", "knn_backend='pynndescent'")
            _cache_numba_compilation("pynndescent")
            self._V = V
            with warnings.catch_warnings():
                # the two functions that cannot be cached are compiled
                warnings.filterwarnings(
                    "ignore", message=".*Cannot cache compiled function"
                )
                self._nnd = nndescent.NNDescent(
                    V,
                    metric="cosine",
                    n_neighbors=n_neighbors + 1,
                    random_state=self.random_state,
                    n_jobs=self.n_jobs,
                    compressed=False,
                    **PYNNDESCENT_PARAMS,
                )
        else:
            raise ValueError(f"Unknown neighbour backend {self.backend!r}.")
        return self

    def _fit_faiss(self, V):
        faiss = import_optional("faiss", "knn_backend='faiss'")
        _require_dense(V, "faiss")
        V32 = np.ascontiguousarray(V, dtype=np.float32)
        n, d = V32.shape
        self._probes = self.cells_ = self.cell_centers_ = None
        with _faiss_threads(faiss, self.n_jobs):
            if n <= self.exact_max_samples:
                index = faiss.IndexFlatIP(d)
                index.add(V32)
            else:
                index = _train_ivf(faiss, V32, check_random_state(self.random_state))
                # the lists each training row probes serve its own search
                self._probes = _probe_lists(
                    index, V32, _kernels.get(), _n_threads(self.n_jobs)
                )
                _add_by_list(faiss, index, V32, self._probes[:, 0])
                # each row's inverted list: a k-means cell of the rows
                self.cells_ = self._probes[:, 0].copy()
                self.cell_centers_ = index.quantizer.reconstruct_n(0, index.nlist)
        self._faiss = index

    # -- queries ---------------------------------------------------------
    def kneighbors(self, Q, k):
        """The ``k`` training rows of largest inner product with each row
        of ``Q``.

        Returns
        -------
        sim : ndarray of shape (n_queries, k)
            Inner products, decreasing along each row.
        idx : ndarray of shape (n_queries, k)
            Indices of the training rows.
        """
        if self.backend == "faiss":
            return self._faiss_kneighbors(Q, k)
        if self.backend == "torch":
            _require_dense(Q, "torch")
            return self._torch_kneighbors(Q, k)
        return self._exact_kneighbors(Q, k)

    def self_kneighbors(self, V, k):
        """The ``k`` nearest training rows of every training row ``V``
        (the rows given to :meth:`fit`), self excluded."""
        if self.backend == "pynndescent":
            idx, dist = self._nnd.neighbor_graph
            # The NN-descent index only serves the training graph: it is
            # dropped here (it does not survive pickling reliably) and new
            # rows are matched exactly against the training rows.
            self._nnd = None
            sim = 1.0 - dist[:, : k + 1]  # metric='cosine' distance
            return _drop_self(sim, idx[:, : k + 1], k)
        if self.backend == "torch":
            # The training rows are their own queries: one transfer.
            return self._torch_kneighbors(self._V, k, exclude_self=True)
        if self.backend == "faiss":
            return self._faiss_kneighbors(V, k, exclude_self=True)
        sim, idx = self.kneighbors(V, k + 1)
        return _drop_self(sim, idx, k)

    def _exact_kneighbors(self, Q, k):
        n = self._V.shape[0]
        chunk = max(1, _BLOCK_ENTRIES // max(n, 1))
        sims, idxs = [], []
        VT = self._V.T
        bar = progress_bar(Q.shape[0], "neighbours (exact)")
        for start in range(0, Q.shape[0], chunk):
            S = _dense_block(Q[start : start + chunk] @ VT)
            s, i = _top_k(S, k)
            sims.append(s)
            idxs.append(i)
            bar.update(s.shape[0])
        bar.close()
        return np.vstack(sims), np.vstack(idxs)

    def _torch_kneighbors(self, Q, k, exclude_self=False):
        from ._torch_knn import torch_kneighbors

        sim, idx = torch_kneighbors(
            self._V,
            Q,
            k,
            device=self.device_,
            exclude_self=exclude_self,
            dtype=np.float32,
        )
        return sim.astype(np.float64, copy=False), idx

    def _faiss_kneighbors(self, Q, k, exclude_self=False):
        """faiss search in chunks of query rows; with ``exclude_self`` the
        queries are the training rows and each chunk drops its self
        entries before the next one is searched (no ``k + 1`` copy of the
        whole result). An inverted-file index is searched list by list
        with the compiled kernels when numba is installed
        (:func:`_ivf_search`), query by query by faiss otherwise."""
        faiss = import_optional("faiss", "knn_backend='faiss'")
        Q32 = np.ascontiguousarray(Q, dtype=np.float32)
        n_queries = Q32.shape[0]
        ivf = isinstance(self._faiss, faiss.IndexIVF)
        with _faiss_threads(faiss, self.n_jobs):
            probes = self._probes if exclude_self else None
            self._probes = None  # the training rows' lists serve once
            kernels = None
            if ivf:  # the size of the scan: candidates x dimensions
                per_list = self._faiss.ntotal / self._faiss.nlist
                work = n_queries * self._faiss.nprobe * per_list * Q32.shape[1]
                kernels = _kernels.get(int(work))
            if ivf and probes is None:
                probes = _probe_lists(self._faiss, Q32, kernels, _n_threads(self.n_jobs))
            if kernels is not None:
                return _ivf_search(
                    faiss, self._faiss, Q32, probes, k, exclude_self,
                    _n_threads(self.n_jobs), kernels,
                )
            sim = np.empty((n_queries, k))
            idx = np.empty((n_queries, k), dtype=np.int64)
            n_search = k + 1 if exclude_self else k
            if ivf:
                # Queries in the order of their nearest inverted list:
                # successive queries probe mostly the same lists, which stay
                # in cache (measured 1.7x faster than random order at 1M).
                order = np.argsort(probes[:, 0], kind="stable")
            else:
                order = np.arange(n_queries)
            bar = progress_bar(n_queries, "neighbours (faiss)")
            for start in range(0, n_queries, _FAISS_QUERY_CHUNK):
                rows = order[start : start + _FAISS_QUERY_CHUNK]
                s, i = self._faiss.search(Q32[rows], n_search)
                if exclude_self:
                    s, i = _drop_self(s, i, k, rows)
                sim[rows], idx[rows] = s, i
                bar.update(rows.size)
            bar.close()
        return sim, idx

    # -- pickling --------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        if "_faiss" in state:
            faiss = import_optional("faiss", "unpickling a faiss index")
            state["_faiss"] = faiss.serialize_index(state["_faiss"])
        return state

    def __setstate__(self, state):
        if "_faiss" in state:
            faiss = import_optional("faiss", "unpickling a faiss index")
            state["_faiss"] = faiss.deserialize_index(state["_faiss"])
        if is_cuda(state.get("device_")) and not cuda_available():
            # Fitted on a GPU, loaded without one: search on the CPU.
            if state["device"] != "auto":
                warnings.warn(
                    f"This neighbour index was fitted on device="
                    f"{state['device_']!r}, which is not available here; "
                    "searching on the CPU instead.",
                    UserWarning,
                )
            state["device_"] = "cpu"
        self.__dict__.update(state)


def _cache_numba_compilation(package):
    """Turn on numba's on-disk cache for the jitted functions of
    ``package`` that were declared without it.

    pynndescent compiles about 140 of its functions at the first search of
    every process (49 s for the digits on 2 cores), most of them declared
    without ``cache=True``. Cached, a later process loads them from disk
    (29 s; two functions that take the distance as an argument cannot be
    cached and are still compiled). numba writes the cache next to the
    package's sources, or to the user's cache directory when those are
    read-only; ``NUMBA_CACHE_DIR`` moves it elsewhere.
    """
    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # pragma: no cover - another numba layout
        return
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(package + "."):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and isinstance(value._cache, NullCache):
                with contextlib.suppress(Exception):  # uncacheable: compile
                    value.enable_caching()


def _require_dense(V, backend):
    if sp.issparse(V):
        raise TypeError(
            f"knn_backend={backend!r} does not accept sparse X; use "
            "knn_backend='exact' or 'pynndescent', or densify X."
        )


def resolve_knn_device(device):
    """The torch device of the ``'torch'`` backend for ``device``.

    ``'auto'`` is CUDA when available, else the CPU.

    Raises
    ------
    ImportError
        If torch is not installed (the message names the extra).
    ValueError
        For an unknown device, or a CUDA device that is not available.
    """
    check_device(device)
    torch = import_optional("torch", "knn_backend='torch'")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    check_cuda_device(torch, device)
    return device


def _n_threads(n_jobs):
    """Number of threads for ``n_jobs`` (None or -1: all available cores)."""
    n_cpus = available_cores()
    if n_jobs is None:
        return n_cpus
    return n_jobs if n_jobs > 0 else max(1, n_cpus + 1 + n_jobs)


def _faiss_threads(faiss, n_jobs):
    """Run faiss with ``n_jobs`` OpenMP threads, then restore the setting."""
    return thread_count(
        faiss.omp_get_max_threads, faiss.omp_set_num_threads, _n_threads(n_jobs)
    )


def _train_ivf(faiss, V32, rng):
    """An untrained-to-trained ``IndexIVFFlat`` (inner product) for ``V32``:
    spherical k-means on a random subsample."""
    n, d = V32.shape
    nlist = max(1, int(round(FAISS_IVF_LISTS_PER_SQRT_N * np.sqrt(n))))
    index = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.spherical = True
    index.cp.niter = FAISS_IVF_KMEANS_ITER
    index.cp.max_points_per_centroid = FAISS_IVF_TRAIN_PER_LIST
    index.cp.seed = int(rng.randint(2**31 - 1))
    n_train = min(n, FAISS_IVF_TRAIN_PER_LIST * nlist)
    index.train(V32[np.sort(rng.choice(n, n_train, replace=False))])
    index.nprobe = min(nlist, FAISS_IVF_NPROBE)
    return index


def _probe_lists(index, Q32, kernels=None, n_threads=1):
    """The ``index.nprobe`` inverted lists that each row of ``Q32`` probes,
    nearest first (int32), in chunks of rows: by the quantizer's search,
    or with the compiled kernels by a matrix product with the centroids
    per block of rows and per-row heaps, on ``n_threads`` threads (the
    same lists, about twice as fast as faiss at 1M rows and 2,000
    lists)."""
    n, nprobe = Q32.shape[0], index.nprobe
    lists = np.empty((n, nprobe), dtype=np.int32)
    if kernels is None:
        for start in range(0, n, _FAISS_QUERY_CHUNK):
            stop = start + _FAISS_QUERY_CHUNK
            lists[start:stop] = index.quantizer.search(Q32[start:stop], nprobe)[1]
        return lists
    from threadpoolctl import threadpool_limits

    centroids = index.quantizer.reconstruct_n(0, index.nlist)
    ids = np.arange(index.nlist, dtype=np.int64)
    step = max(1, _IVF_BLOCK_ENTRIES // index.nlist)

    def probe_chunk(start):
        rows = np.arange(start, min(n, start + _FAISS_QUERY_CHUNK))
        sims = np.full((rows.size, nprobe), -np.inf, dtype=np.float32)
        nbrs = np.full((rows.size, nprobe), -1, dtype=np.int64)
        local = np.arange(rows.size)
        for a in range(0, rows.size, step):
            b = min(rows.size, a + step)
            D = Q32[start + a : start + b] @ centroids.T
            kernels.heap_offer(D, local[a:b], ids, sims, nbrs, False)
        kernels.heap_sort_rows(sims, nbrs, 0, rows.size)
        lists[rows] = nbrs

    with threadpool_limits(1, user_api="blas"):
        map_threads(probe_chunk, range(0, n, _FAISS_QUERY_CHUNK), n_threads)
    return lists


def _add_by_list(faiss, index, V32, cell):
    """Add the rows ``V32`` to the trained IVF ``index`` one inverted list
    at a time, each list in one piece (``cell``: the list of each row).

    ``index.add`` appends the rows of a list one by one, and the list's
    storage grows by doubling: measured 1.3x the bytes of the vectors at 1M
    rows. Added whole, each list takes what it holds."""
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(index.nlist + 1))
    lists = index.invlists
    for list_no in np.flatnonzero(np.diff(bounds)):
        ids = np.ascontiguousarray(order[bounds[list_no] : bounds[list_no + 1]], dtype=np.int64)
        codes = np.ascontiguousarray(V32[ids])
        lists.add_entries(
            int(list_no), ids.size, faiss.swig_ptr(ids), faiss.swig_ptr(codes.view(np.uint8))
        )
    index.ntotal = V32.shape[0]


def _ivf_lists(faiss, index):
    """``(rows, ids)`` of every inverted list of an ``IndexIVFFlat``: views
    of the index's own storage (None for an empty list)."""
    invlists, d = index.invlists, index.d
    out = []
    for list_no in range(index.nlist):
        size = invlists.list_size(list_no)
        if size == 0:
            out.append(None)
            continue
        codes = faiss.rev_swig_ptr(invlists.get_codes(list_no), size * d * 4)
        ids = faiss.rev_swig_ptr(invlists.get_ids(list_no), size)
        out.append((codes.view(np.float32).reshape(size, d), ids))
    return out


def _ivf_search(faiss, index, Q32, probes, k, exclude_self, n_threads, kernels):
    """Top-``k`` inner products of the rows of ``Q32`` among the rows of
    the inverted lists ``probes`` names, list by list.

    faiss scans the probed lists query by query, reading every candidate
    row once per query. Here the queries are bucketed by the lists they
    probe, and each list meets its bucket of queries in one matrix
    product (BLAS), whose similarities are offered to per-query heaps by a
    compiled kernel: each candidate row is read once per block of
    queries. Measured on 1M rows of the sphere mixture (64 dimensions,
    2000 lists, 20 probes, 2 cores; ``benchmarks/knn_search.py``): 20.6 s
    against faiss's 56.4 s at k = 10, probes included, the same
    neighbours.

    The queries are split into :data:`_IVF_QUERY_GROUPS` contiguous groups
    (independent of the thread count), each group's buckets searched in
    list order by one thread; a query's heap keeps the top ``k`` of every
    candidate offered under the order (larger similarity, smaller index),
    whatever the order of the offers, so the result does not depend on
    the number of threads. A query probing fewer than ``k`` candidates
    (tiny lists) is searched exactly against every row.
    """
    from threadpoolctl import threadpool_limits

    n_queries = Q32.shape[0]
    nlist = index.nlist
    lists = _ivf_lists(faiss, index)
    n_groups = min(_IVF_QUERY_GROUPS, n_queries)
    sims = np.full((n_queries, k), -np.inf, dtype=np.float32)
    nbrs = np.full((n_queries, k), -1, dtype=np.int64)
    group_start = -(-np.arange(n_groups + 1) * n_queries // n_groups)
    bar = progress_bar(n_queries, "neighbours (inverted lists)")

    def offer(queries, list_no):
        codes, ids = lists[list_no]
        D = Q32[queries] @ codes.T
        kernels.heap_offer(D, queries, ids, sims, nbrs, exclude_self)

    def search_group(g, rows, ptr, last):
        for list_no in range(nlist):
            lo, hi = ptr[g * nlist + list_no], ptr[g * nlist + list_no + 1]
            if lo == hi or lists[list_no] is None:
                continue
            step = max(1, _IVF_BLOCK_ENTRIES // lists[list_no][0].shape[0])
            for start in range(lo, hi, step):
                offer(rows[start : min(hi, start + step)], list_no)
        if last:
            kernels.heap_sort_rows(sims, nbrs, group_start[g], group_start[g + 1])
            bar.update(group_start[g + 1] - group_start[g])

    with threadpool_limits(1, user_api="blas"):
        # Each query's nearest list first, then the others: the heaps start
        # from the best candidates, so fewer of the later ones enter them
        # (about a fifth less time in the heaps at k = 50).
        for part, last in ((probes[:, :1], False), (probes[:, 1:], True)):
            part = np.ascontiguousarray(part)
            rows = np.empty(part.size, dtype=np.int32 if n_queries < 2**31 else np.int64)
            ptr = kernels.bucket_rows(part, nlist, n_groups, rows)
            map_threads(
                functools.partial(search_group, rows=rows, ptr=ptr, last=last),
                range(n_groups), n_threads,
            )
        # a query that met fewer than k candidates: every list, exactly
        for q in np.flatnonzero(nbrs[:, -1] < 0):
            sims[q], nbrs[q] = -np.inf, -1
            for list_no in range(nlist):
                if lists[list_no] is not None:
                    offer(np.array([q]), list_no)
            kernels.heap_sort_rows(sims, nbrs, q, q + 1)
    bar.close()
    return sims.astype(np.float64), nbrs


def neighbor_recall(V, idx, k=None, *, n_queries=1000, random_state=None):
    """Recall@k of self-kNN lists against exact search on sampled rows.

    Exact neighbours are searched (blocked, as the ``'exact'`` backend) only
    for a random sample of query rows, so the cost is ``n_queries`` rows
    against all rows, never N x N. Meant to check an approximate search
    (faiss IVF, pynndescent, ...): cosine neighbours, self excluded.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.datasets import make_sphere_mixture
    >>> from sklearn_mixedlp.metrics import neighbor_recall
    >>> V, _ = make_sphere_mixture(2000, random_state=0)
    >>> top = np.argsort(-(V @ V.T), axis=1)[:, 1:11]  # exact, self dropped
    >>> float(neighbor_recall(V, top, random_state=0))
    1.0
    >>> float(neighbor_recall(V, top[:, ::-1][:, :5], k=5, random_state=0))
    0.0

    Parameters
    ----------
    V : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The L2-normalised rows that were searched.
    idx : array-like of shape (n_samples, n_neighbors)
        Neighbour indices of every row of ``V``, self excluded, nearest
        first.
    k : int, default=None
        Recall of the first ``k`` columns of ``idx`` against the exact
        ``k`` nearest neighbours; default ``idx.shape[1]``.
    n_queries : int, default=1000
        Number of rows sampled without replacement (all rows when there
        are fewer).
    random_state : int, RandomState instance or None, default=None
        Seed of the sample.

    Returns
    -------
    recall : float
        Mean over the sampled rows of the fraction of their exact ``k``
        nearest neighbours found in ``idx`` (1 for exact search, up to
        ties at the ``k``-th similarity).
    """
    idx = np.asarray(idx)
    n_samples = V.shape[0]
    if idx.ndim != 2 or idx.shape[0] != n_samples:
        raise ValueError(
            f"idx must have shape (n_samples, n_neighbors) = ({n_samples}, ...); "
            f"got {idx.shape}."
        )
    k = idx.shape[1] if k is None else k
    if not 1 <= k <= min(idx.shape[1], n_samples - 1):
        raise ValueError(
            f"k={k} must be between 1 and min(idx.shape[1], n_samples - 1) = "
            f"{min(idx.shape[1], n_samples - 1)}."
        )
    rng = check_random_state(random_state)
    rows = rng.choice(n_samples, size=min(n_queries, n_samples), replace=False)
    exact = NeighborIndex("exact").fit(V, k)
    _, ref = _drop_self(*exact.kneighbors(V[rows], k + 1), k, rows)
    found = idx[rows, :k]
    # Each exact neighbour counts once, whether or not idx repeats it.
    chunk = max(1, 2**22 // (k * k))
    hits = sum(
        int((ref[s : s + chunk, :, None] == found[s : s + chunk, None, :]).any(2).sum())
        for s in range(0, rows.size, chunk)
    )
    return hits / ref.size


def resolve_knn_backend(backend, n_samples, sparse_input, device="cpu"):
    """Turn ``'auto'`` into a concrete backend name.

    ``'auto'`` uses exact torch search on the GPU for dense data when torch
    is installed and ``device`` is CUDA (or ``'auto'`` with a CUDA device
    available); otherwise faiss for dense data when installed, exact
    search for sparse or small data, then pynndescent for large data when
    installed.
    """
    if backend != "auto":
        return backend
    if not sparse_input and (is_cuda(device) or device == "auto"):
        if cuda_available():
            return "torch"
    if not sparse_input and is_installed("faiss"):
        return "faiss"
    if n_samples <= EXACT_AUTO_MAX_SAMPLES or not is_installed("pynndescent"):
        return "exact"
    return "pynndescent"


def clip_n_neighbors(n_neighbors, n_samples):
    """Clip ``k`` to ``n_samples - 1`` with a warning."""
    if n_neighbors >= n_samples:
        warnings.warn(
            f"n_neighbors={n_neighbors} is not smaller than n_samples="
            f"{n_samples}; using n_neighbors={n_samples - 1}.",
            UserWarning,
        )
        return n_samples - 1
    return n_neighbors


# Range of n_neighbors='auto': the defaults' 10 to the paper's 50.
_AUTO_NEIGHBORS = (10, 50)


def auto_neighbors(n_neighbors, n_samples, n_labeled):
    """``n_neighbors``, or for ``'auto'`` the square root of the number of
    rows per label, rounded, within ``[10, 50]`` (and below
    ``n_samples``)."""
    if n_neighbors != "auto":
        return n_neighbors
    low, high = _AUTO_NEIGHBORS
    k = int(np.clip(round(np.sqrt(n_samples / max(n_labeled, 1))), low, high))
    return max(1, min(k, n_samples - 1))


KERNELS = ("self_tuning", "power")


def knn_affinity(
    sim, idx, gamma, n_samples, zero=None, kernel="power", zero_queries=None
):
    """Directed kNN affinities as a sparse matrix.

    Row ``j`` of the result holds the affinity of ``v_j`` to each of its
    ``k`` neighbours ``v_i`` (this is ``A^T`` in the paper's notation;
    ``W = A + A^T`` is the same either way):

    - ``kernel='power'``: ``[v_j^T v_i]_+^gamma`` (eq. 15); non-positive
      similarities give no edge;
    - ``kernel='self_tuning'``: ``exp(-4 ||v_j - v_i||^2 / r_j^2)`` with
      ``r_j`` the distance from ``v_j`` to its ``k``-th neighbour (the
      self-tuning Gaussian of Zelnik-Manor & Perona, as in GraphLearning),
      computed from ``||v_j - v_i||^2 = 2 - 2 v_j^T v_i`` on the unit
      sphere. It adapts to the local density and does not depend on the
      scale of the similarities.

    A neighbour flagged in the boolean mask ``zero`` (a zero feature row,
    whose similarity some backends do not report as 0) gives no edge, and
    a query row flagged in ``zero_queries`` gets none.
    """
    n_rows, k = idx.shape
    if kernel == "power":
        weights = np.clip(sim, 0.0, None) ** gamma
    else:
        dist2 = np.clip(2.0 - 2.0 * np.asarray(sim, dtype=np.float64), 0.0, None)
        radius2 = dist2.max(axis=1, keepdims=True)
        tiny = np.finfo(np.float64).tiny
        weights = np.exp(-4.0 * dist2 / np.maximum(radius2, tiny))
    if zero is not None and zero.any():
        weights[zero[idx]] = 0.0
    if zero_queries is not None:
        weights[zero_queries] = 0.0
    indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int64)
    A = sp.csr_matrix((weights.ravel(), idx.ravel(), indptr), shape=(n_rows, n_samples))
    A.eliminate_zeros()
    return A


def symmetrize(A):
    """``W = A + A^T`` as CSR with sorted indices, a zero diagonal and no
    stored zeros.

    With numba (and a graph large enough to repay the compiled kernels)
    the sum is assembled row by row on all cores: the transpose by a
    counting sort, each row of ``A`` sorted and merged with the sorted
    row of ``A^T``; scipy's ``A + A.T`` (the reference the tests compare
    with) otherwise."""
    A = sp.csr_matrix(A)
    kernels = _kernels.get(A.nnz * _ASSEMBLY_WORK_PER_ENTRY)
    if kernels is None or A.shape[0] != A.shape[1]:
        W = (A + A.T).tocsr()
        drop_diagonal(W)
        W.sort_indices()
        return W
    n, nnz = A.shape[0], A.nnz
    index_dtype = np.int32 if 2 * nnz < 2**31 else np.int64
    t_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(A.indices, minlength=n), out=t_indptr[1:])
    t_indices = np.empty(nnz, dtype=index_dtype)
    t_data = np.empty(nnz, dtype=A.dtype)
    kernels.transpose_into(A.indptr, A.indices, A.data, t_indptr, t_indices, t_data)
    indices = np.empty(2 * nnz, dtype=index_dtype)
    data = np.empty(2 * nnz, dtype=A.dtype)
    lengths = np.empty(n, dtype=np.int64)
    start = A.indptr + t_indptr  # where each row of the sum is written
    map_rows(
        lambda rows: kernels.add_transpose_rows(
            A.indptr, A.indices, A.data, t_indptr, t_indices, t_data,
            indices, data, lengths, rows.start, rows.stop,
        ),
        start,
        _GRAPH_ROW_ENTRIES,
    )
    t_indices = t_data = None  # freed before the compaction
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # rows move left (never past the next row's start): in place, in order
    kernels.compact_rows(start, lengths, indices, data, indptr, indices, data, 0, n)
    indices.resize(indptr[-1], refcheck=False)
    data.resize(indptr[-1], refcheck=False)
    W = sp.csr_matrix((data, indices, indptr), shape=A.shape)
    W.has_sorted_indices = True
    return W


def drop_diagonal(W, chunk_rows=2**16):
    """Remove the stored diagonal entries of the CSR matrix ``W`` in place
    (and any stored zero). Unlike ``setdiag(0)``, which stores the
    missing diagonal entries first (seconds on a graph of tens of millions
    of entries), it only touches the stored ones, by chunks of rows."""
    n_rows = W.shape[0]
    for start in range(0, n_rows, chunk_rows):
        stop = min(start + chunk_rows, n_rows)
        lo, hi = W.indptr[start], W.indptr[stop]
        rows = np.repeat(np.arange(start, stop), np.diff(W.indptr[start : stop + 1]))
        W.data[lo:hi][W.indices[lo:hi] == rows] = 0
    W.eliminate_zeros()
    return W


def mutual_knn_graph(idx, n_samples):
    """Boolean kNN adjacency ``K`` with ``K[j, i] = 1`` if ``i`` is among
    the neighbours of ``j``."""
    n_rows, k = idx.shape
    indptr = np.arange(0, n_rows * k + 1, k, dtype=np.int64)
    return sp.csr_matrix(
        (np.ones(idx.size), idx.ravel(), indptr), shape=(n_rows, n_samples)
    )


def check_precomputed_graph(G, n_samples=None):
    """Validate a user-supplied sparse affinity / kNN graph.

    The stored values are affinities (larger means more similar, e.g. the
    ``mode='connectivity'`` output of
    :func:`sklearn.neighbors.kneighbors_graph`). The graph is used as the
    matrix ``A`` of eq. 15 and symmetrised as ``W = A + A^T``.

    Raises
    ------
    ValueError
        If the graph is not square (or does not have ``n_samples`` columns
        at predict time), or has negative weights.
    """
    G = sp.csr_matrix(G, dtype=np.float64)
    if n_samples is None and G.shape[0] != G.shape[1]:
        raise ValueError(
            "With knn_backend='precomputed', X must be a square "
            f"(n_samples, n_samples) affinity graph; got shape {G.shape}."
        )
    if n_samples is not None and G.shape[1] != n_samples:
        raise ValueError(
            "With knn_backend='precomputed', X at predict time must have one "
            f"column per training sample ({n_samples}); got shape {G.shape}."
        )
    if G.nnz and G.data.min() < 0:
        raise ValueError(
            "The precomputed affinity graph has negative weights; affinities "
            "must be non-negative (larger means more similar)."
        )
    G.eliminate_zeros()
    return G


def build_knn_affinity(
    X, n_neighbors, kernel, gamma, backend, random_state=None, device="cpu"
):
    """Normalise ``X``, search its neighbours and weight them.

    ``device`` is the device of the torch backend (and where ``'auto'``
    looks for a GPU).

    Returns ``(A, knn, index, zero, k, backend)``: the directed affinities
    (see :func:`knn_affinity`), the boolean kNN adjacency, the fitted
    :class:`NeighborIndex`, the mask of zero rows, the number of neighbours
    actually used and the resolved backend name.
    """
    search = search_neighbors(X, n_neighbors, backend, random_state, device)
    sim, idx, index, zero, k, backend = search
    return (*assemble_affinity(sim, idx, zero, kernel, gamma), index, zero, k, backend)


def search_neighbors(X, n_neighbors, backend, random_state=None, device="cpu"):
    """Normalise the rows of ``X`` and find their ``n_neighbors`` nearest
    neighbours (self excluded).

    Returns ``(sim, idx, index, zero, k, backend)``: the similarities and
    indices of shape (n_samples, k), the fitted :class:`NeighborIndex`, the
    mask of zero rows, the number of neighbours actually used and the
    resolved backend name.
    """
    n_samples = X.shape[0]
    V, zero = l2_normalize(X)
    k = clip_n_neighbors(n_neighbors, n_samples)
    backend = resolve_knn_backend(backend, n_samples, sp.issparse(X), device)
    index = NeighborIndex(backend, device=device, random_state=random_state)
    index.fit(V, k)
    sim, idx = index.self_kneighbors(V, k)
    return sim, idx, index, zero, k, backend


def assemble_affinity(sim, idx, zero, kernel, gamma, adjacency=True):
    """The directed affinities and (when ``adjacency``, else None) the kNN
    adjacency of a neighbour search (see :func:`knn_affinity` and
    :func:`mutual_knn_graph`)."""
    n_samples = idx.shape[0]
    sim[zero] = 0.0
    A = knn_affinity(sim, idx, gamma, n_samples, zero, kernel=kernel, zero_queries=zero)
    return A, mutual_knn_graph(idx, n_samples) if adjacency else None


@validate_params(
    {
        "X": ["array-like", "sparse matrix"],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "kernel": [StrOptions(set(KERNELS))],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "lift": [Interval(Real, 0, None, closed="left")],
        "knn_backend": [StrOptions(set(KNN_BACKENDS) - {"precomputed"})],
        "device": [str],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def knn_graph(
    X,
    n_neighbors=10,
    *,
    kernel="self_tuning",
    gamma=3.0,
    lift=0.5,
    knn_backend="auto",
    device="auto",
    random_state=None,
):
    """Directed kNN affinity graph of the rows of ``X``.

    The graph the estimators build in ``fit``, returned so that it can be
    computed once and reused with ``knn_backend='precomputed'`` (e.g. to
    compare methods or tune ``beta`` on one graph). Row ``j`` holds the
    affinities of ``x_j`` to its ``n_neighbors`` nearest neighbours (self
    excluded, rows L2-normalised): ``[v_j^T v_i]_+^gamma`` for
    ``kernel='power'`` (eq. 15) or ``exp(-4 ||v_j - v_i||^2 / r_j^2)`` for
    ``kernel='self_tuning'``. The estimators symmetrise it as ``W = A +
    A^T``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Feature rows.
    n_neighbors : int, default=10
        Number of neighbours ``k`` (clipped to ``n_samples - 1`` with a
        warning).
    kernel : {'self_tuning', 'power'}, default='self_tuning'
        Affinity kernel, as in the estimators.
    gamma : float, default=3.0
        Exponent of the ``'power'`` kernel.
    lift : float, default=0.5
        Height of a constant coordinate appended to every row before
        normalisation, in units of the root-mean-square row norm, as in the
        estimators (0: cosine similarity, as in eq. 15; see
        :func:`lift_rows`).
    knn_backend : {'auto', 'exact', 'torch', 'faiss', 'pynndescent'}, \
            default='auto'
        Neighbour search backend, as in the estimators.
    device : str, default='auto'
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``: the device of the
        ``'torch'`` backend, as in the estimators.
    random_state : int, RandomState instance or None, default=None
        Seed of the approximate backends.

    Returns
    -------
    A : sparse CSR matrix of shape (n_samples, n_samples)
        Directed affinities, at most ``n_neighbors`` stored entries per row.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import HardNegativeLP, knn_graph
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> X, y = load_digits(return_X_y=True)
    >>> A = knn_graph(X, n_neighbors=10)
    >>> A.shape, A.nnz
    ((1797, 1797), 17970)
    >>> est = HardNegativeLP(knn_backend="precomputed").fit(A, mask_labels(y, 5))
    """
    X = check_array(
        X, accept_sparse="csr", dtype=[np.float64, np.float32], ensure_min_samples=2
    )
    check_device(device)
    if lift > 0:
        X, _ = lift_rows(X, lift)
    A, *_ = build_knn_affinity(
        X, n_neighbors, kernel, gamma, knn_backend, random_state, device
    )
    return A


# Rows per k-means cell of locality_order: 5,000 rows of a 100-column
# float32 block are 2 MB, the size of the L2 caches.
_CELL_ROWS = 5000


def permute_symmetric(M, perm, values=None):
    """``M[perm][:, perm]`` for a square sparse ``M``, with one copy: the
    rows are gathered, the column indices renumbered and sorted (row by
    row on all cores with numba, by scipy otherwise).

    With ``values`` (one per stored entry of ``M``, a second matrix on the
    same pattern), returns ``(M[perm][:, perm], permuted values)``, the
    values in the order of the result's stored entries: one pass for two
    matrices."""
    M = sp.csr_matrix(M)
    if values is not None and np.shape(values) != (M.nnz,):
        raise ValueError(
            f"values has shape {np.shape(values)}; expected ({M.nnz},), one "
            "per stored entry of M"
        )
    kernels = _kernels.get(M.nnz * _ASSEMBLY_WORK_PER_ENTRY)
    index_dtype = M.indices.dtype
    inverse = np.empty(perm.size, dtype=index_dtype)
    inverse[perm] = np.arange(perm.size, dtype=index_dtype)
    if kernels is not None:
        indptr = np.zeros(perm.size + 1, dtype=np.int64)
        np.cumsum(np.diff(M.indptr)[perm], out=indptr[1:])
        indices = np.empty(M.nnz, dtype=index_dtype)
        data = np.empty(M.nnz, dtype=M.dtype)
        moved = np.empty(0) if values is None else np.asarray(values)
        out_values = np.empty_like(moved)
        map_rows(
            lambda rows: kernels.permuted_rows(
                M.indptr, M.indices, M.data, moved, perm, inverse, indptr, indices,
                data, out_values, rows.start, rows.stop,
            ),
            indptr,
            _GRAPH_ROW_ENTRIES,
        )
        out = sp.csr_matrix((data, indices, indptr), shape=M.shape)
        out.has_sorted_indices = True
        return out if values is None else (out, out_values)
    if values is not None:
        # the values ride along as a second matrix on the same pattern
        # (explicit zeros kept: scipy never drops them by itself)
        V = sp.csr_matrix((np.asarray(values), M.indices, M.indptr), shape=M.shape)
        return permute_symmetric(M, perm), permute_symmetric(V, perm).data
    M = M[perm]
    # renumbered in place, by chunks: indexing converts the indices to
    # 64-bit integers, a temporary twice their size if done at once
    step = 2**20
    for start in range(0, M.indices.size, step):
        part = M.indices[start : start + step]
        part[...] = inverse[part]
    M.has_sorted_indices = False
    M.sort_indices()
    return M


def locality_order(X, W, random_state=None, lists=None):
    """A row order that keeps the neighbours of each row close in memory.

    A sparse x dense product ``W @ F`` reads a row of ``F`` for every
    stored entry of ``W``; in data order those rows are scattered over the
    whole block and come from main memory. The rows are grouped into
    k-means cells of about 5,000 rows (cosine, on a sample of at most
    50,000 rows), and ordered inside each cell by reverse Cuthill-McKee on
    ``W``, so that most rows read by a product lie in the same cell, in
    cache. On the 1M-row sphere mixture (k = 50, 100 classes) this makes
    a float32 conjugate-gradient iteration several times faster than the
    data order or reverse Cuthill-McKee alone (``benchmarks/scale.py``).

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The feature rows of the graph.
    W : sparse matrix of shape (n_samples, n_samples)
        The symmetric affinity graph.
    random_state : int, RandomState instance or None, default=None
        Seed of the k-means sample and initialisation.
    lists : tuple of (ndarray of shape (n_samples,), ndarray), default=None
        The inverted list of each row and the lists' centroids, from an
        inverted-file neighbour search. The cells are then unions of whole
        lists, found by k-means on the centroids weighted by the lists'
        sizes (no pass over the rows).

    Returns
    -------
    perm : ndarray of shape (n_samples,)
        ``perm[i]`` is the original index of the ``i``-th row in the new
        order.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee
    from sklearn.cluster import KMeans

    n_samples = X.shape[0]
    rank = np.empty(n_samples, dtype=np.int64)
    rank[reverse_cuthill_mckee(sp.csr_matrix(W), symmetric_mode=True)] = np.arange(
        n_samples
    )
    n_cells = n_samples // _CELL_ROWS
    if n_cells < 2:
        return np.argsort(rank)
    rng = check_random_state(random_state)
    if lists is not None:
        # the inverted lists grouped into cells by k-means on their
        # centroids (weighted by their sizes): each list in one cell
        list_of_row, centroids = lists
        sizes = np.bincount(list_of_row, minlength=centroids.shape[0])
        used = np.flatnonzero(sizes)
        n_cells = min(n_cells, used.size)
        kmeans = KMeans(n_cells, n_init=1, max_iter=20, random_state=rng).fit(
            centroids[used], sample_weight=sizes[used]
        )
        cell_of_list = np.zeros(centroids.shape[0], dtype=np.int64)
        cell_of_list[used] = kmeans.labels_
        return np.lexsort((rank, cell_of_list[list_of_row]))
    sample = np.sort(rng.choice(n_samples, min(n_samples, 50_000), replace=False))
    V, _ = l2_normalize_quiet(X[sample])
    kmeans = KMeans(n_cells, n_init=1, max_iter=20, random_state=rng).fit(V)
    centers = kmeans.cluster_centers_.astype(X.dtype, copy=False)
    cell = np.empty(n_samples, dtype=np.int64)
    step = max(1, _BLOCK_ENTRIES // n_cells)
    for start in range(0, n_samples, step):
        # argmax of the cosine: the norm of the row does not matter, but
        # rows of huge or tiny values are scaled first (no overflow)
        block = X[start : start + step]
        _, scale = safe_row_norms(block)
        if np.any(scale != 1):
            block = sp.diags(scale) @ block if sp.issparse(block) else (
                block * scale[:, None]
            )
        scores = block @ centers.T
        cell[start : start + step] = np.asarray(scores).argmax(axis=1)
    return np.lexsort((rank, cell))


def l2_normalize_quiet(X):
    """:func:`l2_normalize` without the warning about zero rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return l2_normalize(X)
