"""Linear solvers for the propagation systems.

:func:`block_cg` solves ``A X = B`` for a sparse symmetric positive-definite
``A`` and all ``C`` right-hand sides at once: one sparse-matrix x dense-block
product per iteration, Jacobi preconditioning, a relative residual
tolerance per column. The product runs in scipy (``solver='scipy'``) or in
``torch.sparse_csr_tensor`` (``solver='torch'``, CUDA or CPU). On the CPU the
vector updates are fused per row chunk and spread over threads (numpy and
scipy release the GIL); on CUDA they are whole-tensor torch operations. The
iterations can run in float32 with float64 residual checks, and on rows
reordered for locality (reverse Cuthill-McKee); ``benchmarks/cg_bandwidth.py``
measures what each of these is worth against the memory bandwidth.

:func:`minres_solve` handles the possibly indefinite LPDR system (eq. 25).
"""

import contextlib
import itertools
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import reverse_cuthill_mckee
from sklearn import get_config
from sklearn.exceptions import ConvergenceWarning

from . import _kernels
from ._utils import (
    available_cores,
    progress_bar,
    check_cuda_device,
    check_device,
    cuda_available,
    import_optional,
    is_cuda,
    missing_dependency,
    thread_count,
)

SOLVERS = ("auto", "scipy", "torch")
KERNELS = ("auto", "numba", "scipy")


@dataclass
class SolveResult:
    """Solution of a block solve.

    Attributes
    ----------
    X : ndarray of shape (n, n_rhs)
        Solution, as a float64 numpy array (float32 for a float32 solve to
        a loose tolerance, see :func:`block_cg`).
    n_iter : int
        Iterations performed (the maximum over the columns).
    residuals : ndarray of shape (n_rhs,)
        Final relative residual ``||b - A x|| / ||b||`` of each column.
    converged : bool
        Whether every column reached the tolerance.
    """

    X: np.ndarray
    n_iter: int
    residuals: np.ndarray
    converged: bool


def resolve_solver(solver, device):
    """Pick the backend and the torch device for ``solver`` and ``device``.

    Parameters
    ----------
    solver : {'auto', 'scipy', 'torch'}
        ``'auto'`` uses torch when a CUDA device is requested or available,
        scipy otherwise.
    device : str
        ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.

    Returns
    -------
    solver : {'scipy', 'torch'}
    device : str or None
        The torch device string, or None for scipy.

    Raises
    ------
    ValueError
        For an unknown solver or device, ``device='cuda'`` without a
        usable GPU, or ``solver='scipy'`` with a CUDA device.
    ImportError
        When torch is needed but not installed.
    """
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; expected one of {SOLVERS}.")
    check_device(device)
    if solver == "scipy":
        if is_cuda(device):
            raise ValueError(
                f"solver='scipy' runs on the CPU and cannot use device={device!r}; "
                "use solver='torch' (or 'auto') for a GPU."
            )
        return "scipy", None
    if solver == "auto" and not is_cuda(device):
        if device == "cpu" or not cuda_available():
            return "scipy", None
        return "torch", "cuda"
    torch = import_optional("torch", f"solver={solver!r} with device={device!r}")
    if device == "auto":
        return "torch", "cuda" if torch.cuda.is_available() else "cpu"
    if is_cuda(device):
        check_cuda_device(torch, device)
    return "torch", device


# --------------------------------------------------------------------------
# Block CG building blocks. An iteration is one sparse x dense product and
# three streaming passes over the N x C blocks; the C-sized quantities (dot
# products, step lengths, the active mask) are float64 numpy vectors
# whatever the backend.

# Bytes of one row chunk of the per-thread temporary: it stays in the L2
# cache while the big blocks stream through once per pass.
_CHUNK_BYTES = 512 * 1024
# float32 solves replace the recurrence residual by the true (float64) one
# each time every active column has dropped by this factor (plain float32 CG
# drifts to ~3e-6 of the residual it started from, so 1e-3 keeps the drift
# far below tol; on kNN systems 1e-2 cost one more float64 product per solve
# for the same iterations)
_REFRESH = 1e-3
# ... and at least every this many iterations
_REFRESH_EVERY = 50
# Float32 solves to a relative residual of at least this need no float64
# accumulation: the float32 recurrence residual follows the true one far
# below it on any system that float32 can resolve (its drift is ~1e-7
# cond(A)); the true residual is checked at the end all the same.
_SINGLE_ONLY_TOL = 1e-4


# The product gathers one row of X per stored entry of A. Once X outgrows the
# L2 cache, those gathers are cheap only when consecutive rows of A share
# neighbours, so that the rows of X they read are still in cache. The reverse
# Cuthill-McKee order (a breadth-first numbering) does that on kNN graphs: on
# 2 cores with 1 MiB of L2 each and 32 MiB of L3, products 1.3x faster at
# N = 5,000 (X of 4 MiB) and 1.7-4x at N = 20,000-200,000, for about the cost
# of one product.
_CACHE_BYTES = 2 * 2**20
_WINDOW = 64  # consecutive rows whose gathers should overlap


def _distinct_fraction(A, order=None, n_windows=64):
    """Mean fraction of distinct columns among the stored entries of
    ``_WINDOW`` consecutive rows of CSR ``A`` (rows taken in ``order`` when
    given), over a sample of windows: the share of gathered rows of X that
    a cache of recent rows cannot serve."""
    n = A.shape[0]
    if n <= _WINDOW or A.nnz == 0:
        return 1.0
    starts = np.random.default_rng(0).integers(0, n - _WINDOW, n_windows)
    fractions = []
    for start in starts:
        rows = np.arange(start, start + _WINDOW)
        if order is not None:
            rows = order[rows]
        columns = A[rows].indices
        fractions.append(np.unique(columns).size / max(columns.size, 1))
    return float(np.mean(fractions))


def _locality_order(A, row_bytes, reorder):
    """Row permutation that makes the product gather nearby rows, or None.

    ``reorder='rcm'`` always returns the reverse Cuthill-McKee order;
    ``'auto'`` only when the ``n x C`` block (``row_bytes`` per row) does not
    fit in L2 and the order cuts the :func:`_distinct_fraction` by at least
    a fifth (rows already in a good order, e.g. sorted by class, stay as
    they are); None keeps the rows as they are.
    """
    if reorder not in ("auto", "rcm", None):
        raise ValueError(f"reorder must be 'auto', 'rcm' or None, got {reorder!r}.")
    fits = A.shape[0] * row_bytes <= _CACHE_BYTES
    if reorder is None or (reorder == "auto" and fits):
        return None
    A = sp.csr_matrix(A)
    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
    if reorder == "auto" and _distinct_fraction(A, perm) > 0.8 * _distinct_fraction(A):
        return None
    return perm


def _coldot(a, b):
    """Column dot products ``sum_i a_ij b_ij`` without a temporary."""
    return np.einsum("ij,ij->j", a, b)


