"""The two-level preconditioner of the solves (coarse space of aggregates)."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, _graph, _kernels
from sklearn_mixedlp import _label_propagation as lp
from sklearn_mixedlp._graph import knn_graph
from sklearn_mixedlp._solvers import CoarseSpace, _DeviceBlocks, _HostBlocks, block_cg
from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels

from .conftest import requires_torch

requires_numba = pytest.mark.skipif(_kernels.get() is None, reason="numba is not installed")


def clustered_system(n=1500, n_classes=15, mu=0.01, seed=0):
    """A normalised label-propagation system on a kNN graph of well
    separated clusters, its sources, the degrees and k-means-like cells
    (the true cluster of each row cut into a few parts)."""
    X, y = make_sphere_mixture(n, n_classes=n_classes, random_state=seed)
    A0 = knn_graph(X, 10, random_state=seed)
    W = (A0 + A0.T).tocsr()
    degree = np.asarray(W.sum(axis=1)).ravel()
    s = 1.0 / np.sqrt(degree)
    A = (sp.identity(n) * (1.0 + mu) - sp.diags(s) @ W @ sp.diags(s)).tocsr()
    rng = np.random.default_rng(seed)
    B = np.zeros((n, n_classes))
    # three labeled rows per class
    labeled = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), 3, replace=False) for c in range(n_classes)]
    )
    B[labeled, y[labeled]] = mu
    # cells: each cluster cut in two by the sign of a random direction
    side = (X @ rng.normal(size=X.shape[1]) > 0).astype(int)
    return A, B, degree, 2 * y + side


@pytest.mark.parametrize("kernel", ["scipy", pytest.param("numba", marks=requires_numba)])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 1e-4), (np.float32, 1e-6)])
def test_two_level_solve_equals_dense_solve_in_fewer_iterations(kernel, dtype, tol):
    A, B, degree, cells = clustered_system()
    coarse = CoarseSpace(cells, np.sqrt(degree))
    jacobi = block_cg(A, B, tol=tol, dtype=dtype, kernel=kernel)
    two = block_cg(A, B, tol=tol, dtype=dtype, kernel=kernel, coarse=coarse)
    X_ref = np.linalg.solve(A.toarray(), B)
    assert two.converged and np.all(two.residuals <= tol)
    true_res = np.linalg.norm(B - A @ two.X, axis=0) / np.linalg.norm(B, axis=0)
    assert np.all(true_res <= 2 * tol)
    np.testing.assert_allclose(two.X, X_ref, atol=100 * tol * np.abs(X_ref).max())
    # the slow modes are the clusters' near-constant vectors: the coarse
    # space removes them
    assert two.n_iter <= 0.6 * jacobi.n_iter


def test_coarse_operator_is_the_galerkin_product():
    A, _, degree, cells = clustered_system(n=400, n_classes=4)
    space = CoarseSpace(cells + 7, np.sqrt(degree))  # labels relabelled to 0..m-1
    Q = sp.csr_matrix(
        (space.weights, (np.arange(A.shape[0]), space.aggregates)),
        shape=(A.shape[0], space.n_aggregates),
    )
    expected = (Q.T @ A @ Q).toarray()
    np.testing.assert_allclose(space.operator(A), expected, rtol=1e-12, atol=1e-12)
    kernels = _kernels.get()
    if kernels is not None:
        np.testing.assert_allclose(space.operator(A, kernels), expected, rtol=1e-12, atol=1e-12)


@requires_numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_coarse_correction_paths_agree_on_any_thread_count(dtype):
    """The compiled restriction and fused direction equal the numpy ones,
    and do not depend on the thread count (bitwise)."""
    A, _, degree, cells = clustered_system(n=600, n_classes=6)
    solve = CoarseSpace(cells, np.sqrt(degree)).factor(A)
    rng = np.random.default_rng(0)
    R = rng.normal(size=(600, 5)).astype(dtype)
    P0 = rng.normal(size=(600, 5)).astype(dtype)
    beta = rng.uniform(size=5)
    results = []
    for kernels, n_threads in [(None, 1), (_kernels.get(), 1), (_kernels.get(), 2)]:
        blocks = _HostBlocks(1.0 / A.diagonal(), 5, dtype, n_threads, kernels)
        blocks.bounds = np.array([0, 100, 250, 400, 600])  # several chunks
        blocks.groups = np.array_split(np.arange(4), blocks.n_threads)
        Y, rz = solve.solve(blocks, R)
        P = P0.copy()
        if kernels is None:
            blocks.direction(P, R, beta)
            solve.prolong(blocks, P, Y)
        else:
            blocks.direction(P, R, beta, coarse=(solve, Y))
        blocks.close()
        results.append((Y, rz, P))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for Y, rz, P in results[1:]:
        np.testing.assert_allclose(Y, results[0][0], rtol=rtol, atol=rtol * np.abs(Y).max())
        np.testing.assert_allclose(rz, results[0][1], rtol=rtol)
        np.testing.assert_allclose(P, results[0][2], rtol=rtol, atol=rtol)
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)


@requires_torch
def test_coarse_correction_on_torch_tensors_matches_numpy():
    import torch

    A, _, degree, cells = clustered_system(n=500, n_classes=5)
    solve = CoarseSpace(cells, np.sqrt(degree)).factor(A)
    R = np.random.default_rng(1).normal(size=(500, 3))
    host = _HostBlocks(1.0 / A.diagonal(), 3, np.float64, 1)
    Y_ref, rz_ref = solve.solve(host, R)
    P_ref = np.zeros_like(R)
    solve.prolong(host, P_ref, Y_ref)
    device = _DeviceBlocks(1.0 / A.diagonal(), 3, np.float64, "cpu")
    Y, rz = solve.solve(device, torch.from_numpy(R))
    P = torch.zeros(R.shape, dtype=torch.float64)
    solve.prolong(device, P, Y)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-10)
    np.testing.assert_allclose(rz, rz_ref, rtol=1e-10)
    np.testing.assert_allclose(P.numpy(), P_ref, rtol=1e-10, atol=1e-14)


def test_coarse_matrix_not_positive_definite_falls_back_to_jacobi():
    A, B, _, cells = clustered_system(n=300, n_classes=3)
    # an aggregate whose rows all have weight 0 gives a zero coarse row
    weights = np.ones(A.shape[0])
    weights[cells == cells[0]] = 0.0
    space = CoarseSpace(cells, weights)
    assert space.factor(A) is None
    result = block_cg(A, B, tol=1e-8, coarse=space)
    np.testing.assert_allclose(result.X, np.linalg.solve(A.toarray(), B), atol=1e-8)


def test_coarse_space_rejects_bad_input():
    with pytest.raises(ValueError, match="integers"):
        CoarseSpace(np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="non-negative"):
        CoarseSpace(np.array([0, -1]))
    with pytest.raises(ValueError, match="weights"):
        CoarseSpace(np.array([0, 1]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="weights"):
        CoarseSpace(np.array([0, 1]), np.ones(3))
    A, B, _, _ = clustered_system(n=300, n_classes=3)
    # in the given order and in a reordered one alike (a reordered solve
    # once dropped a coarse space of the wrong size without a word)
    for reorder in (None, "rcm"):
        with pytest.raises(ValueError, match="coarse has 10 rows"):
            block_cg(A, B, coarse=CoarseSpace(np.arange(10)), reorder=reorder)


@pytest.mark.parametrize("cls", [MixedLabelPropagation, HardNegativeLP])
def test_fit_with_inverted_lists_uses_the_coarse_space(monkeypatch, cls):
    """An inverted-file search gives the solves its cells as the coarse
    space: the same solution as Jacobi alone, in fewer iterations."""
    pytest.importorskip("faiss")
    X, y = make_sphere_mixture(6000, n_classes=30, random_state=0)
    y_train = mask_labels(y, 5, random_state=0)
    monkeypatch.setattr(
        _graph, "NeighborIndex",
        lambda backend, **kw: _NeighborIndex(backend, exact_max_samples=1000, **kw),
    )
    used = []
    original = lp._BaseMixedLP._coarse_space

    def spy(self, perm, row_scale):
        used.append(self._ivf_lists is not None)
        return original(self, perm, row_scale)

    monkeypatch.setattr(lp._BaseMixedLP, "_coarse_space", spy)
    two = cls(knn_backend="faiss", random_state=0, tol=1e-8).fit(X, y_train)
    assert used == [True]
    # nothing kept
    assert not hasattr(two, "_coarse") and two._ivf_lists is None

    def no_coarse(self, perm, row_scale):
        self._ivf_lists = None

    monkeypatch.setattr(lp._BaseMixedLP, "_coarse_space", no_coarse)
    jacobi = cls(knn_backend="faiss", random_state=0, tol=1e-8).fit(X, y_train)
    assert two.n_iter_ < 0.8 * jacobi.n_iter_
    if cls is MixedLabelPropagation:
        np.testing.assert_allclose(
            two.label_distributions_, jacobi.label_distributions_, atol=1e-6
        )
    else:
        # the mining ranks edges from solves stopped at 1e-3: a few of its
        # choices, and so a few predictions, may differ
        assert np.mean(two.transduction_ != jacobi.transduction_) <= 2e-3


_NeighborIndex = _graph.NeighborIndex


def test_locality_order_from_inverted_lists_keeps_whole_lists_in_a_cell():
    """Given the inverted lists, the cells of the locality order are unions
    of whole lists, grouped by the lists' centroids: with four lists that
    cut across four clusters and four cells, each list is one run (the
    rows alone would group the clusters)."""
    n = 4 * _graph._CELL_ROWS
    X, y = make_sphere_mixture(n, n_classes=4, random_state=0)
    W = knn_graph(X, 10, random_state=0)
    W = (W + W.T).tocsr()
    rng = np.random.default_rng(0)
    list_of_row = np.argmax(X @ rng.normal(size=(X.shape[1], 4)), axis=1)
    centroids = np.array([X[list_of_row == c].mean(axis=0) for c in range(4)])
    perm = _graph.locality_order(X, W, random_state=0, lists=(list_of_row, centroids))
    assert np.array_equal(np.sort(perm), np.arange(n))
    assert np.count_nonzero(np.diff(list_of_row[perm])) == 3
    rows_only = _graph.locality_order(X, W, random_state=0)
    assert np.count_nonzero(np.diff(list_of_row[rows_only])) > 100
