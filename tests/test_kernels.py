"""The compiled kernels against the numpy / scipy reference."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp import _kernels, _solvers
from sklearn_mixedlp._solvers import block_cg

from .conftest import requires_numba
from .test_solvers import random_spd, shuffled_band


@pytest.fixture
def kernels():
    found = _kernels.get()
    if found is None:
        pytest.skip("numba not installed")
    return found


@pytest.fixture
def many_chunks(monkeypatch):
    monkeypatch.setattr(_solvers, "_CHUNK_BYTES", 4096)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_cols", [1, 3, 17, 100])
def test_compiled_product_equals_scipy(kernels, many_chunks, dtype, n_cols):
    rng = np.random.default_rng(n_cols)
    A = random_spd(700, density=0.02, seed=n_cols)
    A = A + sp.diags(np.ones(699), 1, shape=A.shape)  # some rows of 1-4 entries
    P = rng.normal(size=(700, n_cols)).astype(dtype)
    for n_threads in (1, 2):
        blocks = _solvers._HostBlocks(1.0 / A.diagonal(), n_cols, dtype, n_threads, kernels)
        product = _solvers._CompiledProduct(A, dtype, blocks, kernels)
        out = np.full_like(P, np.nan)
        dots = product(P, out, dot=True)
        ref = sp.csr_matrix(A, dtype=dtype) @ P
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * np.abs(ref).max())
        exact = (P.astype(np.float64) * ref.astype(np.float64)).sum(0)
        np.testing.assert_allclose(dots, exact, rtol=rtol, atol=rtol * np.abs(exact).max())
        assert product(P, out) is None
        # R = B - A X, in float64, stored in float32 or float64; B dense, or
        # sparse (kept as its nonzero rows)
        product64 = _solvers._CompiledProduct(A, np.float64, blocks, kernels)
        dense = rng.normal(size=(700, n_cols))
        sparse = sp.random(700, n_cols, density=0.05, random_state=n_cols, format="csr")
        for B in (dense, sparse):
            R = np.full((700, n_cols), np.nan, dtype)
            norms = product64.residual_into(
                _solvers._Sources(B), P.astype(np.float64), R
            )
            ref_r = np.asarray(B.todense() if sp.issparse(B) else B)
            ref_r = ref_r - A @ P.astype(np.float64)
            np.testing.assert_allclose(R, ref_r.astype(dtype), rtol=rtol, atol=1e-12)
            np.testing.assert_allclose(norms, np.linalg.norm(ref_r, axis=0), rtol=1e-12)
        blocks.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_updates_equal_numpy(kernels, many_chunks, dtype):
    rng = np.random.default_rng(1)
    n, c = 900, 13
    inv_diag = rng.uniform(0.5, 2.0, n)
    X, R, P, AP = (rng.normal(size=(n, c)).astype(dtype) for _ in range(4))
    alpha, beta = rng.normal(size=c), rng.normal(size=c)
    numpy_blocks = _solvers._HostBlocks(inv_diag, c, dtype, 2)
    compiled = _solvers._HostBlocks(inv_diag, c, dtype, 2, kernels)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    results = []
    for blocks in (numpy_blocks, compiled):
        X2, R2, P2 = X.copy(), R.copy(), P.copy()
        rr, rz = blocks.step(X2, R2, P2, AP, alpha)
        blocks.direction(P2, R2, beta)
        results.append((X2, R2, P2, rr, rz, *blocks.norms(R)))
        blocks.close()
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-7)])
def test_compiled_solve_matches_scipy_and_dense(kernels, many_chunks, dtype, tol):
    A = shuffled_band(1500, seed=3)
    B = np.random.default_rng(4).normal(size=(1500, 6))
    B[:, 4] = 0.0
    x0 = np.random.default_rng(5).normal(size=(1500, 6)) * 1e-3
    ref = block_cg(A, B, x0=x0, tol=tol, dtype=dtype, kernel="scipy")
    fast = block_cg(A, B, x0=x0, tol=tol, dtype=dtype, kernel="numba")
    dense = np.linalg.solve(A.toarray(), B)
    assert fast.converged and np.all(fast.residuals <= tol)
    true = np.linalg.norm(B - A @ fast.X, axis=0) / np.maximum(np.linalg.norm(B, axis=0), 1)
    assert np.all(true <= 1.01 * tol)
    np.testing.assert_allclose(fast.X, ref.X, atol=1e3 * tol * np.abs(dense).max())
    np.testing.assert_allclose(fast.X, dense, atol=1e3 * tol * np.abs(dense).max())
    assert abs(fast.n_iter - ref.n_iter) <= 3
    # the thread count does not change the result
    one = block_cg(A, B, x0=x0, tol=tol, dtype=dtype, kernel="numba", n_threads=1)
    np.testing.assert_array_equal(one.X, fast.X)


def test_edge_cosines_equal_numpy(kernels):
    rng = np.random.default_rng(6)
    W = sp.random(300, 300, density=0.05, random_state=7, format="csr")
    U = rng.random((300, 9)).astype(np.float32)
    out = np.full(W.nnz, np.nan)
    kernels.edge_cosines(W.indptr, W.indices, U, out, 0, 300)
    rows = np.repeat(np.arange(300), np.diff(W.indptr))
    ref = 1.0 - np.einsum("ec,ec->e", U[rows], U[W.indices], dtype=np.float64)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gather_rows_in_place_equals_fancy_indexing(kernels, dtype):
    rng = np.random.default_rng(8)
    G = rng.normal(size=(1000, 7)).astype(dtype)
    # a random permutation (cycles of many lengths), with fixed points
    source = np.r_[np.arange(5), 5 + rng.permutation(995)]
    expected = G[source]
    done = np.zeros(1000, dtype=np.bool_)
    kernels.gather_rows_in_place(G, source, done)
    np.testing.assert_array_equal(G, expected)
    assert done.all()


def test_auto_kernel_and_switch(monkeypatch):
    # small products never wait for a compilation
    monkeypatch.setattr(_kernels, "_state", {"loaded": False, "kernels": None})
    assert _kernels.get(work=10) is None
    monkeypatch.setenv("SKLEARN_MIXEDLP_NUMBA", "0")
    assert not _kernels.enabled() and _kernels.get() is None
    A = random_spd(50)
    with pytest.raises((ValueError, ImportError), match="numba"):
        block_cg(A, np.ones((50, 1)), kernel="numba")
    # the scipy path still runs
    assert block_cg(A, np.ones((50, 1)), kernel="auto").converged
    with pytest.raises(ValueError, match="kernel"):
        block_cg(A, np.ones((50, 1)), kernel="mkl")


def test_without_numba_the_scipy_path_runs(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "numba" else real(name, *a)
    )
    monkeypatch.setattr(_kernels, "_state", {"loaded": False, "kernels": None})
    assert _kernels.get() is None
    A = random_spd(80)
    result = block_cg(A, np.ones((80, 2)), tol=1e-10)
    np.testing.assert_allclose(A @ result.X, np.ones((80, 2)), atol=1e-8)
    with pytest.raises(ImportError, match="pip install numba"):
        block_cg(A, np.ones((80, 2)), kernel="numba")


@requires_numba
def test_kernels_are_used_on_large_products():
    assert _solvers._pick_kernels("auto", "scipy", 2**30) is not None
    assert _solvers._pick_kernels("auto", "torch", 2**30) is None
    assert _solvers._pick_kernels("scipy", "scipy", 2**30) is None


def graph_with_empty_rows(n=400, seed=8):
    """A symmetric graph whose first, last and some middle rows are empty."""
    M = sp.random(n, n, density=0.03, random_state=seed, format="csr")
    W = (M + M.T).tolil()
    W.setdiag(0)
    for r in (0, 1, 57, n - 1):
        W[r, :] = 0
        W[:, r] = 0
    W = sp.csr_matrix(W)
    W.eliminate_zeros()
    W.sort_indices()
    return W


def test_row_spans_cover_every_row():
    from sklearn_mixedlp._utils import row_spans

    W = graph_with_empty_rows()
    for entries in (1, 7, 100, 10**9):
        spans = row_spans(W.indptr, entries)
        assert spans[0].start == 0 and spans[-1].stop == W.shape[0]
        assert all(a.stop == b.start for a, b in zip(spans, spans[1:]))


@pytest.mark.parametrize("compiled", [False, True])
def test_system_pattern_equals_sparse_sum(kernels, compiled):
    """A system on the graph's pattern with the diagonal inserted: the
    compiled and numpy constructions give diag(a) + sign D_s W D_s."""
    from sklearn_mixedlp._label_propagation import _cut_values, _Pattern

    W = graph_with_empty_rows()
    rng = np.random.default_rng(9)
    scale, diagonal = rng.uniform(0.5, 2, W.shape[0]), rng.uniform(1, 2, W.shape[0])
    pattern = _Pattern(W, kernels if compiled else None)
    A = pattern.system(W.data, scale, -1.0, diagonal)
    expected = sp.diags(diagonal) - sp.diags(scale) @ W @ sp.diags(scale)
    A.has_sorted_indices = False
    A.sort_indices()
    assert A.nnz == W.nnz + W.shape[0]
    np.testing.assert_allclose(A.toarray(), expected.toarray(), rtol=1e-14)
    np.testing.assert_allclose(A.diagonal(), diagonal)
    # the cut graph: values on W's pattern, w (1 - beta share) cut at 0; a
    # share of exactly 1 / beta cuts its edge to exactly 0
    share = rng.uniform(0, 1.5, W.nnz).astype(np.float32)
    share[::5] = 0.5
    cut, degree, removed = _cut_values(W, share, 2.0, kernels if compiled else None)
    np.testing.assert_allclose(
        cut, np.maximum(W.data * (1 - 2.0 * share.astype(np.float64)), 0),
        rtol=1e-15, atol=0,
    )
    assert np.all(cut[::5] == 0.0)
    np.testing.assert_allclose(degree, np.asarray(
        sp.csr_matrix((cut, W.indices, W.indptr), shape=W.shape).sum(axis=1)).ravel())
    assert removed
    assert not _cut_values(W, 0 * share, 1.0, kernels if compiled else None)[2]


@pytest.mark.parametrize("combination", ["product", "sum"])
@pytest.mark.parametrize("compiled", [False, True])
def test_agreement_shares_are_the_weights_over_the_affinities(
    kernels, monkeypatch, compiled, combination
):
    """``shares=True``: float32 shares ``1 - exp(-e / T)``, the weights of
    ``agreement_data`` divided by their affinities, in both paths, for
    both combinations of the views."""
    from sklearn_mixedlp._negatives import agreement_data, unit_rows

    monkeypatch.setattr(_kernels, "MIN_WORK", 0 if compiled else 2**62)
    W = graph_with_empty_rows()
    rng = np.random.default_rng(10)
    Pn, Qn = unit_rows(rng.random((W.shape[0], 5))), unit_rows(rng.random((W.shape[0], 5)))
    kw = dict(temperature=0.3, view_weight=0.5, view_combination=combination)
    weights = agreement_data(W, Pn, Qn, **kw)
    shares = agreement_data(W, Pn, Qn, shares=True, **kw)
    assert shares.dtype == np.float32 and weights.dtype == np.float64
    assert np.all((shares >= 0) & (shares <= 1))
    np.testing.assert_allclose(shares * W.data, weights, rtol=1e-7)
    rows = np.repeat(np.arange(W.shape[0]), np.diff(W.indptr))
    P64, Q64 = Pn.astype(np.float64), Qn.astype(np.float64)
    d = np.clip(1 - (P64[rows] * P64[W.indices]).sum(1), 0, None)
    q = np.clip(1 - (Q64[rows] * Q64[W.indices]).sum(1), 0, None)
    e = 1.5 * np.sqrt(d * q) if combination == "product" else d + 0.5 * q
    np.testing.assert_allclose(shares, -np.expm1(-e / 0.3), rtol=1e-6)
    with pytest.raises(ValueError, match="view_combination must be"):
        agreement_data(W, Pn, Qn, view_combination="max")


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_agreement_from_scores_equals_agreement_from_unit_rows(
    kernels, monkeypatch, compiled, dtype
):
    """A :class:`DistributionRows` (the unit rows read from the scores:
    clipped, weighted by class, uniform where the row is empty) gives the
    agreement of the unit rows of the distributions themselves, exactly
    symmetric, in both paths."""
    from sklearn_mixedlp._negatives import DistributionRows, agreement_data, unit_rows
    from sklearn_mixedlp._utils import normalize_distributions

    monkeypatch.setattr(_kernels, "MIN_WORK", 0 if compiled else 2**62)
    W = graph_with_empty_rows()
    n = W.shape[0]
    rng = np.random.default_rng(11)
    G = rng.normal(size=(n, 6)).astype(dtype)
    G[::7] = -np.abs(G[::7])  # empty rows: all scores clipped to 0
    factor = rng.uniform(0.5, 2.0, 6)
    uniform = np.array([0.25, 0.25, 0.0, 0.25, 0.25, 0.0])
    g = np.clip(G.astype(np.float64), 0, None) * factor
    P, empty = normalize_distributions(g.copy(), uniform)
    assert empty.sum() >= 3 and (~empty).sum() >= 3
    scale = np.where(empty, 0.0, 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300))
    rows = DistributionRows(G, scale, uniform, factor)
    assert rows.shape == G.shape
    np.testing.assert_allclose(rows[np.arange(n)], unit_rows(P), rtol=1e-6, atol=1e-7)
    Qn = unit_rows(rng.random((n, 4)))
    for Q, combination in ((Qn, "product"), (Qn, "sum"), (None, "product")):
        kw = dict(temperature=0.3, shares=True, view_combination=combination)
        lazy = agreement_data(W, rows, Q, **kw)
        direct = agreement_data(W, unit_rows(P), Q, **kw)
        # float32 unit rows: cosines to ~1e-7, through the square root of
        # the product (slope unbounded near 0) ~1e-5
        atol = 1e-5 if Q is not None and combination == "product" else 1e-6
        np.testing.assert_allclose(lazy, direct, rtol=1e-5, atol=atol)
        S = sp.csr_matrix((lazy, W.indices, W.indptr), shape=W.shape)
        assert (S != S.T).nnz == 0


@pytest.mark.parametrize("mining", ["two_view", "agreement"])
def test_fit_with_compiled_kernels_equals_numpy(kernels, monkeypatch, mining):
    """The whole fit (graph, mining rounds, solves) with the compiled
    kernels forced on a small problem, against numpy and scipy (every solve
    at tol, so that the two paths differ by rounding alone)."""
    from sklearn.datasets import load_digits

    from sklearn_mixedlp import HardNegativeLP, _label_propagation
    from sklearn_mixedlp.datasets import mask_labels

    monkeypatch.setattr(_label_propagation, "_MINING_TOL", 0.0)

    X, y = load_digits(return_X_y=True)
    y_train = mask_labels(y, 5, random_state=0)
    params = dict(mining=mining, tol=1e-10, random_state=0)
    monkeypatch.setenv("SKLEARN_MIXEDLP_NUMBA", "0")
    ref = HardNegativeLP(**params).fit(X, y_train)
    monkeypatch.setenv("SKLEARN_MIXEDLP_NUMBA", "1")
    monkeypatch.setattr(_kernels, "MIN_WORK", 0)
    fast = HardNegativeLP(**params).fit(X, y_train)
    np.testing.assert_allclose(
        fast.dissimilarity_.toarray(), ref.dissimilarity_.toarray(), atol=1e-7
    )
    np.testing.assert_allclose(fast.label_distributions_, ref.label_distributions_, atol=1e-6)
    assert (fast.transduction_ == ref.transduction_).mean() > 0.999


def directed_knn_affinities(n=700, k=9, seed=12):
    """Directed kNN-like affinities: unsorted columns, self loops, mutual
    pairs whose sum must merge, zero weights and empty rows."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n, k))
    idx[:50, 0] = np.arange(50)  # self loops
    idx[50:100, 1] = idx[50:100, 0]  # a duplicated column in one row
    data = rng.random((n, k))
    data[::11, 2] = 0.0
    data[[3, 400]] = 0.0  # rows whose entries are all zero
    indptr = np.arange(0, n * k + 1, k)
    A = sp.csr_matrix((data.ravel(), idx.ravel(), indptr), shape=(n, n))
    # mutual pairs: some edges also stored backwards
    return A + sp.csr_matrix(
        (rng.random(200), (idx[:200, 3], np.arange(200))), shape=(n, n)
    )