class _Sources:
    """The right-hand sides ``B`` of a solve: the array itself when dense,
    its nonzero rows when sparse (a propagation's sources sit on its few
    labeled rows; a dense copy would be as large as the solution).

    ``rows`` are the rows that may be nonzero (sorted; None for a dense
    ``B``: every row) and ``values`` their float64 values (for a dense
    ``B``, ``B`` itself).
    """

    def __init__(self, B):
        if sp.issparse(B):
            B = sp.csr_matrix(B)
            self.rows = np.flatnonzero(np.diff(B.indptr))
            self.values = B[self.rows].toarray().astype(np.float64, copy=False)
        else:
            B = np.asarray(B)
            self.rows, self.values = None, B
        self.shape = B.shape

    def column_norms(self):
        return np.linalg.norm(self.values, axis=0)

    def permuted(self, perm):
        """The sources of the system on rows ``perm`` (new row ``r`` is
        old row ``perm[r]``)."""
        if self.rows is None:
            return _Sources(self.values[perm])
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        new_rows = inverse[self.rows]
        order = np.argsort(new_rows)
        out = object.__new__(_Sources)
        out.rows, out.values, out.shape = new_rows[order], self.values[order], self.shape
        return out

    def slots(self):
        """``slot[i]``: the row of ``values`` holding row ``i`` of ``B``, -1
        for a zero row (the compiled residual reads ``B`` this way)."""
        index = np.int32 if self.shape[0] < 2**31 else np.int64
        if self.rows is None:
            return np.arange(self.shape[0], dtype=index)
        slot = np.full(self.shape[0], -1, dtype=index)
        slot[self.rows] = np.arange(self.rows.size, dtype=index)
        return slot

    def columns(self, cols):
        """The sources of columns ``cols`` (a slice) alone."""
        out = object.__new__(_Sources)
        out.rows = self.rows
        out.values = np.ascontiguousarray(self.values[:, cols])
        out.shape = (self.shape[0], out.values.shape[1])
        return out

    def span(self, start, stop):
        """The nonzero rows in ``start .. stop - 1`` (relative to
        ``start``) and their values."""
        lo, hi = np.searchsorted(self.rows, (start, stop))
        return self.rows[lo:hi] - start, self.values[lo:hi]


class _HostBlocks:
    """The CG vector updates on numpy arrays, fused per row chunk.

    The rows are cut into chunks small enough for a chunk of temporaries to
    stay in cache, so each update reads and writes every large array once;
    the chunks are shared among ``n_threads`` threads (numpy releases the
    GIL). The chunks do not depend on ``n_threads`` and the column sums add
    the per-chunk sums in chunk order, so results are bitwise identical
    whatever the number of threads.
    """

    def __init__(self, inv_diag, n_cols, dtype, n_threads, kernels=None):
        self.dtype = dtype
        self.inv_diag = inv_diag.astype(dtype)[:, None]
        n_rows = inv_diag.shape[0]
        rows = max(16, _CHUNK_BYTES // max(1, n_cols * np.dtype(dtype).itemsize))
        self.bounds = np.r_[np.arange(0, n_rows, rows), n_rows]
        n_chunks = len(self.bounds) - 1
        self.n_threads = max(1, min(int(n_threads), n_chunks))
        # thread g handles the contiguous run of chunks groups[g]
        self.groups = np.array_split(np.arange(n_chunks), self.n_threads)
        self.pool = ThreadPoolExecutor(self.n_threads) if self.n_threads > 1 else None
        # the compiled kernels (see _kernels) fuse each update into one pass
        self.kernels = kernels
        self.tmp = [np.empty((rows, n_cols), dtype) for _ in range(self.n_threads)]
        if kernels is not None:
            self.inv_diag_flat = np.ascontiguousarray(self.inv_diag[:, 0])
            self.sums = np.empty((2, n_chunks, n_cols))

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()

    def map(self, fn):
        """``[fn(i, rows_i, tmp) for each chunk i]``, in chunk order."""
        b = self.bounds

        def run(g):
            tmp = self.tmp[g]
            return [
                fn(i, slice(b[i], b[i + 1]), tmp[: b[i + 1] - b[i]])
                for i in self.groups[g]
            ]

        if self.pool is None:
            return run(0)
        return [r for part in self.pool.map(run, range(self.n_threads)) for r in part]

    def map_groups(self, fn):
        """``fn(first, last)`` for the run of chunks ``first .. last - 1``
        of each thread (a compiled kernel per thread)."""
        spans = [(int(g[0]), int(g[-1]) + 1) for g in self.groups if g.size]
        if self.pool is None:
            for first, last in spans:
                fn(first, last)
            return
        for _ in self.pool.map(lambda span: fn(*span), spans):
            pass

    def chunk_sums(self, sums):
        """Per-chunk sums (a ``(n_chunks, C)`` array) added in chunk order,
        as :meth:`colsum` adds the numpy path's."""
        total = np.zeros(sums.shape[1])
        for part in sums:
            total += part
        return total

    @staticmethod
    def colsum(parts, n_cols):
        """Sum of per-chunk column vectors, in float64 and chunk order."""
        total = np.zeros(n_cols)
        for part in parts:
            total += part
        return total

    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    def empty(self, shape):
        return np.empty(shape, dtype=self.dtype)

    def asarray(self, M, copy=False):
        if copy:
            return np.array(M, dtype=self.dtype, order="C")
        return np.ascontiguousarray(M, dtype=self.dtype)

    def to_numpy(self, M, dtype=np.float64):
        return np.asarray(M, dtype=dtype)

    def sources(self, S):
        """The :class:`_Sources` ``S`` as the updates read them: a dense
        ``B`` in this precision (no copy when it already is), sparse
        sources as they are."""
        return self.asarray(S.values) if S.rows is None else S

    def load(self, B, R):
        """``R = B`` (``B`` from :meth:`sources`)."""
        if isinstance(B, _Sources):
            # zeroed by row chunks on the threads: the first writes to a
            # new block fault its pages in, on every core at once
            self.map(lambda i, s, t: R[s].fill(0.0))
            R[B.rows] = B.values
        else:
            np.copyto(R, B, casting="same_kind")

    def dot(self, P, AP):
        """Column dot products of ``P`` and ``AP``."""
        return self.colsum(self.map(lambda i, s, t: _coldot(P[s], AP[s])), P.shape[1])

    def _norms(self, r, s, t):
        np.multiply(r, self.inv_diag[s], out=t)
        return np.stack([_coldot(r, r), _coldot(r, t)])

    def norms(self, R):
        """``(sum R^2, sum R D^-1 R)`` per column."""
        if self.kernels is not None:
            rr, rz = self.sums
            b, d = self.bounds, self.inv_diag_flat
            self.map_groups(
                lambda first, last: self.kernels.cg_norms(R, d, b, first, last, rr, rz)
            )
            return self.chunk_sums(rr), self.chunk_sums(rz)
        parts = self.map(lambda i, s, t: self._norms(R[s], s, t))
        rr_rz = self.colsum(parts, (2, R.shape[1]))
        return rr_rz[0], rr_rz[1]

    def step(self, X, R, P, AP, alpha):
        """``X += alpha P`` and ``R -= alpha AP`` in one pass; returns
        :meth:`norms` of the new ``R``."""
        alpha = alpha.astype(self.dtype)
        if self.kernels is not None:
            rr, rz = self.sums
            b, d = self.bounds, self.inv_diag_flat
            self.map_groups(
                lambda first, last: self.kernels.cg_step(
                    X, R, P, AP, alpha, d, b, first, last, rr, rz
                )
            )
            return self.chunk_sums(rr), self.chunk_sums(rz)

        def fn(i, s, t):
            r = R[s]
            np.multiply(P[s], alpha, out=t)
            X[s] += t
            np.multiply(AP[s], alpha, out=t)
            r -= t
            return self._norms(r, s, t)

        rr_rz = self.colsum(self.map(fn), (2, R.shape[1]))
        return rr_rz[0], rr_rz[1]

    def direction(self, P, R, beta, coarse=None):
        """``P = D^-1 R + beta P``; with ``coarse`` (a :class:`_CoarseSolve`
        and its coarse solution ``Y``, compiled kernels only), plus the
        prolongation of ``Y``."""
        beta = beta.astype(self.dtype)
        if coarse is not None:
            solve, Y = coarse
            b, d, space = self.bounds, self.inv_diag_flat, solve.space
            Y = np.ascontiguousarray(Y, dtype=self.dtype)
            self.map_groups(
                lambda first, last: self.kernels.cg_direction_coarse(
                    P, R, beta, d, Y, space.aggregates, space.weights, b[first], b[last]
                )
            )
            return
        if self.kernels is not None:
            b, d = self.bounds, self.inv_diag_flat
            self.map_groups(
                lambda first, last: self.kernels.cg_direction(
                    P, R, beta, d, b[first], b[last]
                )
            )
            return

        def fn(i, s, t):
            p = P[s]
            p *= beta
            np.multiply(R[s], self.inv_diag[s], out=t)
            p += t

        self.map(fn)

    def rsub(self, B, R):
        """``R = B - R`` (``B`` from :meth:`sources`)."""
        if isinstance(B, _Sources):
            self.map(lambda i, s, t: np.negative(R[s], out=R[s]))
            R[B.rows] += B.values
            return

        def fn(i, s, t):
            np.subtract(B[s], R[s], out=R[s])

        self.map(fn)


class _DeviceBlocks:
    """The same updates on whole torch tensors (CUDA: one kernel each)."""

    def __init__(self, inv_diag, n_cols, dtype, device):
        import torch

        self.torch, self.device = torch, device
        self.dtype = torch.float64 if dtype == np.float64 else torch.float32
        self.inv_diag = self.asarray(inv_diag[:, None])

    def close(self):
        pass

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.dtype, device=self.device)

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.dtype, device=self.device)

    def asarray(self, M, copy=False):
        if isinstance(M, np.ndarray):
            M = self.torch.from_numpy(np.ascontiguousarray(M))
        return M.to(self.device, self.dtype, copy=copy)

    def to_numpy(self, M, dtype=np.float64):
        M = M.double() if dtype == np.float64 else M.float()
        return M.cpu().numpy()

    def sources(self, S):
        """A dense ``B`` as a tensor in this precision; sparse sources as
        the indices of their rows and their values."""
        if S.rows is None:
            return self.asarray(S.values)
        rows = self.torch.from_numpy(S.rows).to(self.device)
        return rows, self.asarray(S.values)

    def load(self, B, R):
        if isinstance(B, tuple):
            R.zero_()
            R.index_copy_(0, *B)
        else:
            R.copy_(B)

    def dot(self, P, AP):
        return self.to_numpy((P * AP).sum(0))

    def norms(self, R):
        rr = (R * R).sum(0)
        rz = (R * R * self.inv_diag).sum(0)
        return self.to_numpy(rr), self.to_numpy(rz)

    def step(self, X, R, P, AP, alpha):
        alpha = self.asarray(alpha)
        X.addcmul_(P, alpha)
        R.addcmul_(AP, -alpha)
        return self.norms(R)

    def direction(self, P, R, beta):
        P.mul_(self.asarray(beta)).addcmul_(R, self.inv_diag)

    def rsub(self, B, R):
        if isinstance(B, tuple):
            R.neg_()
            R.index_add_(0, *B)
        else:
            self.torch.sub(B, R, out=R)


