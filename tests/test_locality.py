"""The locality order of the solves: a permutation applied and undone
exactly, with the same results as in data order."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits

from sklearn_mixedlp import (
    HardNegativeLP,
    MixedLabelPropagation,
    _graph,
    _label_propagation,
    _solvers,
)
from sklearn_mixedlp._graph import locality_order, permute_symmetric, symmetrize

from .conftest import mask_per_class


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


def test_permute_symmetric_matches_fancy_indexing():
    rng = np.random.default_rng(0)
    M = sp.random(40, 40, density=0.2, random_state=0, format="csr")
    M = M + M.T
    perm = rng.permutation(40)
    P = permute_symmetric(M, perm)
    assert P.has_sorted_indices
    np.testing.assert_array_equal(P.toarray(), M.toarray()[perm][:, perm])
    inverse = np.argsort(perm)
    np.testing.assert_array_equal(permute_symmetric(P, inverse).toarray(), M.toarray())


def _edge_spread(W, perm):
    """Mean distance in memory between the rows of an edge in ``perm``."""
    position = np.argsort(perm)
    coo = W.tocoo()
    return np.abs(position[coo.row] - position[coo.col]).mean()


@pytest.mark.parametrize("cell_rows", [10_000, 60])
def test_locality_order_is_a_permutation_that_brings_neighbours_close(
    digits, monkeypatch, cell_rows
):
    # 10,000 rows per cell: one cell, reverse Cuthill-McKee alone; 60: ten
    # k-means cells, each in reverse Cuthill-McKee order
    monkeypatch.setattr(_graph, "_CELL_ROWS", cell_rows)
    X, _ = digits
    W = symmetrize(_graph.knn_graph(X, 10, knn_backend="exact"))
    shuffled = np.random.default_rng(0).permutation(X.shape[0])
    X, W = X[shuffled], permute_symmetric(W, shuffled)
    perm = locality_order(X, W, random_state=0)
    np.testing.assert_array_equal(np.sort(perm), np.arange(X.shape[0]))
    data_order = np.arange(X.shape[0])
    assert _edge_spread(W, perm) < 0.5 * _edge_spread(W, data_order)
    # the same seed gives the same order
    np.testing.assert_array_equal(perm, locality_order(X, W, random_state=0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: MixedLabelPropagation(knn_backend="exact"),
        lambda: MixedLabelPropagation("mom", knn_backend="exact", beta=0.1),
        lambda: HardNegativeLP(knn_backend="exact"),
        lambda: HardNegativeLP.paper(knn_backend="exact"),
    ],
    ids=["lp", "mom", "hard", "hard-paper"],
)
def test_reordered_fit_equals_data_order_fit(digits, monkeypatch, make):
    X, y = digits
    y_train = mask_per_class(y, 5)
    plain = make().fit(X, y_train)
    # force the reordering (the score block is far below the cache size)
    monkeypatch.setattr(_solvers, "_CACHE_BYTES", 0)
    monkeypatch.setattr(_graph, "_CELL_ROWS", 60)
    calls = []
    original = _label_propagation.locality_order

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_label_propagation, "locality_order", spy)
    reordered = make().fit(X, y_train)
    assert calls, "the fit did not reorder"
    # the graph is put back exactly; the solutions agree to the tolerance
    assert (reordered.affinity_ != plain.affinity_).nnz == 0
    # (the two-view mining compares distributions in float32, ~1e-7 on a
    # cosine, and its product takes their square root, whose slope is
    # unbounded near 0: ~1e-4 on a share where one view nearly agrees)
    two_view = getattr(reordered, "mining_", None) == "two_view"
    np.testing.assert_allclose(
        reordered.dissimilarity_.toarray(), plain.dissimilarity_.toarray(),
        rtol=1e-4, atol=1e-4 if two_view else 1e-6,
    )
    np.testing.assert_allclose(
        reordered.label_distributions_, plain.label_distributions_, atol=1e-5
    )
    assert (reordered.transduction_ == plain.transduction_).mean() > 0.995
    np.testing.assert_array_equal(reordered.predict(X), reordered.transduction_)


def test_user_negatives_follow_the_reordering(digits, monkeypatch):
    X, y = digits
    y_train = mask_per_class(y, 5)
    pairs = np.array([[0, 1], [2, 5], [7, 30], [100, 400]])
    plain = MixedLabelPropagation(knn_backend="exact").fit(X, y_train, negatives=pairs)
    monkeypatch.setattr(_solvers, "_CACHE_BYTES", 0)
    monkeypatch.setattr(_graph, "_CELL_ROWS", 60)
    reordered = MixedLabelPropagation(knn_backend="exact").fit(
        X, y_train, negatives=pairs
    )
    # same pairs; the weights are in units of the mean affinity (summed in
    # another order)
    np.testing.assert_allclose(
        reordered.dissimilarity_.toarray(), plain.dissimilarity_.toarray(), rtol=1e-12
    )
    rows, cols = reordered.dissimilarity_.nonzero()
    assert {(int(i), int(j)) for i, j in zip(rows, cols) if i < j} == {
        (0, 1), (2, 5), (7, 30), (100, 400)
    }
    np.testing.assert_allclose(
        reordered.label_distributions_, plain.label_distributions_, atol=1e-5
    )