def test_symmetrize_compiled_equals_scipy(kernels, monkeypatch):
    """``A + A^T`` assembled by the compiled kernels (counting-sort
    transpose, per-row merge, in-place compaction) is scipy's: same
    pattern, sorted rows, zero diagonal, no stored zeros."""
    from sklearn_mixedlp import _graph
    from sklearn_mixedlp._graph import symmetrize

    A = directed_knn_affinities()
    monkeypatch.setattr(_kernels, "MIN_WORK", 2**62)
    ref = symmetrize(A)
    monkeypatch.setattr(_kernels, "MIN_WORK", 0)
    # small row chunks: several threads, rows moved across chunk borders
    monkeypatch.setattr(_graph, "_GRAPH_ROW_ENTRIES", 64)
    W = symmetrize(A)
    assert W.has_sorted_indices and W.nnz == ref.nnz
    np.testing.assert_array_equal(W.indptr, ref.indptr)
    np.testing.assert_array_equal(W.indices, ref.indices)
    np.testing.assert_allclose(W.data, ref.data, rtol=1e-15)
    assert np.all(W.diagonal() == 0) and np.all(W.data != 0)
    dense = A.toarray() + A.toarray().T
    np.fill_diagonal(dense, 0)
    np.testing.assert_allclose(W.toarray(), dense, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_permute_symmetric_compiled_equals_scipy(kernels, monkeypatch, dtype):
    from sklearn_mixedlp._graph import permute_symmetric

    W = graph_with_empty_rows().astype(dtype)
    perm = np.random.default_rng(13).permutation(W.shape[0])
    monkeypatch.setattr(_kernels, "MIN_WORK", 0)
    P = permute_symmetric(W, perm)
    assert P.has_sorted_indices and P.dtype == dtype
    assert np.all(np.diff(P.indices[P.indptr[5] : P.indptr[6]]) > 0)
    np.testing.assert_array_equal(P.toarray(), W.toarray()[perm][:, perm])
    monkeypatch.setattr(_kernels, "MIN_WORK", 2**62)
    ref = permute_symmetric(W, perm)
    np.testing.assert_array_equal(P.indices, ref.indices)
    np.testing.assert_array_equal(P.data, ref.data)


def test_permute_symmetric_moves_values_with_their_entries(kernels, monkeypatch):
    """Values on the pattern of M (a second matrix, zeros included) move
    with its entries, by the compiled kernel and by scipy alike."""
    from sklearn_mixedlp._graph import permute_symmetric

    W = graph_with_empty_rows()
    values = np.random.default_rng(2).random(W.nnz).astype(np.float32)
    values[::7] = 0.0
    V = sp.csr_matrix((values, W.indices, W.indptr), shape=W.shape)
    perm = np.random.default_rng(14).permutation(W.shape[0])
    expected = V.toarray()[perm][:, perm]
    for min_work in (0, 2**62):
        monkeypatch.setattr(_kernels, "MIN_WORK", min_work)
        P, moved = permute_symmetric(W, perm, values=values)
        assert moved.dtype == np.float32 and moved.shape == (W.nnz,)
        np.testing.assert_array_equal(P.toarray(), W.toarray()[perm][:, perm])
        M = sp.csr_matrix((moved, P.indices, P.indptr), shape=W.shape)
        np.testing.assert_array_equal(M.toarray(), expected)
        assert np.count_nonzero(moved == 0) == np.count_nonzero(values == 0)
    with pytest.raises(ValueError, match="one per stored entry"):
        permute_symmetric(W, perm, values=values[:-1])


@pytest.mark.parametrize("lazy", [False, True])
def test_agreement_computed_once_per_edge_equals_both_triangles(kernels, monkeypatch, lazy):
    """On sorted indices the compiled agreement computes each edge from its
    upper entry and writes both: the values equal those of numpy's two
    triangles, are exactly symmetric, and an entry whose mirror is not
    stored (a pattern that is not symmetric) is computed from its own row;
    unsorted indices take both triangles."""
    from sklearn_mixedlp._negatives import DistributionRows, agreement_data, unit_rows

    rng = np.random.default_rng(12)
    W = graph_with_empty_rows()
    W.sort_indices()
    # drop the mirror of one edge: (i, j) stays, (j, i) goes
    i = int(np.flatnonzero(np.diff(W.indptr))[3])
    j = int(W.indices[W.indptr[i]])
    lopsided = W.tolil()
    lopsided[j, i] = 0
    lopsided = sp.csr_matrix(lopsided)
    lopsided.eliminate_zeros()
    G = rng.random((W.shape[0], 6)).astype(np.float32)
    Qn = unit_rows(rng.random((W.shape[0], 6)))
    for graph in (W, lopsided):
        for rows in (False, True):
            M = graph.copy()
            if rows:  # the same matrix, indices not known to be sorted
                M.has_sorted_indices = False
            if lazy:
                Pn = DistributionRows(G, 1.0 / np.linalg.norm(G.astype(np.float64), axis=1),
                                      np.full(6, 1 / 6))
            else:
                Pn = unit_rows(G / G.sum(1, keepdims=True))
            monkeypatch.setattr(_kernels, "MIN_WORK", 0)
            compiled = agreement_data(M, Pn, Qn, temperature=0.3, shares=True)
            monkeypatch.setattr(_kernels, "MIN_WORK", 2**62)
            reference = agreement_data(
                M, unit_rows(G / G.sum(1, keepdims=True)), Qn, temperature=0.3, shares=True
            )
            np.testing.assert_allclose(compiled, reference, rtol=1e-5, atol=1e-6)
            S = sp.csr_matrix((compiled, M.indices, M.indptr), shape=M.shape)
            if graph is W:
                assert (S != S.T).nnz == 0  # exactly symmetric


def test_mirror_positions_match_their_definition(kernels):
    """Each upper entry names the position of its stored mirror, that
    lower entry is marked as written from it, and a diagonal entry or one
    whose mirror is missing is computed from its own row: checked against
    a search of every entry, on a pattern with a diagonal, missing
    mirrors in both triangles and empty rows."""
    from sklearn_mixedlp._kernels_numba import _WRITTEN_FROM_ITS_MIRROR
    from sklearn_mixedlp._negatives import edge_mirrors

    rng = np.random.default_rng(3)
    M = sp.random(60, 60, density=0.15, random_state=4, format="csr")
    M = sp.csr_matrix(M + M.T + sp.diags(rng.random(60)))
    M = M.tolil()
    M[5, :] = 0
    M[:, 5] = 0
    M[7, 30] = 1.0  # upper entry without its mirror
    M[40, 2] = 1.0  # lower entry without its mirror
    M[2, 40] = 0
    M[30, 7] = 0
    M = sp.csr_matrix(M)
    M.eliminate_zeros()
    M.sort_indices()
    expected = np.full(M.nnz, -1)
    row_of = np.repeat(np.arange(60), np.diff(M.indptr))
    position = {(i, j): p for p, (i, j) in enumerate(zip(row_of, M.indices))}
    for (i, j), p in position.items():
        if j > i and (j, i) in position:
            expected[p] = position[(j, i)]
        elif j < i and (j, i) in position:
            expected[p] = _WRITTEN_FROM_ITS_MIRROR
    mirrors = edge_mirrors(M, 2**30)
    assert mirrors.dtype == np.int32
    np.testing.assert_array_equal(mirrors, expected)
    assert expected[position[(7, 30)]] == -1 and expected[position[(40, 2)]] == -1
    # unsorted indices: no mirrors; below the kernels' work size: none
    M.has_sorted_indices = False
    assert edge_mirrors(M, 2**30) is None
    M.sort_indices()
    assert edge_mirrors(M, 1) is None