class _ScipyProduct:
    """``A @ P`` with scipy, one row chunk of ``A`` per task on the threads of
    ``blocks`` (scipy releases the GIL in its sparse kernels)."""

    def __init__(self, A, dtype, blocks):
        A = sp.csr_matrix(A)
        # the indices are shared with A; only the values are converted
        data = A.data.astype(dtype, copy=False)
        self.blocks = blocks
        b = blocks.bounds
        self.parts = []
        for start, stop in itertools.pairwise(b):
            lo, hi = A.indptr[start], A.indptr[stop]
            # views of A's arrays (the constructor would copy small views)
            part = sp.csr_matrix((stop - start, A.shape[1]), dtype=dtype)
            part.indices, part.data = A.indices[lo:hi], data[lo:hi]
            part.indptr = (A.indptr[start : stop + 1] - lo).astype(A.indices.dtype)
            self.parts.append(part)

    def __call__(self, P, out, dot=False):
        """Write ``A @ P`` into ``out``; with ``dot``, also return the column
        dot products of ``P`` and ``A @ P`` (fused: the chunk is in cache)."""

        def fn(i, s, t):
            part = self.parts[i] @ P
            out[s] = part
            return _coldot(P[s], part) if dot else None

        parts = self.blocks.map(fn)
        return self.blocks.colsum(parts, P.shape[1]) if dot else None


class _CompiledProduct:
    """``A @ P`` with the compiled row-blocked kernel
    (:func:`~sklearn_mixedlp._kernels_numba.csr_matmat`) on the row chunks
    of ``blocks``, a run of chunks per thread; the column dot products of
    ``P`` and ``A @ P`` are fused into the same pass."""

    def __init__(self, A, dtype, blocks, kernels, like=None):
        A = sp.csr_matrix(A)
        self.blocks, self.kernels = blocks, kernels
        if like is not None:
            self.indptr, self.indices = like.indptr, like.indices
        else:
            index = np.int32 if max(A.nnz, A.shape[0]) < 2**31 else np.int64
            self.indptr = A.indptr.astype(index, copy=False)
            self.indices = A.indices.astype(index, copy=False)
        self.data = A.data.astype(dtype, copy=False)
        self.dots = np.empty((len(blocks.bounds) - 1, 0))
        self._slots = None  # (sources, their slots) of the last residual

    def _dots(self, n_cols):
        if self.dots.shape[1] != n_cols:
            self.dots = np.empty((len(self.blocks.bounds) - 1, n_cols))
        return self.dots

    def __call__(self, P, out, dot=False):
        """Write ``A @ P`` into ``out``; with ``dot``, also return the column
        dot products of ``P`` and ``A @ P``."""
        dots, b = self._dots(P.shape[1]), self.blocks.bounds
        self.blocks.map_groups(
            lambda first, last: self.kernels.csr_matmat(
                self.indptr, self.indices, self.data, P, out, b, first, last,
                dots, dot,
            )
        )
        return self.blocks.chunk_sums(dots) if dot else None

    def residual_into(self, S, X, R):
        """``R = B - A @ X`` (in ``X``'s precision, stored in ``R``'s), for
        the :class:`_Sources` ``S`` of ``B``; returns the column norms of
        the residual."""
        if self._slots is None or self._slots[0] is not S:
            self._slots = S, S.slots()
        values = np.ascontiguousarray(S.values, dtype=X.dtype)
        slot, sq, b = self._slots[1], self._dots(X.shape[1]), self.blocks.bounds
        self.blocks.map_groups(
            lambda first, last: self.kernels.csr_residual(
                self.indptr, self.indices, self.data, X, slot, values, R, b,
                first, last, sq,
            )
        )
        return np.sqrt(self.blocks.chunk_sums(sq))


class _GraphSystem:
    """A label-propagation system ``A = diag(diagonal) + sign D_s M D_s``
    (``D_s = diag(scale)``) on a graph ``M`` stored without its diagonal,
    handed to :func:`block_cg` as its float32 copy ``A32`` and the graph it
    was formed from.

    The float32 iterations read ``A32``; the float64 residual checks read
    the graph's affinities (cut by ``share`` when given, see
    :func:`~sklearn_mixedlp._kernels_numba.graph_residual`), so no float64
    copy of ``A`` is stored. Where that path does not apply (no compiled
    kernels, float64 iterations, a reordered solve, a float32 stall),
    ``build()`` forms the float64 system.
    """

    def __init__(self, A32, graph, share, beta, scale, sign, diagonal, build):
        self.A32, self.shape, self.nnz = A32, A32.shape, A32.nnz
        self.graph, self.beta, self.sign = graph, float(beta), float(sign)
        self.share = np.empty(0, np.float32) if share is None else share
        self.scale, self.diag = scale, diagonal
        self.build = build

    def diagonal(self):
        return self.diag


