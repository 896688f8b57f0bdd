"""Transductive estimators: MixedLabelPropagation and HardNegativeLP.

Data flows one way (equations of Zhuang & Moulin, CVPR 2023)::

    X -> kNN graph W (eq. 15) -> LP solve F (eq. 16)
      -> dissimilarity weights Wdis (eqs. 18-22, MoM, Control or given)
      -> mixed LP solve G (eqs. 23-24, or LPDR eq. 25)
      -> distributions, pseudolabels, confidences -> fitted attributes
"""

import inspect
import time
import warnings
from abc import abstractmethod
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from . import _solvers
from ._graph import (
    KERNELS,
    KNN_BACKENDS,
    assemble_affinity,
    auto_neighbors,
    check_precomputed_graph,
    knn_affinity,
    l2_normalize,
    l2_normalize_quiet,
    lift_rows,
    locality_order,
    permute_symmetric,
    search_neighbors,
    symmetrize,
)
from . import _kernels
from ._negatives import (
    DistributionRows,
    UnitFeatureRows,
    agreement_data,
    check_negatives,
    control_negative_weights,
    discriminant_features,
    discriminant_unit_rows,
    hard_negative_weights,
    linear_view_width,
    mom_negative_weights,
    on_pattern,
)
from ._solvers import SOLVERS, block_cg, minres_solve, resolve_solver
from ._utils import (
    _ROW_CHUNK,
    check_memory_mapped,
    entropy_confidence,
    fill_unlabeled,
    is_cuda,
    map_blocks,
    map_rows,
    normalize_distributions,
    row_spans,
    unlabeled_mask,
)


def _class_mass_normalize(G, prior):
    """Class-mass normalisation (Zhu, Ghahramani & Lafferty 2003).

    Scales column ``c`` of the clipped solution (in place) so that its total
    mass is ``prior[c]`` (the fraction of labeled samples in class ``c``, or
    the estimator's ``class_prior``): it removes the bias of label
    propagation towards the classes whose labels sit in the denser,
    better-connected parts of the graph. A column without mass stays zero.
    """
    G = np.clip(G, 0.0, None, out=G)
    G *= _class_mass_factors(prior, G.sum(axis=0))
    return G


def _class_mass_factors(prior, mass):
    """The column scales of class-mass normalisation: ``prior / mass``,
    0 for a column without mass (its class has no reach)."""
    factor = np.zeros(np.shape(mass))
    np.divide(prior, mass, out=factor, where=mass > 0)
    return factor


def _coarse_weights(scale):
    """The rows' values in the coarse vectors of a system of row scale
    ``scale``: ``1 / s`` (0 where ``s`` is 0), the vector that the graph's
    part ``D_s W D_s`` of the system maps to itself."""
    weights = np.zeros(scale.shape, dtype=np.float64)
    np.divide(1.0, scale, out=weights, where=scale > 0)
    return weights


class _StageClock:
    """Wall time of the consecutive stages of a fit, printed as they end
    when ``verbose``."""

    def __init__(self, owner, verbose):
        self.owner, self.verbose = owner, verbose
        self.start = self.last = time.perf_counter()
        self.stages = {}

    def lap(self, stage, message="", n_iter=0):
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        self.stages[stage] = {"seconds": seconds, "n_iter": int(n_iter)}
        if self.verbose:
            print(
                f"[{self.owner}] {stage}: {message} ({seconds:.2f}s, "
                f"{now - self.start:.2f}s in all)"
            )


# Stored entries per row range of the system and cut passes: compiled
# (threads over ranges), numpy (one range at a time, its temporaries).
_PASS_ENTRIES = 2**18
_NUMPY_PASS_ENTRIES = 2**20


class _Pattern:
    """The sparsity pattern of a system ``A = diag(a) + sign S`` on a
    graph ``M`` without stored diagonal entries: ``M``'s stored entries
    with each row's diagonal entry inserted in column order.

    Entry ``p`` of row ``i`` (column ``j``) of ``M`` sits at ``p + i + (j >
    i)`` in the system, so a new system on the same graph (the cut graph
    only rescales the affinities) needs only new values: :meth:`system`
    writes them in one pass, and the index arrays are shared by all the
    systems of a fit.
    """

    def __init__(self, M, kernels=None):
        n = M.shape[0]
        self.n, self.kernels = n, kernels
        self.indptr = M.indptr
        self.indices = M.indices
        nnz = int(M.indptr[-1]) + n
        index = np.int32 if nnz < 2**31 else np.int64
        self.a_indptr = (M.indptr + np.arange(n + 1)).astype(index)
        self.a_indices = np.empty(nnz, dtype=index)
        self.diag_pos = np.empty(n, dtype=np.int64)
        if kernels is not None:
            map_rows(
                lambda rows: kernels.pattern_with_diagonal(
                    M.indptr, M.indices, self.a_indices, self.diag_pos,
                    rows.start, rows.stop,
                ),
                M.indptr,
                _PASS_ENTRIES,
            )
            return
        counts = np.diff(M.indptr)
        for rows in row_spans(M.indptr, _NUMPY_PASS_ENTRIES):
            lo, hi = M.indptr[rows.start], M.indptr[rows.stop]
            i = np.repeat(np.arange(rows.start, rows.stop), counts[rows])
            j = M.indices[lo:hi]
            above = j > i
            self.a_indices[np.arange(lo, hi) + i + above] = j
            below = np.bincount(i[~above] - rows.start, minlength=rows.stop - rows.start)
            diag = M.indptr[rows.start : rows.stop] + np.arange(rows.start, rows.stop) + below
            self.a_indices[diag] = np.arange(rows.start, rows.stop)
            self.diag_pos[rows] = diag

    def system(self, values, scale, sign, diagonal, out=None, dtype=np.float64):
        """CSR ``diag(diagonal) + sign * D_s M_values D_s`` on this pattern
        (``D_s = diag(scale)``, ``M_values`` the graph's pattern with
        ``values``), its values written into ``out`` when given (else into
        a new array of ``dtype``)."""
        data = np.empty(self.a_indices.size, dtype=dtype) if out is None else out
        kernels = self.kernels
        if kernels is not None:
            map_rows(
                lambda rows: kernels.scaled_offdiagonal(
                    self.indptr, self.indices, values, scale, float(sign), data,
                    rows.start, rows.stop,
                ),
                self.indptr,
                _PASS_ENTRIES,
            )
        else:
            counts = np.diff(self.indptr)
            for rows in row_spans(self.indptr, _NUMPY_PASS_ENTRIES):
                lo, hi = self.indptr[rows.start], self.indptr[rows.stop]
                i = np.repeat(np.arange(rows.start, rows.stop), counts[rows])
                j = self.indices[lo:hi]
                v = values[lo:hi] * scale[j]
                v *= sign * scale[i]
                data[np.arange(lo, hi) + i + (j > i)] = v
        data[self.diag_pos] = diagonal
        return sp.csr_matrix(
            (data, self.a_indices, self.a_indptr), shape=(self.n, self.n)
        )


def _cut_values(W, share, beta, kernels=None):
    """``max(w (1 - beta share), 0)`` on the stored entries of ``W`` (the
    negative weight is ``w share``), the row sums of the result, and
    whether some positive affinity was cut to 0."""
    cut = np.empty(W.nnz)
    degree = np.empty(W.shape[0])
    if kernels is not None:
        removed = []

        def fn(rows):
            removed.append(kernels.cut_degrees(
                W.indptr, W.data, share, float(beta), cut, degree, rows.start, rows.stop
            ))

        map_rows(fn, W.indptr, _PASS_ENTRIES)
        return cut, degree, sum(removed) > 0
    np.multiply(share, -float(beta), out=cut, dtype=np.float64)
    cut += 1.0
    cut *= W.data
    gone = cut <= 0
    cut[gone] = 0.0
    removed = bool(np.any(gone & (W.data > 0)))
    degree = np.asarray(
        sp.csr_matrix((cut, W.indices, W.indptr), shape=W.shape).sum(axis=1)
    ).ravel()
    return cut, degree, removed


# The paper's label weight (alpha = 1 / (1 + mu) = 0.99 in Zhou's form).
_PAPER_MU = 1 / 99

# Smallest mu of the normalised Laplacian solved in float32 (condition
# number at most (2 + mu) / mu, about 2e4).
_SINGLE_MIN_MU = 1e-4


# Relative residual of the solves that only feed the agreement mining's
# rounds (the final solve meets ``tol``).
_MINING_TOL = 1e-3

# Ridge added to the rows of graph components without any labeled sample,
# relative to the mean degree: it keeps the system SPD.
_RIDGE = 1e-6