class _GraphResidual:
    """The float64 residual of a :class:`_GraphSystem`, from its graph."""

    def __init__(self, system, blocks, kernels):
        self.system, self.blocks, self.kernels = system, blocks, kernels
        self._slots = None

    def residual_into(self, S, X, R):
        """As :meth:`_CompiledProduct.residual_into`, in float64."""
        if self._slots is None or self._slots[0] is not S:
            self._slots = S, S.slots()
        g, b = self.system, self.blocks.bounds
        values = np.ascontiguousarray(S.values, dtype=np.float64)
        slot, sq = self._slots[1], np.empty((len(b) - 1, X.shape[1]))
        M = g.graph
        self.blocks.map_groups(
            lambda first, last: self.kernels.graph_residual(
                M.indptr, M.indices, M.data, g.share, g.beta, g.scale, g.sign,
                g.diag, X, slot, values, R, b, first, last, sq,
            )
        )
        return np.sqrt(self.blocks.chunk_sums(sq))


class _TorchProduct:
    """``A @ P`` with ``torch.sparse_csr_tensor`` (CPU or CUDA); on the CPU
    it takes numpy arrays and works on zero-copy tensor views of them.
    ``like`` shares the index tensors of another product (same ``A``)."""

    def __init__(self, A, dtype, device, like=None):
        torch = import_optional("torch", "solver='torch'")
        self.torch, self.host = torch, not is_cuda(device)
        A = sp.csr_matrix(A)
        if like is None:
            # 32-bit indices when they fit: fewer bytes, faster kernels
            index = np.int32 if max(A.nnz, A.shape[0]) < 2**31 else np.int64
            indices = [
                torch.from_numpy(A.indptr.astype(index)).to(device),
                torch.from_numpy(A.indices.astype(index)).to(device),
            ]
        else:
            indices = [like.A.crow_indices(), like.A.col_indices()]
        with warnings.catch_warnings():
            # torch flags its sparse CSR support as beta on construction.
            warnings.filterwarnings(
                "ignore", message=".*[Ss]parse.*", category=UserWarning
            )
            self.A = torch.sparse_csr_tensor(
                *indices, torch.from_numpy(A.data.astype(dtype)).to(device),
                size=A.shape,
            )

    def __call__(self, P, out, dot=False):
        if self.host:
            P, out = self.torch.from_numpy(P), self.torch.from_numpy(out)
        # addmm with beta=0 writes in place; mm(out=) would allocate a zero
        # block first
        self.torch.addmm(out, self.A, P, beta=0.0, out=out)


class _Operator:
    """``A`` in one working precision: the vector updates (``blocks``) and
    the sparse product (``product``) of a backend."""

    def __init__(
        self, A, inv_diag, n_cols, solver, device, dtype, n_threads, like=None,
        kernels=None,
    ):
        if solver == "torch" and is_cuda(device):
            self.blocks = _DeviceBlocks(inv_diag, n_cols, dtype, device)
        else:
            self.blocks = _HostBlocks(inv_diag, n_cols, dtype, n_threads, kernels)
        like = None if like is None else like.product
        if solver == "torch":
            self.product = _TorchProduct(A, dtype, device, like=like)
        elif kernels is not None:
            self.product = _CompiledProduct(
                A, dtype, self.blocks, kernels,
                like=like if isinstance(like, _CompiledProduct) else None,
            )
        else:
            self.product = _ScipyProduct(A, dtype, self.blocks)

    @classmethod
    def on_graph(cls, system, inv_diag, n_cols, n_threads, kernels):
        """The float64 residuals of a :class:`_GraphSystem`, read from its
        graph (no product: the iterations run on its float32 copy)."""
        op = object.__new__(cls)
        op.blocks = _HostBlocks(inv_diag, n_cols, np.float64, n_threads, kernels)
        op.product = _GraphResidual(system, op.blocks, kernels)
        return op

    def residual(self, B, X, out=None):
        """``B - A X``, into ``out`` when given."""
        R = self.blocks.empty(B.shape) if out is None else out
        self.product(X, R)
        self.blocks.rsub(B, R)
        return R

    def norm(self, R):
        return np.sqrt(self.blocks.norms(R)[0])

    def residual_into(self, S, X, R):
        """Write ``B - A X``, computed in this operator's precision, into
        ``R`` (any precision) and return its column norms (``S``: the
        :class:`_Sources` of ``B``). On the CPU it is computed chunk by
        chunk, without an ``n x n_rhs`` temporary."""
        if isinstance(self.product, (_CompiledProduct, _GraphResidual)):
            return self.product.residual_into(S, X, R)
        B = self.blocks.sources(S)
        if not isinstance(self.product, _ScipyProduct):
            R_here = self.residual(B, X)
            R[...] = R_here if isinstance(R, np.ndarray) else R_here.to(R.dtype)
            return self.norm(R_here)
        parts = self.product.parts

        def fn(i, s, t):
            if S.rows is None:
                r = B[s] - parts[i] @ X
            else:
                r = parts[i] @ X
                np.negative(r, out=r)
                rows, values = S.span(s.start, s.stop)
                r[rows] += values
            R[s] = r
            return _coldot(r, r)

        return np.sqrt(self.blocks.colsum(self.blocks.map(fn), S.shape[1]))


class CoarseSpace:
    """The coarse space of a two-level preconditioner for :func:`block_cg`.

    Jacobi preconditioning removes the spread of the diagonal, but not the
    slow modes of a graph system: vectors that are nearly constant over a
    well-connected cluster of rows (for the normalised Laplacian, nearly
    proportional to the square root of the degree there), which a product
    with ``A`` moves by a tiny amount, so that conjugate gradient needs many
    iterations to resolve them. A coarse space made of such vectors, one
    per aggregate of rows, removes them: with ``Q`` the ``n x m`` matrix
    whose column ``a`` holds ``weights[i]`` on the rows ``i`` of aggregate
    ``a`` (zero elsewhere), the preconditioner is

    ``M^-1 = D^-1 + Q (Q^T A Q)^-1 Q^T``

    (additive two-level; symmetric positive definite whenever ``A`` is, so
    CG converges to the same solution). Each iteration adds a restriction
    ``Q^T R`` (one read of the residual), an ``m x m`` triangular solve per
    column, and a prolongation into the search direction; ``Q^T A Q`` is
    formed once per matrix, in one pass over its stored entries, and
    factored by Cholesky. Compact aggregates (k-means cells of the rows,
    e.g. the inverted lists of an approximate neighbour search) work;
    aggregates that straddle clusters do not help.

    Parameters
    ----------
    aggregates : array-like of shape (n,)
        Aggregate of each row, non-negative integers (relabelled to ``0 ..
        m - 1`` in increasing order; empty labels are dropped).
    weights : array-like of shape (n,), default=None
        The value of each row in its aggregate's coarse vector; ones when
        None. A row of weight 0 is in no coarse vector.
    """

    def __init__(self, aggregates, weights=None):
        aggregates = np.asarray(aggregates)
        if aggregates.ndim != 1 or not np.issubdtype(aggregates.dtype, np.integer):
            raise ValueError("aggregates must be a 1-D array of integers.")
        if aggregates.size and aggregates.min() < 0:
            raise ValueError("aggregates must be non-negative.")
        labels, self.aggregates = np.unique(aggregates, return_inverse=True)
        self.n_aggregates = labels.size
        if weights is None:
            weights = np.ones(aggregates.size)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != aggregates.shape or not np.isfinite(weights).all():
            raise ValueError(
                "weights must be finite, one per row of aggregates; got shape "
                f"{weights.shape} for {aggregates.shape[0]} rows."
            )
        self.weights = weights

    def permuted(self, perm):
        """The same space for the rows in the order ``perm``."""
        return self._with(self.aggregates[perm], self.weights[perm])

    def reweighted(self, weights):
        """The same aggregates with new ``weights``."""
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != self.weights.shape or not np.isfinite(weights).all():
            raise ValueError("weights must be finite, one per row.")
        return self._with(self.aggregates, weights)

    def _with(self, aggregates, weights):
        out = object.__new__(CoarseSpace)
        out.aggregates, out.weights = aggregates, weights
        out.n_aggregates = self.n_aggregates
        return out

    def operator(self, A, kernels=None):
        """``Q^T A Q`` (dense, float64) of a sparse ``A`` on these rows (one
        compiled pass with ``kernels``, numpy's bincount otherwise);
        symmetric up to rounding for a symmetric ``A`` (not symmetrised:
        the factorisation reads one triangle, and at ten million rows the
        matrix is a few hundred MB)."""
        A = sp.csr_matrix(A)
        m, agg, w = self.n_aggregates, self.aggregates, self.weights
        if kernels is not None:
            coarse = np.zeros((m, m))
            kernels.coarse_operator(A.indptr, A.indices, A.data, agg, w, coarse)
            return coarse
        coarse = np.zeros(m * m)
        # rows in spans of about `step` stored entries, so that the index
        # arrays stay small; each span's bincount is an m x m array, so a
        # span holds at least m^2 entries
        step = max(2**22, m * m)
        bounds = np.searchsorted(A.indptr, np.arange(0, A.nnz, step), side="right") - 1
        bounds = np.unique(np.r_[bounds, A.shape[0]])
        for start, stop in zip(bounds[:-1], bounds[1:]):
            lo, hi = A.indptr[start], A.indptr[stop]
            i = np.repeat(np.arange(start, stop), np.diff(A.indptr[start : stop + 1]))
            j = A.indices[lo:hi]
            values = w[i] * A.data[lo:hi] * w[j]
            coarse += np.bincount(agg[i] * m + agg[j], weights=values, minlength=m * m)
        return coarse.reshape(m, m)

    def factor(self, A, kernels=None):
        """The :class:`_CoarseSolve` of ``A``, or None where ``Q^T A Q`` is
        not numerically positive definite (then Jacobi alone is used)."""
        from scipy.linalg import LinAlgError, cho_factor

        coarse = self.operator(A, kernels)
        diagonal = np.diag(coarse).copy()
        if not np.isfinite(diagonal).all() or not np.all(diagonal > 0):
            return None
        try:
            # the lower triangle, factored in place
            factor = cho_factor(coarse, lower=True, overwrite_a=True, check_finite=False)
        except LinAlgError:
            return None
        pivots = np.diag(factor[0])
        # a pivot lost to cancellation: numerically singular
        if not (np.isfinite(pivots).all() and np.all(pivots > 1e-6 * np.sqrt(diagonal))):
            return None
        return _CoarseSolve(self, factor)


class _CoarseSolve:
    """The coarse correction of one matrix: restriction ``C = Q^T R``, the
    coarse solution ``Y = (Q^T A Q)^-1 C`` and its prolongation ``P += Q
    Y``, on numpy arrays (compiled: fixed partial sums of the restriction,
    added in order; the same result on any number of threads) or torch
    tensors."""

    def __init__(self, space, factor):
        self.space, self.factor = space, factor
        self._restriction = None  # Q^T, sparse, for numpy
        self._torch = None  # aggregates and weights as tensors

    def _restrict(self, R):
        """``Q^T R`` with scipy (float64)."""
        if self._restriction is None:
            space, n = self.space, self.space.aggregates.shape[0]
            self._restriction = sp.csr_matrix(
                (space.weights, (space.aggregates, np.arange(n))),
                shape=(space.n_aggregates, n),
            )
        return np.asarray(self._restriction @ R, dtype=np.float64)

    def solve(self, blocks, R):
        """``(Y, rz)``: the coarse solution of the residual ``R`` and its
        share ``C^T Y`` of each column's ``R^T M^-1 R``."""
        from scipy.linalg import cho_solve

        if isinstance(R, np.ndarray) and blocks.kernels is not None:
            # partial sums over a fixed split of the rows, added in order:
            # the same result on any number of threads
            cuts = np.linspace(0, R.shape[0], _RESTRICT_PARTS + 1).astype(np.int64)
            parts = np.zeros((_RESTRICT_PARTS, self.space.n_aggregates, R.shape[1]))

            def restrict(part):
                blocks.kernels.coarse_restrict(
                    R, self.space.aggregates, self.space.weights,
                    cuts[part], cuts[part + 1], parts[part],
                )

            if blocks.pool is None:
                for part in range(_RESTRICT_PARTS):
                    restrict(part)
            else:
                for _ in blocks.pool.map(restrict, range(_RESTRICT_PARTS)):
                    pass
            C = parts[0]
            for part in parts[1:]:
                C += part
        elif isinstance(R, np.ndarray):
            C = self._restrict(R)
        else:
            C = self._torch_restrict(R)
        Y = np.ascontiguousarray(cho_solve(self.factor, C, check_finite=False))
        return Y, np.einsum("ij,ij->j", C, Y)

    def prolong(self, blocks, P, Y):
        """``P += Q Y``."""
        space = self.space
        if isinstance(P, np.ndarray):
            Y = np.ascontiguousarray(Y, dtype=P.dtype)

            def fn(i, s, t):
                np.multiply(Y[space.aggregates[s]], space.weights[s, None], out=t)
                P[s] += t

            blocks.map(fn)
            return
        torch = blocks.torch
        agg, w = self._torch_terms(P)
        Yt = torch.from_numpy(Y).to(P.device, P.dtype)
        for lo in range(0, P.shape[0], _TORCH_CHUNK_ROWS):
            hi = lo + _TORCH_CHUNK_ROWS
            P[lo:hi].addcmul_(Yt[agg[lo:hi]], w[lo:hi, None])

    def _torch_terms(self, like):
        import torch

        cached = self._torch
        if cached is None or cached[0].device != like.device or cached[1].dtype != like.dtype:
            agg = torch.from_numpy(self.space.aggregates.astype(np.int64)).to(like.device)
            w = torch.from_numpy(self.space.weights).to(like.device, like.dtype)
            self._torch = cached = (agg, w)
        return cached

    def _torch_restrict(self, R):
        import torch

        agg, w = self._torch_terms(R)
        C = torch.zeros((self.space.n_aggregates, R.shape[1]), dtype=torch.float64, device=R.device)
        for lo in range(0, R.shape[0], _TORCH_CHUNK_ROWS):
            hi = lo + _TORCH_CHUNK_ROWS
            C.index_add_(0, agg[lo:hi], (R[lo:hi] * w[lo:hi, None]).double())
        return C.cpu().numpy()


@contextlib.contextmanager
def _one_blas_thread(coarse):
    """BLAS held to one thread while a coarse correction is in use: its
    small triangular solves gain nothing from threads, and the threads of
    a multithreaded BLAS keep spinning after each call, taking the cores
    from the products that follow (measured 1.5-2x slower products)."""
    if coarse is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


# Fixed parts of the rows of the compiled restriction (each its own
# partial sums, added in order).
_RESTRICT_PARTS = 4

# Rows per torch operation of the coarse correction (bounded temporaries).
_TORCH_CHUNK_ROWS = 2**16