def _mix64(x):
    """The splitmix64 finaliser: a bijective scramble of 64-bit words."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_hashes(X):
    """A 64-bit hash of each row's exact values.

    The sum, modulo 2**64, of ``mix(bits(x_j) + key_j) - mix(key_j)`` over
    the features ``j``: independent of summation order, and zeros
    contribute nothing, so a dense row and its sparse copy hash alike.
    """
    n_features = X.shape[1]
    keys = np.random.default_rng(20230601).integers(
        0, 2**63, size=n_features, dtype=np.uint64
    )
    with np.errstate(over="ignore"):
        if sp.issparse(X):
            X = sp.csr_matrix(X, dtype=np.float64)
            X.sum_duplicates()
            k = keys[X.indices]
            terms = _mix64((X.data + 0.0).view(np.uint64) + k) - _mix64(k)
            csum = np.concatenate([[np.uint64(0)], np.cumsum(terms, dtype=np.uint64)])
            return csum[X.indptr[1:]] - csum[X.indptr[:-1]]
        # float32 rows are widened chunk by chunk: no float64 copy of X
        X = np.asarray(X)
        hashes = np.empty(X.shape[0], dtype=np.uint64)
        chunk = max(1, 2**20 // max(n_features, 1))
        zero = _mix64(keys).sum(dtype=np.uint64)
        for start in range(0, X.shape[0], chunk):
            # -0.0 -> 0
            block = np.asarray(X[start : start + chunk], dtype=np.float64) + 0.0
            terms = _mix64(block.view(np.uint64) + keys)
            hashes[start : start + chunk] = terms.sum(axis=1, dtype=np.uint64) - zero
        return hashes


def _cut_graph(W, Wdis, beta):
    """``max(W - beta Wdis, 0)`` on the stored entries of ``W`` (a negative
    off the graph's edges removes nothing), without stored zeros."""
    cut = W.copy()
    removed = sp.csr_matrix(Wdis).multiply(W != 0) * beta
    cut = (cut - removed).tocsr()
    np.clip(cut.data, 0.0, None, out=cut.data)
    cut.eliminate_zeros()
    cut.sort_indices()
    return cut


class _OnGraph:
    """Weights on the stored entries of the fit's graph ``W``: the mined
    negatives ``w_ij share_ij``, kept as the float32 shares (aligned with
    ``W.data``) on ``W``'s pattern, so that the cut graph and its system
    reuse ``W``'s structure."""

    def __init__(self, W, shares):
        self.W, self.shares = W, shares

    def tocsr(self):
        """The weights as a float64 CSR matrix without stored zeros."""
        return on_pattern(self.W, self.W.data * self.shares)


def _count_nonzero(Wdis):
    if isinstance(Wdis, _OnGraph):
        return int(np.count_nonzero((Wdis.shares != 0) & (Wdis.W.data != 0)))
    return int(Wdis.nnz)


class _Mining:
    """What the negatives of a fit may read: the graph, the labels, the
    features (in the order of the solves), and the solves themselves.

    ``solve_lp()`` solves plain label propagation once (later calls return
    the same solution), ``solve_mixed(Wdis, x0)`` the propagation with
    negatives (keeping the base system), ``distributions(F)`` turns a
    solution into the class distributions the estimator would output, and
    ``features()`` gives the rows of the linear view (None for a
    precomputed graph). ``n_iter`` counts the iterations of the solves
    made for the mining beyond the first propagation.
    """

    def __init__(
        self, est, W, knn, negatives, row_scale, y_index, labeled, orphan,
        system, data, clock,
    ):
        self.est, self.W, self.knn, self.negatives = est, W, knn, negatives
        self.row_scale, self.y_index, self.labeled = row_scale, y_index, labeled
        self.orphan, self.system, self._data, self.clock = orphan, system, data, clock
        self.n_classes = est.classes_.size
        self.n_iter = 0
        self._lp = self._lp_tol = None
        # set when a round's cut system took the base system's place
        self.base_replaced = False

    def solve_lp(self, tol=None):
        if self._lp is None:
            result = self.est._cg(self.system["A"], self.system["B"], tol=tol)
            self.clock.lap(
                "label_propagation", f"{result.n_iter} iterations", result.n_iter
            )
            loose = tol is not None and tol > self.est.tol
            self._lp, self._lp_tol = result.X, tol if loose else None
        return self._lp

    def solve_mixed(self, Wdis, x0, tol=None):
        """The propagation with the negatives ``Wdis``, keeping the base
        system; the warm start ``x0`` is overwritten by the solution."""
        n_iter = self.est.n_iter_
        if x0 is self._lp:
            self._lp = None  # plain_solution() solves again if it is needed
        G, self._orphan = self.est._mixed_solve(
            self.system, self.W, Wdis, x0, self.row_scale, self, keep=True,
            tol=tol,
        )
        self.n_iter += self.est.n_iter_ - n_iter
        return G

    def warm_start(self, F):
        """``F`` (a solution of the mining) as the warm start of the final
        solve: float64, or the float32 ``F`` itself when the final solve
        iterates in float32 alone (a tol of at least 1e-4) or runs in
        column passes (``block_cg``'s ``working_memory``; ``F`` then holds
        the solution rounded to float32). The mining's own reference to it
        is dropped, so that a float32 ``F`` converted to float64 is freed
        before the solve allocates its blocks."""
        if F is None:
            return None
        if F is self._lp:
            self._lp = None
        dtype = np.float32 if self.est._single() else np.float64
        if F.dtype == np.float32 and (
            # a float32 solve to a loose tol iterates on F itself
            self.est._system_dtype(None) == np.float32
            # a solve in column passes writes each pass's float64 solution
            # into its warm start: no float64 n x C block besides it
            or _solvers.columns_per_pass(*F.shape, dtype) < F.shape[1]
        ):
            return F
        return np.asarray(F, dtype=np.float64)

    def plain_solution(self):
        """The plain propagation at the estimator's ``tol``: the solution of
        :meth:`solve_lp`, refined from where it stopped when it was solved
        to a looser tolerance for the mining."""
        est, old = self.est, self.system["A"]
        final = isinstance(old, _solvers._GraphSystem)  # already the final form
        dtype = est._system_dtype(None)  # that of the final solve
        if not final and (self.base_replaced or old.dtype != dtype):
            # a round's cut system overwrote the base one, or the base one
            # was kept in float32 for loose solves: build it again
            # (float32 values and float64 residuals read from the graph
            # where the solve can, into the old float32 buffer)
            graph = est._graph_residuals()
            self.system["A"] = est._base_system(
                self.W, self.y_index, self.labeled, self.orphan,
                B=self.system["B"], pattern=self.system["pattern"], graph=graph,
                out=old.data if old.dtype == np.float32 and (graph or dtype == np.float32) else None,
                dtype=dtype,
            )[0]
            del old
            self.base_replaced, self._lp = False, None
        F = self.solve_lp()
        if self._lp_tol is not None:
            F = self.est._cg(self.system["A"], self.system["B"], x0=F, overwrite_x0=True).X
            self._lp, self._lp_tol = F, None
        return F

    def finish(self, G, orphan):
        """Zero the rows without a labeled graph part, then class-mass
        normalisation (in place)."""
        G[orphan] = 0.0
        if self.est.class_mass_normalization:
            G = _class_mass_normalize(G, self.est.class_prior_)
        return G

    def distributions(self, G):
        """The class distributions the estimator would output for the
        latest solution ``G`` (left unchanged)."""
        orphan = getattr(self, "_orphan", self.orphan)
        present = np.bincount(self.y_index[self.labeled], minlength=self.n_classes) > 0
        P, _ = normalize_distributions(self.finish(G.copy(), orphan), present / present.sum())
        return P

    def views(self, G, chunk_rows=_ROW_CHUNK):
        """What the mining reads of the distributions of :meth:`distributions`
        for the latest solution ``G`` (left unchanged, and read again by
        the first): their unit rows (a
        :class:`~sklearn_mixedlp._negatives.DistributionRows` on ``G``),
        their arg-max and their confidence, computed in chunks of rows
        without an ``n x C`` temporary."""
        orphan = getattr(self, "_orphan", self.orphan)
        n, C = G.shape
        present = np.bincount(self.y_index[self.labeled], minlength=C) > 0
        uniform = present / present.sum()
        spans = [slice(a, min(a + chunk_rows, n)) for a in range(0, n, chunk_rows)]
        factor = None
        if self.est.class_mass_normalization:
            # _class_mass_normalize, with the column masses summed by chunks
            def column_mass(s):
                g = np.clip(G[s], 0.0, None)
                g[orphan[s]] = 0.0
                return g.sum(axis=0)

            mass = np.zeros(C)
            for part in map_blocks(column_mass, spans):  # in chunk order
                mass += part
            factor = _class_mass_factors(self.est.class_prior_, mass)
        scale = np.zeros(n)
        labels = np.empty(n, dtype=np.int64)
        confidence = np.empty(n)

        def chunk(s):
            g = np.clip(G[s], 0.0, None)
            g[orphan[s]] = 0.0
            if factor is not None:
                g *= factor
            norms = np.linalg.norm(g, axis=1)
            P, empty = normalize_distributions(g, uniform, overwrite=True)
            labels[s] = P.argmax(axis=1)
            confidence[s] = entropy_confidence(P)
            np.divide(1.0, norms, out=scale[s], where=~empty)

        map_blocks(chunk, spans)
        scale[orphan] = 0.0
        return DistributionRows(G, scale, uniform, factor), labels, confidence

    def features(self):
        if self._data is None:
            return None
        X, perm = self._data
        lifted = self.est.lift_height_ > 0
        if not sp.issparse(X) and X.shape[1] <= linear_view_width(self.n_classes, lifted):
            # narrow rows are not projected: normalised and reordered as
            # they are read, without a copy of X
            return UnitFeatureRows(X, perm)
        V, _ = l2_normalize_quiet(X)
        V = discriminant_features(V, self.n_classes, self.est.random_state, lifted)
        return V if perm is None else V[perm]


def _gather_rows(G, source):
    """``G[source]`` for a permutation ``source``: in place with the
    compiled kernels (no second ``n x C`` block), a copy without them."""
    kernels = _kernels.get(G.size)
    if kernels is None:
        return G[source]
    kernels.gather_rows_in_place(G, source, np.zeros(G.shape[0], dtype=np.bool_))
    return G


def _warn_orphans(orphan, n_neighbors):
    """Warn about the rows of graph components without a labeled row."""
    n_orphan = int(orphan.sum())
    if n_orphan:
        warnings.warn(
            f"{n_orphan} of {orphan.size} rows lie in parts of the graph "
            "(connected components) without any labeled row, so no label "
            "reaches them: they get the uniform distribution over the labeled "
            "classes, confidence 0, and in transduction_ the first of classes_ "
            "that has a labeled row. Label a row in each part, raise "
            f"n_neighbors (now {n_neighbors}), or remove exact duplicates "
            "(more than n_neighbors copies of a row form a part of their own).",
            UserWarning,
        )


def _set_distributions(est, G, y_index, labeled, n_classes, dtype=np.float64):
    """``label_distributions_``, ``transduction_`` and ``confidence_`` of
    ``est`` from the scores ``G`` (overwritten when it is in ``dtype``, the
    precision of the features: it then becomes ``label_distributions_``).
    Rows without information are uniform over the classes that have a
    labeled sample, with confidence 0."""
    present = np.bincount(y_index[labeled], minlength=n_classes) > 0
    est._uniform = present / present.sum()
    # in the precision of the features whatever that of the solve, converted
    # by chunks of rows (no n x C temporary besides the result)
    if G.dtype != dtype:
        converted = np.empty(G.shape, dtype=dtype)
        for start in range(0, G.shape[0], _ROW_CHUNK):
            converted[start : start + _ROW_CHUNK] = G[start : start + _ROW_CHUNK]
        G = converted
    est.label_distributions_, empty = normalize_distributions(
        G, est._uniform, overwrite=True
    )
    est.transduction_ = est.classes_[est.label_distributions_.argmax(axis=1)]
    est.confidence_ = entropy_confidence(est.label_distributions_)
    est.confidence_[empty] = 0.0


def _warn_changed_labels(est, y_index, labeled):
    """Warn when labeled rows get another class in ``transduction_``."""
    predicted = est.label_distributions_[labeled].argmax(axis=1)
    changed = predicted != y_index[labeled]
    n_changed = int(changed.sum())
    if n_changed:
        given = est.classes_[np.unique(y_index[labeled][changed])]
        shown = ", ".join(map(repr, given[:10].tolist()))
        more = " ..." if given.size > 10 else ""
        warnings.warn(
            f"{n_changed} of {changed.size} labeled rows get a class other than "
            f"their given label in transduction_ (given classes {shown}{more}). "
            f"The fit to the labels is soft, with weight mu={est.mu_:g}: a larger "
            "mu (e.g. mu=1) keeps the given labels, at some cost in smoothing.",
            UserWarning,
        )


class _BaseMixedLP(ClassifierMixin, BaseEstimator):
    """Shared machinery of the label-propagation estimators."""

    _parameter_constraints = {
        "dissimilarity_loss": [StrOptions({"mixed", "lpdr", "cut"})],
        "n_neighbors": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "kernel": [StrOptions(set(KERNELS))],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "lift": [Interval(Real, 0, None, closed="left")],
        "laplacian": [StrOptions({"normalized", "combinatorial"})],
        "class_mass_normalization": ["boolean"],
        "class_prior": ["array-like", None],
        "scale_free": ["boolean"],
        "mu": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "source": [StrOptions({"labels", "poisson"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "knn_backend": [StrOptions(set(KNN_BACKENDS))],
        "solver": [StrOptions(set(SOLVERS))],
        "device": [str],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "classes": ["array-like", None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.knn_backend not in ("faiss", "torch")
        tags.input_tags.pairwise = self.knn_backend == "precomputed"
        return tags

    # The parameters that reproduce the paper (eqs. 15-24) literally.
    _PAPER_PARAMS = {
        "n_neighbors": 50,
        "kernel": "power",
        "gamma": 3.0,
        "laplacian": "combinatorial",
        "mu": _PAPER_MU,
        "beta": 1.0,
        "lift": 0.0,
        "class_mass_normalization": False,
        "scale_free": False,
        "dissimilarity_loss": "mixed",
    }

    @classmethod
    def paper(cls, *args, **params):
        """The estimator configured as in the paper (eqs. 15-24, literally).

        ``n_neighbors=50``, ``kernel='power'`` with ``gamma=3`` on the
        rows' directions (eq. 15, ``lift=0``),
        ``laplacian='combinatorial'`` (eq. 16), ``mu=1/99``, ``beta=1``,
        no class-mass normalisation, and for :class:`HardNegativeLP`
        ``temperature=4`` on the raw scores of eq. 20
        (``scale_free=False``). The defaults differ where measurements
        showed the literal method to be fragile; see the user guide.

        Parameters
        ----------
        *args, **params
            Passed to the constructor; ``params`` override the paper's
            values.

        Returns
        -------
        estimator : instance of the class
            An unfitted estimator.
        """
        positional = [
            name
            for name in inspect.signature(cls.__init__).parameters
            if name != "self"
        ][: len(args)]
        given = dict(zip(positional, args))
        return cls(**{**cls._PAPER_PARAMS, **given, **params})

    # -- hooks for the subclasses ---------------------------------------
    @abstractmethod
    def _negative_weights(self, mining):
        """Return ``(Wdis, F)``: the dissimilarity weights and, when it was
        needed to mine them, the latest solution (else None), from the
        :class:`_Mining` context ``mining``."""

    # -- fit ------------------------------------------------------------
    def _fit(self, X, y, negatives=None):
        clock = _StageClock(type(self).__name__, self.verbose)
        precomputed = self.knn_backend == "precomputed"
        check_memory_mapped(X)
        X, y = validate_data(
            self,
            X,
            fill_unlabeled(y),  # NaN / None: unlabeled, as -1
            accept_sparse="csr",
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
        )
        unlabeled = unlabeled_mask(y)
        self.classes_, y_index = self._encode_labels(y, unlabeled)
        self.class_prior_ = self._target_masses(y_index[~unlabeled])
        n_samples, n_classes = X.shape[0], self.classes_.size
        n_labeled = np.count_nonzero(~unlabeled)
        self._solver, self._device = resolve_solver(self.solver, self.device)
        self.mu_ = self.mu
        if self.mu == "auto":
            # a random walk of the propagation lasts about 1 / mu steps: the
            # paper's 99, or fewer, as many as there are rows per label
            self.mu_ = max(_PAPER_MU, n_labeled / n_samples)

        k = auto_neighbors(self.n_neighbors, n_samples, n_labeled)
        features = X  # the rows the graph and the mining see
        self.lift_height_ = 0.0
        if self.lift > 0 and not precomputed:
            # lifted as they are read: no copy of X
            features, self.lift_height_ = lift_rows(X, self.lift, lazy=True)
        W, knn = self._build_graph(features, k, precomputed, clock)
        if negatives is not None:
            negatives = check_negatives(negatives, n_samples)

        # The solves and the mining read a row of the n x C score block per
        # stored entry of W: they run on rows reordered so that neighbours
        # sit close in memory, and the results are put back in data order.
        perm = self._locality_order(features, W, n_classes, precomputed)
        self._solve_reorder = "auto" if perm is None else None
        if perm is not None:
            W = permute_symmetric(W, perm)
            knn = None if knn is None else permute_symmetric(knn, perm)
            if negatives is not None:
                negatives = permute_symmetric(negatives, perm)
            y_index = y_index[perm]
            unlabeled = unlabeled[perm]

        labeled = ~unlabeled
        orphan = self._unlabeled_components(W, labeled)
        _warn_orphans(orphan, self.n_neighbors_)
        # compiled kernels for the graph, the mining and the solves, when
        # numba is installed and the problem repays their compilation
        self._fit_kernels = _kernels.get(W.nnz * n_classes)
        system = self._base_system(
            W, y_index, labeled, orphan,
            dtype=self._system_dtype(self._mining_solve_tol()),
            # plain propagation: its first solve is the final one
            graph=self._plain_only(negatives) and self._graph_residuals(),
        )
        system = dict(zip(("A", "B", "s", "pattern"), system))
        row_scale = system.pop("s")
        self._coarse = self._coarse_space(perm, row_scale)
        clock.lap("graph", f"{W.nnz} stored entries")
        self.n_iter_ = 0
        mining = _Mining(
            self, W, knn, negatives, row_scale, y_index, labeled, orphan, system,
            None if precomputed else (features, perm), clock,
        )
        Wdis, F = self._negative_weights(mining)
        n_negative = _count_nonzero(Wdis) // 2
        clock.lap(
            "mining" if F is not None else "negatives",
            f"{n_negative} negative edges",
            mining.n_iter,
        )
        if n_negative == 0:
            G = mining.plain_solution()
        else:
            # the final solve's warm start, in its precision (the mining's
            # solves may stop in float32), without a second reference
            F = mining.warm_start(F)
            n_iter = self.n_iter_
            G, orphan = self._mixed_solve(system, W, Wdis, F, row_scale, mining)
            del F
            n_iter = self.n_iter_ - n_iter
            clock.lap("mixed_solve", f"{n_iter} iterations", n_iter)
        system.clear()  # free the systems before the outputs
        del self._fit_kernels, self._coarse
        G = mining.finish(G, orphan)
        del mining  # its references to the graph and the labels
        if perm is not None:
            inverse = np.empty_like(perm)
            inverse[perm] = np.arange(perm.size)
            G = _gather_rows(G, inverse)
            y_index, labeled = y_index[inverse], labeled[inverse]
            if isinstance(Wdis, _OnGraph):
                # the mined negatives are shares of the entries of W (the
                # mining's graph): both move in one pass over the graph
                shares = Wdis.shares
                del Wdis
                W, shares = permute_symmetric(W, inverse, values=shares)
                Wdis = _OnGraph(W, shares)
                del shares
            else:
                # one graph at a time: the old one is freed before the next
                W = permute_symmetric(W, inverse)
                Wdis = permute_symmetric(Wdis, inverse)
        if isinstance(Wdis, _OnGraph):
            Wdis = Wdis.tocsr()

        self.affinity_ = W
        self.dissimilarity_ = Wdis
        # float32 features give float32 distributions (as scikit-learn's
        # classifiers keep float32 input in float32)
        _set_distributions(self, G, y_index, labeled, n_classes, X.dtype)
        del G
        _warn_changed_labels(self, y_index, labeled)
        self._row_keys = _row_hashes(X)
        # equal rows: unlabeled copies first, then in data order
        self._train_order = np.lexsort((labeled, self._row_keys))
        self._train_keys = self._row_keys[self._train_order]
        clock.lap("output", "distributions, confidences")
        self.fit_stages_ = clock.stages
        return self

    def _encode_labels(self, y, unlabeled):
        if not np.any(~unlabeled):
            raise ValueError(
                "y has no labeled sample: every entry is -1 (unlabeled). At "
                "least one labeled sample is needed."
            )
        y_labeled = y[~unlabeled]
        check_classification_targets(y_labeled)
        if self.classes is None:
            classes = np.unique(y_labeled)
        else:
            classes = np.asarray(self.classes)
            if np.unique(classes).size != classes.size:
                raise ValueError("classes contains duplicated labels.")
            unknown = ~np.isin(y_labeled, classes)
            if unknown.any():
                raise ValueError(
                    f"y contains labels {np.unique(y_labeled[unknown]).tolist()} "
                    "that are neither -1 (unlabeled) nor one of classes="
                    f"{classes.tolist()}."
                )
            missing = classes[~np.isin(classes, y_labeled)]
            if missing.size:
                warnings.warn(
                    f"Classes {missing.tolist()} have no labeled sample; their "
                    "probability stays 0 and they are never predicted.",
                    UserWarning,
                )
        order = np.argsort(classes, kind="stable")
        y_index = np.zeros(y.shape[0], dtype=np.int64)
        y_index[~unlabeled] = order[np.searchsorted(classes[order], y_labeled)]
        return classes, y_index

    def _target_masses(self, y_labeled):
        """The class masses that class-mass normalisation aims at (the
        fitted ``class_prior_``): ``class_prior`` normalised to sum to 1,
        else the proportions of the labels ``y_labeled`` (indices into
        ``classes_``); None without class-mass normalisation."""
        n_classes = self.classes_.size
        if self.class_prior is None:
            if not self.class_mass_normalization:
                return None
            return np.bincount(y_labeled, minlength=n_classes) / y_labeled.size
        if not self.class_mass_normalization:
            raise ValueError(
                "class_prior is the target of class-mass normalisation; it "
                "needs class_mass_normalization=True."
            )
        prior = check_array(
            self.class_prior, ensure_2d=False, dtype=np.float64, input_name="class_prior"
        )
        if prior.ndim != 1 or prior.size != n_classes:
            raise ValueError(
                f"class_prior must have one entry per class, in the order of "
                f"classes_ {self.classes_.tolist()}; got shape {prior.shape}."
            )
        if np.any(prior < 0) or not prior.sum() > 0:
            raise ValueError(
                "class_prior must be non-negative with a positive sum (it is "
                f"normalised to sum to 1); got {prior.tolist()}."
            )
        return prior / prior.sum()

    def _build_graph(self, X, n_neighbors, precomputed, clock):
        self._ivf_lists = None
        if precomputed:
            A = check_precomputed_graph(X)
            self.n_neighbors_ = int(np.diff(A.indptr).max(initial=0))
            self.knn_backend_ = "precomputed"
            self._index = None
            clock.lap("neighbors", "precomputed graph")
            return symmetrize(A), A
        sim, idx, index, zero, k, backend = search_neighbors(
            X, n_neighbors, self.knn_backend, self.random_state, self.device
        )
        self.n_neighbors_, self.knn_backend_ = k, backend
        self._index, self._zero_rows = index, zero
        # the lists of an inverted-file search (each row's list and their
        # centroids) give the solve order its cells and the solves their
        # coarse space (see _coarse_space); the index drops them
        if getattr(index, "cells_", None) is not None:
            self._ivf_lists = (index.cells_, index.cell_centers_)
            index.cells_ = index.cell_centers_ = None
        clock.lap("neighbors", f"{k} neighbours with {backend!r}")
        A, knn = assemble_affinity(
            sim, idx, zero, self.kernel, self.gamma, adjacency=self._needs_knn()
        )
        del sim, idx
        return symmetrize(A), knn

    def _locality_order(self, X, W, n_classes, precomputed):
        """The row order of the solves (see :func:`locality_order`), or
        None: for a precomputed graph (no features; the solver then picks
        its own order), on a GPU, and when the score block fits in cache."""
        # below the solver's cache size the score block needs no reordering
        small = W.shape[0] * n_classes * 4 <= _solvers._CACHE_BYTES
        if precomputed or small or is_cuda(self._device):
            return None
        return locality_order(
            X, W, random_state=self.random_state, lists=self._ivf_lists
        )

    def _needs_knn(self):
        """Whether the negatives need the boolean kNN adjacency (MoM)."""
        return False

    @staticmethod
    def _unlabeled_components(W, labeled):
        """Rows of connected components of ``W`` without a labeled sample.

        ``W`` is structurally symmetric (every graph of a fit is), so its
        strongly connected components are its connected components;
        scipy's undirected mode would add the transpose first (2-4 times
        slower on 1M rows)."""
        n_components, component = connected_components(
            W, directed=True, connection="strong"
        )
        has_label = np.bincount(component, weights=labeled, minlength=n_components)
        return has_label[component] == 0

    def _single(self):
        """Whether the solves iterate in float32. The normalised system has
        eigenvalues in ``[mu, 2 + mu]``: float32 iterations with float64
        residual refreshes meet tol in as many iterations as float64 and
        move half the bytes."""
        return self.laplacian == "normalized" and self.mu_ >= _SINGLE_MIN_MU

    def _mining_solve_tol(self):
        """The tolerance of the solves that only feed the mining (None:
        every solve meets ``tol``)."""
        return None

    def _system_dtype(self, tol):
        """The precision to store a system in for solves to ``tol`` (None:
        the estimator's): float32 when they iterate in float32 to a
        tolerance that float32 alone meets (``block_cg`` then never reads
        the system in float64, so a float64 copy would only take memory),
        float64 otherwise."""
        tol = self.tol if tol is None else max(tol, self.tol)
        loose = tol >= _solvers._SINGLE_ONLY_TOL
        return np.float32 if self._single() and loose else np.float64

    def _cg(self, A, B, x0=None, overwrite_x0=False, tol=None, scale=None):
        """:func:`block_cg` with the fit's settings; ``scale`` is the row
        scale of ``A`` when it is not that of the base system (a cut
        graph's degrees), for the coarse space."""
        single = self._single()
        coarse = getattr(self, "_coarse", None)
        if coarse is not None and scale is not None:
            coarse = coarse.reweighted(_coarse_weights(scale))
        result = block_cg(
            A,
            B,
            x0=x0,
            tol=self.tol if tol is None else max(tol, self.tol),
            max_iter=self.max_iter,
            solver=self._solver,
            device=self._device,
            dtype=np.float32 if single else np.float64,
            verbose=max(self.verbose - 1, 0),
            reorder=self._solve_reorder,
            overwrite_x0=overwrite_x0,
            coarse=coarse,
        )
        self.n_iter_ += result.n_iter
        return result

    def _coarse_space(self, perm, row_scale):
        """The coarse space of the solves' two-level preconditioner (see
        :class:`~._solvers.CoarseSpace`), or None (Jacobi alone).

        Its aggregates are the cells of the inverted-file neighbour search
        (spherical k-means, about ``2 sqrt(n)`` cells), found only by the
        approximate faiss search of large fits: compact clusters of rows,
        on which the slow modes of the propagation are nearly constant.
        Each row's value in its cell's coarse vector is ``1 / s``, the
        inverse of the row scale (``sqrt(degree)`` for the normalised
        Laplacian, 1 for the combinatorial one): the vector that the
        product with the graph's part of the system leaves unchanged."""
        lists, self._ivf_lists = self._ivf_lists, None
        if lists is None:
            return None
        cells = lists[0]
        if perm is not None:
            cells = cells[perm]
        return _solvers.CoarseSpace(cells, _coarse_weights(row_scale))

    def _base_system(
        self, W, y_index, labeled, orphan, *, values=None, degree=None,
        pattern=None, B=None, out=None, dtype=np.float64, graph=False,
    ):
        """The label-propagation system ``(A, B)``, the row scale and the
        pattern of ``A``.

        ``laplacian='combinatorial'`` (eq. 16): ``A = L + U``, ``B = U Y``,
        with a tiny ridge on graph components without labels.
        ``laplacian='normalized'`` (Zhou et al. 2004): ``A = (1 + mu) I -
        D^-1/2 W D^-1/2``, ``B = mu Y``, i.e. ``(I - alpha S) F = (1 -
        alpha) Y`` with ``alpha = 1 / (1 + mu)``; its eigenvalues lie in
        ``[mu, 2 + mu]``, so conjugate gradient converges in few
        iterations. Returns ``(A, B, s, pattern)`` where ``s`` scales the
        rows of a solution into scores whose neighbour average is eq. 17's
        fixed point (1 for the combinatorial Laplacian, ``D^-1/2``
        otherwise), and ``pattern`` the :class:`_Pattern` of ``A``.

        ``values`` (with their row sums ``degree``) replace the affinities
        of ``W`` on its stored entries (a cut graph), ``pattern`` and ``B``
        are reused when given, and ``out`` receives the values of ``A``
        (else a new array of ``dtype``: float32 for a system that only
        feeds loose float32 solves, see :meth:`_system_dtype`). With
        ``graph``, ``A`` is the :meth:`_graph_system` of the final solve.
        """
        if values is None:
            values = W.data
            degree = np.asarray(W.sum(axis=1)).ravel()
        mu = self.mu_
        if B is None:
            # B = U Y = mu Y: mu on the labeled rows, in their class's column;
            # sparse, as the solves keep it (nonzero on the labeled rows only)
            rows = np.flatnonzero(labeled)
            sources = np.zeros((rows.size, self.classes_.size))
            sources[np.arange(rows.size), y_index[rows]] = mu
            if self.source == "poisson":
                # Poisson-type sources: the labels minus their mean, so that
                # each class's sources sum to zero
                sources -= sources.mean(axis=0)
            n_classes = sources.shape[1]
            B = sp.csr_matrix(
                (sources.ravel(), np.tile(np.arange(n_classes), rows.size),
                 np.r_[0, np.cumsum(labeled) * n_classes]),
                shape=(W.shape[0], n_classes),
            )
        if pattern is None:
            pattern = _Pattern(W, getattr(self, "_fit_kernels", None))
        scale, diagonal = self._system_terms(degree, labeled, orphan)
        if graph:
            A = self._graph_system(W, None, values, scale, diagonal, pattern, out)
        else:
            A = pattern.system(values, scale, -1.0, diagonal, out, dtype)
        return A, B, scale, pattern

    def _plain_only(self, negatives):
        """Whether the fit is plain propagation (no negatives of any kind),
        so that its first solve is its final one."""
        return False

    def _system_terms(self, degree, labeled, orphan):
        """The row scale ``s`` and the diagonal ``a`` of the system ``A =
        diag(a) - D_s W D_s`` on a graph of row sums ``degree``."""
        mu = self.mu_
        if self.laplacian == "combinatorial":
            ridge = _RIDGE * max(degree.mean(), 1.0) * orphan
            # L + U (+ ridge), eq. 16
            return np.ones_like(degree), degree + mu * labeled + ridge
        scale = np.zeros_like(degree)
        np.divide(1.0, np.sqrt(degree), out=scale, where=degree > 0)
        # (1 + mu) I - D^-1/2 W D^-1/2
        return scale, np.full_like(degree, 1.0 + mu)

    def _graph_system(self, W, share, values, scale, diagonal, pattern, out=None):
        """The final solve's system ``diag(diagonal) - D_s M D_s`` on ``W``
        (cut by ``share`` when given: ``values`` are the cut affinities) as
        a :class:`~._solvers._GraphSystem`: stored in float32 (into ``out``
        when given), its float64 residuals read from ``W`` and ``share``,
        which the fit keeps anyway."""
        kernels = self._fit_kernels
        A32 = pattern.system(values, scale, -1.0, diagonal, out, np.float32)

        def build():
            values = W.data if share is None else _cut_values(W, share, self.beta, kernels)[0]
            return pattern.system(values, scale, -1.0, diagonal)

        return _solvers._GraphSystem(A32, W, share, self.beta, scale, -1.0, diagonal, build)

    def _graph_residuals(self):
        """Whether the final solve may read its float64 residuals from the
        graph (:meth:`_graph_system`): float32 steps on the CPU with the
        compiled kernels, to a tolerance below what float32 alone meets."""
        return (
            getattr(self, "_fit_kernels", None) is not None
            and self._solver == "scipy"
            and self._single()
            and self.tol < _solvers._SINGLE_ONLY_TOL
        )

    def _mixed_solve(
        self, system, W, Wdis, F, row_scale, mining, keep=False, tol=None
    ):
        """Solve the propagation with the negatives ``Wdis``; returns the
        solution and the rows of graph parts without a labeled sample.

        - ``'mixed'``: eq. 24's SPD system ``(L + 2 beta Q + U) G = U Y``
          with ``Q = Ddis + Wdis``;
        - ``'lpdr'``: LPDR's ``(L - 2 beta Ldis + U) G = U Y`` (MINRES);
        - ``'cut'``: the propagation on ``W - beta Wdis`` (clipped at 0),
          i.e. LPDR's loss with each negative bounded by its edge's
          affinity, which keeps the system positive definite.

        With the normalised Laplacian, ``Q`` and ``Ldis`` become ``D^-1/2 Q
        D^-1/2``; the cut graph gets its own degrees. The warm start ``F``
        is overwritten by the solution, to save memory. With the cut loss
        on negatives on the graph's pattern, the cut system takes the
        place of ``system['A']`` (its values are written over the old
        ones), and stays there with ``keep``; otherwise ``system['A']`` is
        dropped unless ``keep``."""
        if self.dissimilarity_loss == "cut" and isinstance(Wdis, _OnGraph):
            # the cut graph is W with new values: same pattern, same system
            # structure, same row order
            cut, degree, removed = _cut_values(
                W, Wdis.shares, self.beta, getattr(self, "_fit_kernels", None)
            )
            orphan = mining.orphan
            if removed:
                # the parts of the cut graph: its edges cut to 0 are no edges
                # (connected_components counts a stored zero as one)
                W_cut = sp.csr_matrix(
                    (cut, W.indices, W.indptr), shape=W.shape, copy=True
                )
                W_cut.eliminate_zeros()
                orphan = self._unlabeled_components(W_cut, mining.labeled)
                del W_cut
            # the values of the cut system overwrite those of the system in
            # place (the base one, or the previous round's cut one): every
            # cut is computed from W, never from an earlier system
            # (in float32 for a solve to a loose tol, see _system_dtype)
            base = system.pop("A")
            if not keep and self._graph_residuals():
                # the final solve: float32 values, float64 residuals from the
                # graph and the shares (no float64 copy of the system)
                scale, diagonal = self._system_terms(degree, mining.labeled, orphan)
                A = self._graph_system(
                    W, Wdis.shares, cut, scale, diagonal,
                    system["pattern"], out=base.data if base.dtype == np.float32 else None,
                )
                del base, cut
                return self._cg(
                    A, system["B"], x0=F, overwrite_x0=True, tol=tol, scale=scale
                ).X, orphan
            dtype = self._system_dtype(tol)
            A, B, scale, _ = self._base_system(
                W, mining.y_index, mining.labeled, orphan, values=cut,
                degree=degree, pattern=system["pattern"], B=system["B"],
                out=base.data if base.dtype == dtype else None, dtype=dtype,
            )
            del base, cut
            if keep:
                system["A"] = A
                mining.base_replaced = True
            return self._cg(A, B, x0=F, overwrite_x0=True, tol=tol, scale=scale).X, orphan
        if isinstance(Wdis, _OnGraph):
            Wdis = Wdis.tocsr()
        if self.dissimilarity_loss == "cut":
            if not keep:
                system.pop("A", None)
            W_cut = _cut_graph(W, Wdis, self.beta)
            orphan = self._unlabeled_components(W_cut, mining.labeled)
            A, B, scale, _ = self._base_system(
                W_cut, mining.y_index, mining.labeled, orphan
            )
            del W_cut
            return self._cg(A, B, x0=F, overwrite_x0=True, tol=tol, scale=scale).X, orphan
        dis_degree = sp.diags(np.asarray(Wdis.sum(axis=1)).ravel())
        sign = 1.0 if self.dissimilarity_loss == "mixed" else -1.0
        Q = dis_degree + sign * Wdis  # signless Laplacian, or Ldis for LPDR
        if self.laplacian == "normalized":
            Q = sp.diags(row_scale) @ Q @ sp.diags(row_scale)
        base = system["A"] if keep else system.pop("A")
        if base.dtype != np.float64 and not keep:
            # the rounds kept the base system in float32: the final solve's
            # system is built again in float64
            base = self._base_system(
                W, mining.y_index, mining.labeled, mining.orphan,
                pattern=system["pattern"], B=system["B"],
            )[0]
        A = (base + sign * 2 * self.beta * Q).tocsr()
        del Q, base
        if self.dissimilarity_loss == "mixed":
            result = self._cg(A, system["B"], x0=F, overwrite_x0=True, tol=tol)
            return result.X, mining.orphan
        result = minres_solve(
            A, system["B"], x0=F, tol=self.tol, max_iter=self.max_iter
        )
        self.n_iter_ += result.n_iter
        return result.X, mining.orphan

    # -- prediction -----------------------------------------------------
    def predict_proba(self, X):
        """Class distributions of the rows of ``X``.

        A row equal to a training row gets that row's transductive
        distribution, so ``predict(X_train)`` equals ``transduction_``.
        With exact duplicates among the training rows, row ``i`` of ``X``
        equal to training row ``i`` gets that row's distribution, and any
        other row equal to several training rows gets that of the first
        unlabeled one among them (else of the first). Any other row gets
        the average of the distributions of its ``n_neighbors_`` nearest
        training samples, weighted by the affinity kernel of the graph
        (``[v^T v_i]_+^gamma`` for ``kernel='power'``). A row with no
        positive weight (an all-zero row that equals no training row, or
        any all-zero affinity row with ``knn_backend='precomputed'``) is
        uniform over the classes that have a labeled sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Feature rows, or, with ``knn_backend='precomputed'``, affinities
            of shape (n_samples, n_training_samples).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns ordered as ``classes_``.
        """
        check_is_fitted(self)
        if getattr(self, "_distributed_fit", False):
            raise ValueError(
                f"This {type(self).__name__} was fitted by fit_distributed: its "
                "training rows stay on the cluster, so it cannot place new rows; "
                "read transduction_ and label_distributions_, or fit it on one "
                "machine to predict."
            )
        # the dense-only neighbour indexes cannot search sparse rows
        dense_only = self.knn_backend_ in ("faiss", "torch")
        X = validate_data(
            self,
            X,
            reset=False,
            accept_sparse=False if dense_only else "csr",
            dtype=[np.float64, np.float32],
        )
        match = self._match_training_rows(X)
        proba = np.empty(
            (X.shape[0], self.classes_.size), dtype=self.label_distributions_.dtype
        )
        hit = match >= 0
        proba[hit] = self.label_distributions_[match[hit]]
        if not hit.all():
            proba[~hit] = self._inductive_proba(X[np.flatnonzero(~hit)])
        return proba

    def predict(self, X):
        """Predicted class of each row of ``X`` (see :meth:`predict_proba`).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Feature rows.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels; on the training rows, ``transduction_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def _match_training_rows(self, X):
        """Index of the training row equal to each row of ``X``, or -1.

        Row ``i`` of ``X`` equal to training row ``i`` maps to it (so
        ``predict(X_train)`` is ``transduction_`` even with exact
        duplicates); any other row equal to several training rows maps to
        the first unlabeled one of them (whose distribution is the
        propagation's, not partly the given label's), else to the first.
        With a precomputed graph an all-zero affinity row has no match: it
        carries no information and gets the uniform distribution."""
        keys = _row_hashes(X)
        pos = np.searchsorted(self._train_keys, keys)
        pos = np.minimum(pos, self._train_keys.size - 1)
        match = np.where(self._train_keys[pos] == keys, self._train_order[pos], -1)
        n = min(keys.size, self._row_keys.size)
        same = np.flatnonzero(keys[:n] == self._row_keys[:n])
        match[same] = same
        if self.knn_backend_ == "precomputed":
            empty = (np.diff(X.indptr) == 0) if sp.issparse(X) else ~X.any(axis=1)
            match[np.asarray(empty).ravel()] = -1
        return match

    def _inductive_proba(self, X):
        n_train = self.label_distributions_.shape[0]
        if self._index is None:
            affinity = check_precomputed_graph(X, n_samples=n_train)
        else:
            if self.lift_height_ > 0:
                X, _ = lift_rows(X, self.lift, height=self.lift_height_)
            V, zero = l2_normalize(X)
            sim, idx = self._index.kneighbors(V, self.n_neighbors_)
            sim[zero] = 0.0
            affinity = knn_affinity(
                sim,
                idx,
                self.gamma,
                n_train,
                self._zero_rows,
                kernel=self.kernel,
                zero_queries=zero,
            )
        mass = np.asarray(affinity.sum(axis=1)).ravel()
        scores = affinity @ self.label_distributions_
        proba = np.tile(self._uniform, (scores.shape[0], 1))
        has_mass = mass > 0
        proba[has_mass] = scores[has_mass] / mass[has_mass, None]
        return proba


_SHARED_PARAMS_DOC = """
    n_neighbors : int or 'auto', default=10
        Number of nearest neighbours ``k`` of the affinity graph (eq. 15;
        the paper uses 50). Clipped to ``n_samples - 1`` with a warning.
        ``'auto'``: ``k = sqrt(n_samples / n_labeled)``, rounded, within
        ``[10, 50]``: a denser graph when each label has many rows to
        reach (at 1 label per class it gained 0.8 points on average over
        nine data sets, up to 3 on the larger ones, and lost up to 1 on
        the smallest; at 5 per class it is about 10 and changes
        nothing). The value used is ``n_neighbors_``. Ignored with
        ``knn_backend='precomputed'``.
    kernel : {'self_tuning', 'power'}, default='self_tuning'
        Affinity of a row ``v_j`` to each of its neighbours ``v_i`` (rows
        L2-normalised). ``'power'``: ``[v_j^T v_i]_+^gamma`` (eq. 15).
        ``'self_tuning'``: ``exp(-4 ||v_j - v_i||^2 / r_j^2)``, ``r_j`` the
        distance to the ``k``-th neighbour, which adapts to the local
        density and to the spread of the similarities.
    gamma : float, default=3.0
        Exponent ``gamma`` of the ``'power'`` kernel (eq. 15).
    lift : float, default=0.5
        Height ``c`` of a constant coordinate appended to every row before
        the rows are L2-normalised, in units of the root-mean-square row
        norm (the value used is ``lift_height_``). ``0``: the graph sees
        the rows' directions only (cosine similarity, as in eq. 15). ``c >
        0`` keeps part of their norms: the similarity of ``x`` and ``z``
        becomes ``(x^T z + c^2) / sqrt((|x|^2 + c^2)(|z|^2 + c^2))``, which
        tends to the Euclidean geometry as ``c`` grows and leaves rows of
        equal norm (e.g. normalised text embeddings) as they were (such
        rows are not lifted: ``lift_height_`` is 0). The
        default keeps half of the norms' say: against ``lift=0`` it gained
        on average on nine data sets, two image-embedding sets and eight
        further tabular sets, at 1 and at 5 labels per class, and lost up
        to 0.7 points on image pixels, whose norm is mostly brightness, and
        up to 1.6 on one tabular set (see the user guide). The rows are lifted as they are read, without a
        copy of ``X``. The linear view of :class:`HardNegativeLP`'s mining
        sees the lifted rows too. Ignored with
        ``knn_backend='precomputed'``.
    laplacian : {'normalized', 'combinatorial'}, default='normalized'
        ``'combinatorial'``: ``L = D - W`` with the label fit ``U`` on the
        labeled rows (eq. 16). ``'normalized'``: Zhou et al.'s spreading
        ``(I - alpha S) F = (1 - alpha) Y``, ``S = D^-1/2 W D^-1/2``,
        ``alpha = 1 / (1 + mu)``, with the dissimilarity term scaled as
        ``D^-1/2 Q D^-1/2``; better conditioned and more accurate when
        labels are few.
    mu : float or 'auto', default='auto'
        Weight ``mu`` of the fit to the given labels (eq. 16). With the
        normalised Laplacian a random walk of the propagation lasts about
        ``1 / mu`` steps. ``'auto'``: the larger of the paper's ``1/99``
        and the fraction of labeled rows, so that the walk lasts 99 steps,
        or fewer when there are fewer rows per label (the propagation gets
        more local as labels get denser, and keeps the given labels). The
        value used is ``mu_``. The
        fit is soft: with a small ``mu`` the graph dominates, and a labeled
        row whose neighbours carry another class may take that class in
        ``transduction_`` (a warning counts such rows); this can erase a
        small class whose few labels sit among many of a larger one. A
        larger ``mu`` (e.g. 1) keeps the given labels, with less smoothing.
    source : {'labels', 'poisson'}, default='labels'
        Right-hand side of the propagation. ``'labels'``: ``mu Y`` on the
        labeled rows. ``'poisson'``: Poisson-type sources ``mu (Y - Ybar)``
        on the labeled rows, ``Ybar`` the mean label vector of the labeled
        rows, so that each class's sources sum to zero (Calder et al.,
        2020); negative scores are clipped when the distributions are
        formed.
    beta : float, default=BETA_DEFAULT
        Weight ``beta`` of the dissimilarity loss (eq. 23); with
        ``dissimilarity_loss='cut'``, the share of each negative weight
        removed from its edge.
    class_mass_normalization : bool, default=True
        Scale each class's column of the solution so that its total mass is
        the fraction of labeled rows in that class (Zhu et al. 2003), or
        ``class_prior`` when given, before the rows are normalised to
        distributions.
    class_prior : array-like of shape (n_classes,), default=None
        The class proportions that class-mass normalisation aims at, when
        they are known and differ from those of the labels (for instance
        when each class was given the same number of labels): one
        non-negative entry per class, in the order of ``classes_``,
        normalised to sum to 1 (counts will do). None: the proportions of
        the labeled rows. Needs ``class_mass_normalization=True``.
    scale_free : bool, default=True
        Measure the negatives in the units of the graph. Mined negatives
        (:class:`HardNegativeLP`): the softmax of eq. 20 acts on the
        neighbour average without ``j`` (eq. 19), centred per row and
        divided by the mean spread of the rows of ``F``, and each weight is
        multiplied by the edge's affinity ``w_ij``. MoM's or user-supplied
        weights: multiplied by the mean affinity of the edges of ``W``, so
        that a weight of 1 counts as much as an average edge. ``False``:
        eqs. 20-24 literally, where the useful ``temperature`` depends on
        the degrees and on ``mu`` and a negative weight may outweigh a
        small affinity many times over.
    dissimilarity_loss : {'mixed', 'lpdr', 'cut'}, default=LOSS_DEFAULT
        ``'mixed'``: the paper's loss ``sum W^dis_ij (G_ic + G_jc)^2``
        (eq. 24), an SPD system solved by conjugate gradient. ``'lpdr'``:
        LPDR's ``-sum W^dis_ij (G_ic - G_jc)^2`` (eq. 25), possibly
        indefinite, solved by MINRES on the CPU. ``'cut'``: the propagation
        on the graph ``max(W - beta W^dis, 0)`` (with its own degrees), i.e.
        LPDR's loss with every negative bounded by its edge's affinity,
        which keeps the system positive definite; negatives on pairs that
        are not edges of the graph have no effect.
    knn_backend : {'auto', 'exact', 'torch', 'faiss', 'pynndescent', \
            'precomputed'}, default='auto'
        Neighbour search. ``'torch'``: exact blocked search with torch on
        ``device`` (CUDA, or the CPU), dense ``X``. ``'precomputed'``: ``X``
        is a sparse non-negative (n_samples, n_samples) affinity / kNN
        graph ``A`` used in place of eq. 15 (``W = A + A^T``); at predict
        time, affinities of the new rows to the training rows. ``'auto'``:
        torch for dense ``X`` when ``device`` is or finds a CUDA device,
        else faiss when installed (exact up to 50,000 rows, IVF above),
        else exact search up to 50,000 rows, else pynndescent when
        installed.
    solver : {'auto', 'scipy', 'torch'}, default='auto'
        Conjugate-gradient backend. ``'auto'`` uses torch on a GPU when
        one is requested or available, scipy otherwise. With the normalised
        Laplacian the iterations run in float32 with float64 residual
        refreshes (``tol`` is met on the float64 residual); see
        :ref:`large_data`.
    device : str, default='auto'
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``: where the torch
        solver and the ``'torch'`` neighbour search run (``'auto'``: a CUDA
        device when there is one).
    tol : float, default=1e-4
        Relative residual tolerance of each column of the solves. The
        default is met by float32 iterations alone (with the normalised
        Laplacian), without a float64 copy of the system or the solution.
        Against ``tol=1e-6`` it changed at most 0.6% of the predictions of
        a draw on eight data sets of the accuracy benchmark and up to 1.8%
        on Fashion-MNIST at 1 label per class (near ties), with accuracy
        within 0.26 points either way, and took the final solve at one
        million rows from 12 to 5 s. Set ``1e-6`` or below for
        distributions accurate to more digits.
    max_iter : int, default=1000
        Maximum iterations of each solve; a
        :class:`~sklearn.exceptions.ConvergenceWarning` is issued when it is
        reached.
    classes : array-like, default=None
        All class labels, when some class has no labeled sample (it is then
        never predicted, with a warning). Default: the labels present in
        ``y``.
    random_state : int, RandomState instance or None, default=None
        Seed of the approximate neighbour search backends and, for
        :class:`HardNegativeLP`'s linear view of wide or sparse features,
        of their randomised projection.
    verbose : int, default=0
        Print stage timings when >= 1, a summary of each solve when >= 2,
        and a progress bar of each solve when >= 3.
"""

_SHARED_ATTRIBUTES_DOC = """
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_prior_ : ndarray of shape (n_classes,) or None
        The class masses that class-mass normalisation aimed at:
        ``class_prior`` normalised, or the proportions of the labeled rows;
        None with ``class_mass_normalization=False``.
    transduction_ : ndarray of shape (n_samples,)
        Pseudolabel ``argmax_c G_ic`` of every training sample. On a
        labeled row it can differ from the given label (see ``mu``; a
        warning counts such rows). On the rows of graph components without
        any labeled row (a warning counts them) it is the first class of
        ``classes_`` that has a labeled row.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Row of ``G`` with negatives clipped to 0, L1-normalised; rows
        without information (all-zero rows, e.g. graph components without a
        labeled sample) are uniform over the classes that have a labeled
        sample. float32 when ``X`` is float32 (as is ``predict_proba``),
        else float64.
    confidence_ : ndarray of shape (n_samples,)
        Confidence ``omega = 1 - H / log C`` of each distribution (eq. 21);
        0 for rows without information.
    affinity_ : sparse CSR matrix of shape (n_samples, n_samples)
        Symmetric affinity matrix ``W = A + A^T`` (eq. 15).
    dissimilarity_ : sparse CSR matrix of shape (n_samples, n_samples)
        Symmetric dissimilarity weights ``W^dis`` (empty for plain LP).
    n_iter_ : int
        Solver iterations of the fit, summed over its solves.
    fit_stages_ : dict
        Where the time of the fit went: for each stage, in order
        (``'neighbors'``: normalisation and neighbour search; ``'graph'``:
        affinities, ``W`` and the system; ``'label_propagation'``: the first
        solve; ``'mining'`` or ``'negatives'``: the dissimilarity weights;
        ``'mixed_solve'``: the solve with negatives; ``'output'``:
        distributions and confidences), a dict with the wall time
        ``'seconds'`` and the solver iterations ``'n_iter'`` (0 outside the
        solves; for ``'mining'``, those of the solves between its rounds).
    mu_ : float
        The label weight ``mu`` used (the labeled fraction for
        ``mu='auto'``).
    n_neighbors_ : int
        Number of neighbours actually used.
    lift_height_ : float
        The constant ``c`` appended to every row (``lift`` times the
        root-mean-square row norm of the training rows; new rows get the
        same); 0 without ``lift``, with a precomputed graph, or when every
        training row has the same norm (within a relative 1e-6, e.g.
        normalised embeddings), whose graph the lift would not change.
    knn_backend_ : str
        Neighbour search backend actually used.
    n_features_in_ : int
        Number of features seen during fit.
"""


_MIXEDLABELPROPAGATION_DOC = (
    """Label propagation with negative (dissimilarity) edges.

    Solves ``(L + 2 beta Q + U) G = U Y`` (eqs. 23-24 of Zhuang & Moulin,
    CVPR 2023) on a kNN affinity graph by block conjugate gradient, with
    ``L`` the graph Laplacian, ``U`` the label weights ``mu`` (eq. 16) and
    ``Q`` the signless Laplacian of the dissimilarity weights. Without
    negatives it is plain label propagation ``(L + U) F = U Y``.

    By default the Laplacian is normalised (Zhou et al.'s spreading, so
    that without negatives this is the "Original LP" of the paper's Table
    3), the graph has 10 neighbours with self-tuning Gaussian weights, and
    the propagated labels are class-mass normalised: measured choices that
    are more accurate at low label rates (see the user guide).
    :meth:`paper` gives the paper's literal configuration.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    negatives : {None, 'mom'}, default=None
        Source of the dissimilarity weights: None for plain label
        propagation (eq. 16), ``'mom'`` for Mining on Manifolds (pairs that
        are kNN but not mutual kNN, weight 1). User-supplied negatives are
        passed to :meth:`fit` instead.
"""
    + _SHARED_PARAMS_DOC.replace("BETA_DEFAULT", "1.0").replace(
        "LOSS_DEFAULT", "'mixed'"
    )
    + """
    Attributes
    ----------"""
    + _SHARED_ATTRIBUTES_DOC
    + """
    See Also
    --------
    HardNegativeLP : Mines the negatives from a first propagation.
    sklearn.semi_supervised.LabelSpreading : Normalised label spreading.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import MixedLabelPropagation
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> X, y = load_digits(return_X_y=True)
    >>> y_train = mask_labels(y, 5, random_state=0)  # 5 labels per class
    >>> lp = MixedLabelPropagation().fit(X, y_train)
    >>> round(float((lp.transduction_ == y).mean()), 2)
    0.97
    >>> paper = MixedLabelPropagation.paper().fit(X, y_train)  # eq. 16 literally
    >>> round(float((paper.transduction_ == y).mean()), 2)
    0.9
    """
)


class MixedLabelPropagation(_BaseMixedLP):
    __doc__ = _MIXEDLABELPROPAGATION_DOC

    _parameter_constraints = {
        **_BaseMixedLP._parameter_constraints,
        "negatives": [StrOptions({"mom"}), None],
    }

    def __init__(
        self,
        negatives=None,
        *,
        n_neighbors=10,
        kernel="self_tuning",
        gamma=3.0,
        lift=0.5,
        laplacian="normalized",
        mu="auto",
        source="labels",
        beta=1.0,
        class_mass_normalization=True,
        class_prior=None,
        scale_free=True,
        dissimilarity_loss="mixed",
        knn_backend="auto",
        solver="auto",
        device="auto",
        tol=1e-4,
        max_iter=1000,
        classes=None,
        random_state=None,
        verbose=0,
    ):
        self.negatives = negatives
        self.n_neighbors = n_neighbors
        self.kernel = kernel
        self.gamma = gamma
        self.lift = lift
        self.laplacian = laplacian
        self.mu = mu
        self.source = source
        self.beta = beta
        self.class_mass_normalization = class_mass_normalization
        self.class_prior = class_prior
        self.scale_free = scale_free
        self.dissimilarity_loss = dissimilarity_loss
        self.knn_backend = knn_backend
        self.solver = solver
        self.device = device
        self.tol = tol
        self.max_iter = max_iter
        self.classes = classes
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, negatives=None):
        """Propagate the labels of ``y`` over the graph of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows (or a precomputed affinity graph).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows (also ``"-1"``, None or NaN;
            see :func:`~sklearn_mixedlp.datasets.unlabeled_mask`).
        negatives : sparse matrix of shape (n_samples, n_samples) or \
                array-like of shape (n_pairs, 2) or (n_pairs, 3), default=None
            User-supplied dissimilarity weights, or ``(i, j[, weight])``
            index pairs (weight 1 when omitted), e.g. oracle negatives. The
            matrix is symmetrised as ``max(S, S^T)``. Overrides the
            ``negatives`` parameter.

        Returns
        -------
        self : MixedLabelPropagation
            The fitted estimator.
        """
        return self._fit(X, y, negatives)

    def _needs_knn(self):
        return self.negatives == "mom"

    def _plain_only(self, negatives):
        return self.negatives is None and negatives is None

    def _negative_weights(self, mining):
        W = mining.W
        n_samples = W.shape[0]
        if mining.negatives is not None:
            Wdis = mining.negatives  # validated and reordered by _fit
        elif self.negatives == "mom":
            Wdis = mom_negative_weights(mining.knn)
        else:
            return sp.csr_matrix((n_samples, n_samples)), None
        if self.scale_free and W.nnz:
            Wdis = Wdis * W.data.mean()  # weight 1 = an average edge of W
        return Wdis, None


_HARDNEGATIVELP_DOC = (
    """Label propagation with mined hard negatives.

    First solves plain label propagation ``(L + U) F = U Y`` (eq. 16). Then,
    for ``n_rounds`` rounds, it gives every graph edge ``(i, j)`` a negative
    weight from two views of the data and solves the propagation again with
    those negatives, warm-started from the previous solution:

    - the propagation's own view: ``d_ij = 1 - cos(P_i, P_j)``, ``P`` the
      class distributions of the latest solution;
    - a linear view: ``q_ij = 1 - cos(Q_i, Q_j)``, ``Q`` the class
      probabilities of a linear discriminant (shared covariance, shrunk)
      fitted in the feature space on the given labels and the
      pseudolabels, each pseudolabel weighted by its confidence;
    - ``Wdis_ij = w_ij (1 - exp(-e_ij / temperature))`` with ``e_ij = (1 +
      view_weight) sqrt(d_ij q_ij)``, the share of the edge's affinity that
      both views say joins two classes, removed from the graph
      (``dissimilarity_loss='cut'``).

    The propagation labels a row from its neighbours, the discriminant from
    directions of the feature space: where the propagation carries one
    class across a whole cluster of another, the linear view often
    separates them, so its negatives land on edges whose ends the
    propagation alone labels alike. Removing (rather than repelling) the
    mined share of an edge is safe when a negative is wrong: the next round
    sees the two ends agree again and restores the edge.

    ``mining='hard'`` gives the paper's edge-removal mining (eqs. 18-22)
    fed to the mixed loss (eqs. 23-24); :meth:`paper` gives the paper's
    literal configuration (``n_neighbors=50``, ``gamma=3``, combinatorial
    Laplacian, ``temperature=4`` on the raw scores).

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    mining : {'two_view', 'agreement', 'hard', 'control'}, default='two_view'
        ``'two_view'``: the two views above. ``'agreement'``: the
        propagation's view alone (``q_ij = 0``); ``'two_view'`` falls back
        to it with a precomputed graph, which has no features
        (``mining_`` says which ran). ``'hard'``: edge-removal mining,
        ``Zt_ij = softmax(lambda (D_ii F_i - w_ij F_j))`` (eqs. 18-22), one
        round. ``'control'``: the paper's Control baseline, ``Zt_ij``
        replaced by the L1-normalised ``F_i``, one round.
    temperature : float, default=None
        ``'two_view'`` and ``'agreement'``: the disagreement at which an
        edge keeps ``exp(-1)`` of its affinity (None: 0.25, so an edge
        whose ends have orthogonal distributions keeps 2%). ``'hard'``: the
        temperature ``lambda`` of eq. 20 (None: 16 in units of a typical
        row's spread with ``scale_free=True``; the paper's value is 4 on
        the raw scores).
    view_weight : float, default=0.5
        ``'two_view'``: with ``view_combination='sum'`` the weight of the
        linear view's disagreement ``q_ij`` against the propagation's
        ``d_ij``; with ``'product'`` the scale ``1 + view_weight`` of their
        geometric mean, so that both combinations give the same ``e_ij``
        where the views agree (``d_ij = q_ij``).
    view_combination : {'product', 'sum'}, default='product'
        ``'two_view'``: how the views' disagreements combine.
        ``'product'``: ``e_ij = (1 + view_weight) sqrt(d_ij q_ij)``, an
        edge is cut only as far as both views see its ends differ.
        ``'sum'``: ``e_ij = d_ij + view_weight q_ij``, either view may cut
        it. Measured on nine data sets, ``'product'`` gives up 0.16 points
        of the mean gain at 5 labels per class and removes the loss where
        the propagation's view is noise (marketing at 50 labels per class:
        -0.67 points for ``'sum'``, -0.10 for ``'product'``); see the user
        guide.
    n_rounds : int, default=2
        Rounds of mining and propagation (``'two_view'`` and
        ``'agreement'``); each round after the first adds one solve. The
        solves that only feed the rounds stop at a relative residual of
        ``1e-3`` (they rank edges; ``tol`` applies to the final solve).
        A third round adds about 0.06 points of accuracy on average and
        takes the fit past twice plain propagation's time on small data
        sets (see the user guide).
"""
    + _SHARED_PARAMS_DOC.replace("BETA_DEFAULT", "1.0").replace(
        "LOSS_DEFAULT", "'cut'"
    )
    + """
    Attributes
    ----------"""
    + _SHARED_ATTRIBUTES_DOC
    + """    mining_ : str
        The mining that ran: ``mining``, or ``'agreement'`` for
        ``'two_view'`` on a precomputed graph.

    See Also
    --------
    MixedLabelPropagation : Plain LP, MoM or user-supplied negatives.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_mixedlp import HardNegativeLP
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> X, y = load_digits(return_X_y=True)
    >>> y_train = mask_labels(y, 5, random_state=0)  # 5 labels per class
    >>> hn = HardNegativeLP().fit(X, y_train)
    >>> round(float((hn.transduction_ == y).mean()), 2)
    0.97
    >>> hn.dissimilarity_.shape
    (1797, 1797)
    """
)


class HardNegativeLP(_BaseMixedLP):
    __doc__ = _HARDNEGATIVELP_DOC

    _parameter_constraints = {
        **_BaseMixedLP._parameter_constraints,
        "mining": [StrOptions({"two_view", "agreement", "hard", "control"})],
        "temperature": [Interval(Real, 0, None, closed="neither"), None],
        "view_weight": [Interval(Real, 0, None, closed="left")],
        "view_combination": [StrOptions({"product", "sum"})],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
    }

    _PAPER_PARAMS = {
        **_BaseMixedLP._PAPER_PARAMS,
        "mining": "hard",
        "temperature": 4.0,
    }

    def __init__(
        self,
        mining="two_view",
        *,
        temperature=None,
        view_weight=0.5,
        view_combination="product",
        n_rounds=2,
        n_neighbors=10,
        kernel="self_tuning",
        gamma=3.0,
        lift=0.5,
        laplacian="normalized",
        mu="auto",
        source="labels",
        beta=1.0,
        class_mass_normalization=True,
        class_prior=None,
        scale_free=True,
        dissimilarity_loss="cut",
        knn_backend="auto",
        solver="auto",
        device="auto",
        tol=1e-4,
        max_iter=1000,
        classes=None,
        random_state=None,
        verbose=0,
    ):
        self.mining = mining
        self.temperature = temperature
        self.view_weight = view_weight
        self.view_combination = view_combination
        self.n_rounds = n_rounds
        self.n_neighbors = n_neighbors
        self.kernel = kernel
        self.gamma = gamma
        self.lift = lift
        self.laplacian = laplacian
        self.mu = mu
        self.source = source
        self.beta = beta
        self.class_mass_normalization = class_mass_normalization
        self.class_prior = class_prior
        self.scale_free = scale_free
        self.dissimilarity_loss = dissimilarity_loss
        self.knn_backend = knn_backend
        self.solver = solver
        self.device = device
        self.tol = tol
        self.max_iter = max_iter
        self.classes = classes
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Mine hard negatives and propagate the labels of ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows (or a precomputed affinity graph).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows (also ``"-1"``, None or NaN;
            see :func:`~sklearn_mixedlp.datasets.unlabeled_mask`).

        Returns
        -------
        self : HardNegativeLP
            The fitted estimator.
        """
        return self._fit(X, y)

    def _mining_solve_tol(self):
        """The tolerance of the solves that only feed the mining: the
        rounds of ``'two_view'`` and ``'agreement'`` only rank edges and
        stop at ``_MINING_TOL``; None (``tol``) for the single-pass
        minings, whose solution is the paper's."""
        return _MINING_TOL if self.mining in ("two_view", "agreement") else None

    def _negative_weights(self, mining):
        self.mining_ = self.mining
        F = mining.solve_lp(tol=self._mining_solve_tol())
        if self.mining in ("hard", "control"):
            if self.mining == "hard":
                Wdis = hard_negative_weights(
                    mining.W, F, self._temperature(), scale_free=self.scale_free,
                    row_scale=mining.row_scale,
                )
            else:
                scores = mining.row_scale[:, None] * F
                Wdis = control_negative_weights(
                    mining.W, scores, scale_free=self.scale_free
                )
            return Wdis, F
        V = mining.features() if self.mining == "two_view" else None
        # without features (a precomputed graph) only the propagation's view
        if V is None:
            self.mining_ = "agreement"
        labeled, y_index = mining.labeled, mining.y_index
        for round_ in range(self.n_rounds):
            if round_:
                F = mining.solve_mixed(Wdis, F, tol=self._mining_solve_tol())
            # the unit rows of the distributions P, their arg-max and
            # confidence (P itself is not kept)
            Pn, pseudo, confidence = mining.views(F)
            Qn = None
            if V is not None:
                # the second view: a linear discriminant on the labels and
                # the pseudolabels, each weighted by its confidence
                labels = np.where(labeled, y_index, pseudo)
                weights = np.where(labeled, 1.0, confidence)
                Qn = discriminant_unit_rows(V, labels, weights, Pn.shape[1])
            del pseudo, confidence
            # agreement_weights, on the stored entries of W
            Wdis = _OnGraph(mining.W, agreement_data(
                mining.W, Pn, Qn, temperature=self._temperature(),
                view_weight=self.view_weight,
                view_combination=self.view_combination, shares=True,
            ))
            del Pn, Qn
        return Wdis, F

    def _temperature(self):
        if self.temperature is not None:
            return self.temperature
        return 16.0 if self.mining == "hard" else 0.25