def _cg(op, R, target, max_iter, progress, refresh=None, out=None, coarse=None):
    """Jacobi-preconditioned CG on ``A E = R`` from ``E = 0``, all columns at
    once (the recurrences of Hestenes and Stiefel, column by column).

    Column ``j`` is frozen (takes zero steps) once ``||R_j|| <= target_j``.
    ``R`` is overwritten with the final residual. With ``out`` (a solution
    block, of any precision) the steps are added to ``out`` itself, which
    is returned as ``E``: no block of increments.

    ``refresh(E, R)``, when given, writes the true residual of the solution
    that ``E`` is part of into ``R`` and returns its column norms
    (reliable updates: the search directions are kept, so CG does not
    restart). It is called when every active residual has dropped
    by ``_REFRESH`` since the last call, when the recurrence residuals all
    reach ``target``, and at ``max_iter``.

    ``coarse`` (a :class:`_CoarseSolve`) adds its coarse correction to the
    Jacobi preconditioner (two-level).

    Returns ``(E, n_iter, ||R||, stalled)``; ``stalled`` means the true
    residual no longer follows the recurrence (the working precision cannot
    reach ``target``).
    """
    blocks = op.blocks
    E = blocks.zeros(R.shape) if out is None else out
    P, AP = blocks.zeros(R.shape), blocks.zeros(R.shape)

    def precondition_norms():
        """``(sum R^2, R^T M^-1 R)`` per column, and the coarse solution."""
        rr, rz = blocks.norms(R)
        if coarse is None:
            return rr, rz, None
        Y, rz_coarse = coarse.solve(blocks, R)
        return rr, rz + rz_coarse, Y

    def new_direction(beta, Y):
        """``P = M^-1 R + beta P``."""
        if Y is None:
            blocks.direction(P, R, beta)
        elif getattr(blocks, "kernels", None) is not None:
            blocks.direction(P, R, beta, coarse=(coarse, Y))  # fused
        else:
            blocks.direction(P, R, beta)
            coarse.prolong(blocks, P, Y)

    rr, rz, Y = precondition_norms()
    new_direction(np.zeros(R.shape[1]), Y)  # P = M^-1 R
    norm = np.sqrt(rr)
    last, last_iter, strikes = norm, 0, 0
    n_iter = 0
    while True:
        active = norm > target
        done = not active.any() or n_iter >= max_iter
        if (
            refresh is not None
            and n_iter > last_iter
            and (
                done
                or n_iter - last_iter >= _REFRESH_EVERY
                or np.all(norm[active] <= _REFRESH * last[active])
            )
        ):
            moving, claimed = last > target, norm  # columns that took steps
            norm = refresh(E, R)
            rr, rz, _ = precondition_norms()
            # Each column that took steps must have a true residual close to
            # its recurrence, or at least halved, or at target. Twice in a
            # row not, or a true residual that grew: the working precision
            # cannot take it further.
            gained = (
                ((norm <= 2 * claimed) & (norm <= 2 * last))
                | (norm <= 0.5 * last)
                | (norm <= target)
                | ~moving
            )
            strikes = 0 if gained.all() else strikes + 1
            if strikes >= 2 or np.any(moving & (norm > 2 * last)):
                return E, n_iter, norm, True
            last, last_iter = norm, n_iter
            active = norm > target
            done = not active.any() or n_iter >= max_iter
        if done:
            return E, n_iter, norm, False
        pAp = op.product(P, AP, dot=True)
        if pAp is None:
            pAp = blocks.dot(P, AP)
        # frozen columns take zero steps; where() keeps 0 / 0 away from them
        alpha = np.where(active, rz / np.where(active, pAp, 1.0), 0.0)
        rr, rz_new = blocks.step(E, R, P, AP, alpha)
        if coarse is not None:
            Y, rz_coarse = coarse.solve(blocks, R)
            rz_new = rz_new + rz_coarse
        beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
        new_direction(beta, Y)
        rz = rz_new
        norm = np.sqrt(rr)
        n_iter += 1
        if refresh is not None and not np.isfinite(norm).all():
            return E, n_iter, last, True
        progress.update()
        if not progress.disable and n_iter % 10 == 0:
            progress.set_postfix(residual=f"{float(norm.max()):.1e}")


@contextlib.contextmanager
def _torch_threads(solver, device, n_threads):
    """torch's CPU thread count set to ``n_threads`` for the solve."""
    if solver != "torch" or is_cuda(device) or n_threads is None:
        yield
        return
    import torch

    with thread_count(torch.get_num_threads, torch.set_num_threads, int(n_threads)):
        yield


# Share of the physical memory that the blocks of one solve may take by
# default before the columns are solved in passes. Passes cost time: at 1M
# rows (k = 10, 100 classes, 2 cores) two passes of 50 columns took 1.1x
# (float32 to tol 1e-3) and 1.4x (tol 1e-6) the time of one pass of 100,
# four passes 1.5x and 1.9x; so passes are for what would not fit at all.
_WORKING_MEMORY_SHARE = 0.25


def default_working_memory():
    """MiB that the blocks of a solve may take by default: a quarter of the
    physical memory, or scikit-learn's ``working_memory`` setting (see
    :func:`sklearn.set_config`) where the physical memory cannot be read."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return get_config()["working_memory"]
    return max(1, int(_WORKING_MEMORY_SHARE * total / 2**20))


def columns_per_pass(n_rows, n_cols, dtype=np.float32, working_memory=None):
    """How many columns :func:`block_cg` solves at a time so that the blocks
    of one pass fit in ``working_memory`` MiB (None:
    :func:`default_working_memory`).

    A pass holds three blocks in the working precision (residual, search
    direction and product) and a float64 solution block: ``n_rows x (3
    itemsize + 8)`` bytes per column. At least one column per pass.
    """
    if working_memory is None:
        working_memory = default_working_memory()
    per_column = max(n_rows, 1) * (3 * np.dtype(dtype).itemsize + 8)
    return int(min(max(n_cols, 1), max(1, working_memory * 2**20 // per_column)))


def block_cg(
    A,
    B,
    *,
    x0=None,
    tol=1e-6,
    max_iter=1000,
    solver="scipy",
    device=None,
    dtype=np.float64,
    verbose=0,
    n_threads=None,
    reorder="auto",
    overwrite_x0=False,
    kernel="auto",
    working_memory=None,
    coarse=None,
):
    """Preconditioned conjugate gradient on all columns of ``B``.

    Each column runs its own CG recurrence, but all columns share one
    sparse-matrix x dense-block product per iteration. A column stops
    updating once its relative residual ``||b - A x|| / ||b||`` is at most
    ``tol`` (an all-zero ``b`` uses the absolute residual).

    With ``dtype=np.float32`` the iterations run in single precision (half
    the memory traffic of float64) while the solution is accumulated in
    float64: each time the residuals have dropped 1000-fold, and when they
    reach ``tol``, the recurrence residual is replaced by the true one,
    computed in float64 with ``A`` as given (reliable updates: the search
    directions are kept, CG does not restart). Plain float32 CG stalls near
    a relative residual of ``1e-7 cond(A)`` (3e-7 to 3e-6 on normalised
    label-propagation systems of kNN graphs); with the updates it meets
    ``tol = 1e-6`` or ``1e-8`` in as many iterations as float64. The
    tolerance is checked on the true residual. Where float32 cannot follow
    (``cond(A) >~ 1e7``), the solve starts again in float64.

    Parameters
    ----------
    A : sparse matrix of shape (n, n)
        Symmetric positive definite, with a positive diagonal.
    B : {ndarray, sparse matrix} of shape (n, n_rhs)
        Right-hand sides. A sparse ``B`` is kept as its nonzero rows (the
        sources of a propagation sit on its labeled rows), never as an
        ``n x n_rhs`` dense copy.
    x0 : ndarray of shape (n, n_rhs), default=None
        Warm start; zeros when None.
    tol : float, default=1e-6
        Per-column relative residual tolerance.
    max_iter : int, default=1000
        Maximum number of iterations (with a float64 restart, both runs
        together).
    solver : {'scipy', 'torch'}, default='scipy'
        Backend of the sparse product (resolve ``'auto'`` with
        :func:`resolve_solver`). On the CPU both backends share the same
        threaded vector updates; on CUDA everything runs in torch.
    device : str, default=None
        Torch device for ``solver='torch'``.
    dtype : {np.float64, np.float32}, default=np.float64
        Working precision of the iterations. The solution meets ``tol`` in
        both (see above). It is float64, except for a float32 solve with
        ``tol >= 1e-4``: float32 alone meets such a tolerance, so the
        solution is accumulated and returned in float32 (half the memory
        of a float64 block less); its true residual is checked all the
        same, and refined with float64 accumulation when it misses.
    verbose : int, default=0
        Print a summary line when >= 1; show a progress bar with the
        largest residual when >= 2.
    n_threads : int, default=None
        CPU threads for the product and the vector updates; None uses all
        available cores. The result does not depend on it.
    reorder : {'auto', 'rcm', None}, default='auto'
        Solve with the rows and columns of ``A`` in reverse Cuthill-McKee
        order, which keeps the rows of the block gathered by the product
        close in memory (3-4x faster products measured on kNN graphs in
        data order); ``'auto'`` does so when the ``n x n_rhs`` block
        outgrows the L2 cache (2 MiB) and the order is markedly more local.
        The solution comes back in the original order.
    overwrite_x0 : bool, default=False
        Allow the solver to use ``x0`` as its solution block, saving an ``n
        x n_rhs`` copy; ``x0`` then holds garbage or the solution. In a
        solve by column passes (see ``working_memory``) each pass writes
        its columns of the solution into ``x0`` in the precision of ``x0``
        (a float32 ``x0`` then gets the float64 solution of each pass
        rounded to float32), and ``x0`` is returned.
    kernel : {'auto', 'numba', 'scipy'}, default='auto'
        CPU kernels of ``solver='scipy'``: ``'numba'``, the compiled
        row-blocked product and fused vector updates of
        :mod:`sklearn_mixedlp._kernels` (needs numba); ``'scipy'``, scipy's
        product and numpy's updates, the reference; ``'auto'``, the
        compiled kernels when numba is installed and the product is large
        enough to repay their first compilation (``nnz(A) x n_rhs >=
        2**24``), else scipy.
    working_memory : int, default=None
        MiB that the blocks of the iterations may take (None:
        :func:`default_working_memory`, a quarter of the physical memory).
        When all ``n_rhs`` columns need more (see :func:`columns_per_pass`), the
        columns are solved in passes of as many as fit, one after the
        other: each column runs its own recurrence either way, so the
        solution is the same up to ``tol``; the iteration count is that of
        the longest pass. Only the solution is ``n x n_rhs``.

    Returns
    -------
    result : SolveResult
        Solution, iteration count and final residuals. A
        :class:`~sklearn.exceptions.ConvergenceWarning` is issued when some
        column did not reach ``tol`` within ``max_iter`` iterations.
    """
    diag = A.diagonal()
    if np.any(diag <= 0):
        raise ValueError("block_cg needs a matrix with a positive diagonal.")
    if np.dtype(dtype) not in (np.float64, np.float32):
        raise ValueError(f"dtype must be np.float64 or np.float32, got {dtype!r}.")
    dtype = np.dtype(dtype).type
    B = _Sources(B)
    kernels = _pick_kernels(kernel, solver, A.nnz * (B.shape[1] if len(B.shape) > 1 else 1))
    graph = A if isinstance(A, _GraphSystem) else None
    if graph is not None:
        A = graph.A32  # the pattern of the system, for the row order
    if coarse is not None and coarse.aggregates.shape[0] != A.shape[0]:
        raise ValueError(
            f"coarse has {coarse.aggregates.shape[0]} rows, A has {A.shape[0]}."
        )
    n_threads = available_cores() if n_threads is None else n_threads
    start = time.perf_counter()
    n_rhs = B.shape[1] if len(B.shape) > 1 else 1
    width = columns_per_pass(A.shape[0], n_rhs, dtype, working_memory)
    passes = -(-n_rhs // width)
    progress = progress_bar(
        max_iter * passes, f"conjugate gradient ({solver})", verbose >= 2
    )
    perm = _locality_order(A, width * np.dtype(dtype).itemsize, reorder)
    if graph is not None and (kernels is None or dtype != np.float32 or perm is not None):
        # the graph's residuals need the compiled kernels, float32 steps and
        # the graph's row order: otherwise the float64 system
        A, graph = graph.build(), None
    if perm is not None:
        # solve P A P^T (P X) = P B: same iterates, rows of X gathered by the
        # product now sit close together in memory
        A, B, diag = sp.csr_matrix(A)[perm][:, perm], B.permuted(perm), diag[perm]
        x0 = None if x0 is None else np.asarray(x0)[perm]
        coarse = None if coarse is None else coarse.permuted(perm)
    if coarse is not None:
        with _one_blas_thread(coarse):
            coarse = coarse.factor(A, kernels)
    with _torch_threads(solver, device, n_threads), _one_blas_thread(coarse):
        if passes == 1:
            X, n_iter, residuals, note = _solve(
                A, B, x0, 1.0 / diag, tol, max_iter, solver, device, dtype, n_threads,
                progress, overwrite_x0=overwrite_x0 and perm is None, kernels=kernels,
                graph=graph, coarse=coarse,
            )
        else:
            X, n_iter, residuals, note = _solve_in_passes(
                A, B, x0, 1.0 / diag, tol, max_iter, solver, device, dtype, n_threads,
                progress, width, overwrite_x0=overwrite_x0,
                kernels=kernels, graph=graph, coarse=coarse,
            )
    progress.close()
    if perm is not None:
        X[perm] = X.copy()
        note += " (rows reordered)"
    converged = bool((residuals <= tol).all())
    if verbose:
        print(
            f"[block_cg] {solver}: {n_iter} iterations in "
            f"{time.perf_counter() - start:.2f}s, max relative residual "
            f"{residuals.max(initial=0.0):.2e}{note}"
        )
    if not converged:
        warnings.warn(
            f"Conjugate gradient stopped after max_iter={max_iter} iterations "
            f"with relative residual {residuals.max():.2e} > tol={tol:g} in "
            f"{int((residuals > tol).sum())} of {residuals.size} column(s). "
            "Increase max_iter or tol.",
            ConvergenceWarning,
        )
    return SolveResult(X, n_iter, residuals, converged)


def _pick_kernels(kernel, solver, work):
    """The compiled kernels for ``kernel`` (see :func:`block_cg`), or None
    for scipy's."""
    if kernel not in KERNELS:
        raise ValueError(f"Unknown kernel {kernel!r}; expected one of {KERNELS}.")
    if solver != "scipy" or kernel == "scipy":
        return None
    if kernel == "numba":
        found = _kernels.get()
        if found is None:
            if not _kernels.installed():
                raise missing_dependency("numba", "kernel='numba'")
            raise ValueError(
                "kernel='numba' was requested but the compiled kernels are "
                "turned off (SKLEARN_MIXEDLP_NUMBA=0)."
            )
        return found
    return _kernels.get(work)


def _solve_in_passes(
    A, B, x0, inv_diag, tol, max_iter, solver, device, dtype, n_threads, progress,
    width, overwrite_x0=False, kernels=None, graph=None, coarse=None,
):
    """:func:`_solve` on ``width`` columns of ``B`` at a time; the solution
    of each pass goes into ``x0`` with ``overwrite_x0`` (in its dtype), else
    into a new block of the precision a one-pass solve would return."""
    n, n_cols = B.shape
    # a float32 solve to a loose tol iterates on a float32 solution, else
    # the solution is accumulated in float64: each pass's warm start is a
    # copy of its columns in that precision (no second copy in the pass)
    single = dtype == np.float32 and tol >= _SINGLE_ONLY_TOL
    if x0 is not None and overwrite_x0:
        X = x0
    else:
        X = np.empty((n, n_cols), dtype=np.float32 if single else np.float64)
    n_iter, residuals, notes = 0, np.empty(n_cols), set()
    for start in range(0, n_cols, width):
        cols = slice(start, min(start + width, n_cols))
        warm = None if x0 is None else np.array(
            x0[:, cols], dtype=np.float32 if single else np.float64
        )
        X[:, cols], passed, residuals[cols], note = _solve(
            A, B.columns(cols), warm, inv_diag, tol, max_iter, solver, device,
            dtype, n_threads, progress, overwrite_x0=True, kernels=kernels,
            graph=graph, coarse=coarse,
        )
        del warm
        n_iter = max(n_iter, passed)
        notes.add(note)
    passes = -(-n_cols // width)
    return X, n_iter, residuals, "".join(sorted(notes)) + f" ({passes} passes of {width} columns)"


def _solve(
    A, B, x0, inv_diag, tol, max_iter, solver, device, dtype, n_threads, progress,
    overwrite_x0=False, kernels=None, graph=None, coarse=None,
):
    """:func:`block_cg` without the reporting: returns ``(X, n_iter,
    residuals, note)``, ``X`` a numpy array (float64, or float32 for a
    float32 solve to ``tol >= _SINGLE_ONLY_TOL``). With ``graph`` (the
    :class:`_GraphSystem` whose float32 copy is ``A``) the float64
    residuals are read from the graph."""
    S = B  # the _Sources of B
    b_norm = S.column_norms()
    b_norm = b_norm + (b_norm == 0)  # zero right-hand side: absolute residual
    target = tol * b_norm
    args = (A, inv_diag, S.shape[1], solver, device)
    op = exact = _Operator(*args, dtype, n_threads, kernels=kernels)

    def plain_cg(op, max_iter, x0=x0, overwrite_x0=overwrite_x0, check=False):
        # in float64 the recurrence residual stays accurate far below any
        # useful tol: no refresh
        B = op.blocks.sources(S)
        R = op.blocks.empty(S.shape)
        if x0 is None:
            X = None
            op.blocks.load(B, R)
        else:
            X = op.blocks.asarray(x0, copy=not overwrite_x0)
            op.residual(B, X, out=R)
        # the steps go straight into the warm start (no block of increments)
        X, n_iter, norm, _ = _cg(op, R, target, max_iter, progress, out=X, coarse=coarse)
        if check:
            # the true residual, in the working precision
            norm = op.residual_into(S, X, R)
        return X, n_iter, norm / b_norm

    try:
        if dtype == np.float64:
            X, n_iter, residuals = plain_cg(op, max_iter)
            return op.blocks.to_numpy(X), n_iter, residuals, ""
        if tol >= _SINGLE_ONLY_TOL:
            # float32 alone meets so loose a tolerance: no float64 copy of
            # the solution, the solution stays float32; the true residual
            # is checked, and a miss is refined below
            X, n_iter, residuals = plain_cg(op, max_iter, check=True)
            if (residuals <= tol).all() or n_iter >= max_iter:
                return op.blocks.to_numpy(X, np.float32), n_iter, residuals, ""
            x0, overwrite_x0 = X, True
        else:
            n_iter = 0

        # float32 iterations; the solution and the residual checks in float64
        if graph is None:
            exact = _Operator(*args, np.float64, n_threads, like=op, kernels=kernels)
        else:
            exact = _Operator.on_graph(graph, inv_diag, S.shape[1], n_threads, kernels)
        if x0 is None:
            X, R = exact.blocks.zeros(S.shape), op.blocks.empty(S.shape)
            op.blocks.load(op.blocks.sources(S), R)
        else:
            X = exact.blocks.asarray(x0, copy=not overwrite_x0)
            R = op.blocks.empty(S.shape)
            exact.residual_into(S, X, R)
        first = n_iter

        # the float32 steps are added to the float64 solution as they are
        # taken (each step rounded once, no float32 sum of increments)
        def refresh(E, R):
            return exact.residual_into(S, X, R)

        _, n_iter, norm, stalled = _cg(
            op, R, target, max_iter - first, progress, refresh, out=X, coarse=coarse
        )
        n_iter += first
        if not stalled:
            return exact.blocks.to_numpy(X), n_iter, norm / b_norm, ""
        # float32 cannot resolve this system and its last steps may have
        # spoiled X: solve again in float64
        del R
        if graph is not None:
            exact.blocks.close()
            exact = _Operator(graph.build(), *args[1:], np.float64, n_threads, kernels=kernels)
        X, more, residuals = plain_cg(
            exact, max_iter - n_iter, x0=x0, overwrite_x0=overwrite_x0
        )
        note = f" (float32 stalled after {n_iter} iterations; solved again in float64)"
        return exact.blocks.to_numpy(X), n_iter + more, residuals, note
    finally:
        op.blocks.close()
        exact.blocks.close()


def minres_solve(A, B, *, x0=None, tol=1e-6, max_iter=1000):
    """MINRES, one column at a time, for a symmetric possibly indefinite
    ``A`` (the LPDR system, eq. 25).

    Preconditioned with ``1 / |diag(A)|`` (SPD, as MINRES requires) when the
    diagonal has no zero. Returns a :class:`SolveResult`; a
    :class:`~sklearn.exceptions.ConvergenceWarning` is issued when a column
    does not reach ``tol``.
    """
    diag = np.abs(A.diagonal())
    M = sp.diags(1.0 / diag) if np.all(diag > 0) else None
    B = B.toarray() if sp.issparse(B) else np.asarray(B)
    X = np.zeros(B.shape) if x0 is None else np.array(x0, dtype=np.float64)
    n_iter = 0
    residuals = np.zeros(B.shape[1])
    for c in range(B.shape[1]):
        b_norm = np.linalg.norm(B[:, c]) or 1.0
        count = [0]

        def callback(_, count=count):
            count[0] += 1

        # MINRES stops on a backward error, ||r|| / (||A|| ||x|| + ||b||),
        # which can be far looser than ||r|| / ||b|| <= tol: restart from the
        # current iterate with rtol tightened by the gap until it holds.
        rtol = tol
        for _ in range(6):
            X[:, c], _ = spla.minres(
                A, B[:, c], x0=X[:, c], rtol=rtol, maxiter=max_iter, M=M,
                callback=callback,
            )
            residuals[c] = np.linalg.norm(B[:, c] - A @ X[:, c]) / b_norm
            if residuals[c] <= tol or count[0] >= max_iter:
                break
            rtol = max(rtol * 0.5 * tol / residuals[c], np.finfo(float).eps)
        n_iter = max(n_iter, count[0])
    converged = bool((residuals <= tol).all())
    if not converged:
        warnings.warn(
            f"MINRES stopped with relative residual {residuals.max():.2e} "
            f"(tol={tol:g}, max_iter={max_iter}). The LPDR system may be "
            "singular; lower beta or increase max_iter.",
            ConvergenceWarning,
        )
    return SolveResult(X, max(n_iter, 1), residuals, converged)
