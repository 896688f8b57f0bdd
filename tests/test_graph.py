"""Affinity graph (SPEC section 1): backends and eq. 15."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp._graph import (
    NeighborIndex,
    knn_affinity,
    l2_normalize,
    neighbor_recall,
    symmetrize,
)

from .conftest import requires_faiss, requires_pynndescent


def brute_force_knn(V, k):
    S = V @ V.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def recall(idx, ref):
    hits = sum(len(set(a) & set(b)) for a, b in zip(idx, ref))
    return hits / ref.size


@pytest.fixture(scope="module")
def sphere_data():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(20, 16))
    X = centers[rng.integers(0, 20, size=3000)] + 0.5 * rng.normal(size=(3000, 16))
    return l2_normalize(X)[0]


@pytest.mark.parametrize(
    "backend, min_recall, kwargs",
    [
        ("exact", 0.99, {}),
        pytest.param("faiss", 0.99, {}, marks=requires_faiss),
        # force the approximate HNSW index on this small set
        pytest.param("faiss", 0.9, {"exact_max_samples": 100}, marks=requires_faiss),
        pytest.param("pynndescent", 0.9, {"random_state": 0}, marks=requires_pynndescent),
    ],
)
def test_backend_recall_against_brute_force(sphere_data, backend, min_recall, kwargs):
    k = 15
    ref = brute_force_knn(sphere_data, k)
    index = NeighborIndex(backend, **kwargs).fit(sphere_data, k)
    sim, idx = index.self_kneighbors(sphere_data, k)
    assert idx.shape == (len(sphere_data), k)
    assert not np.any(idx == np.arange(len(sphere_data))[:, None]), "self returned"
    assert recall(idx, ref) >= min_recall
    # reported similarities are the inner products of the returned pairs
    direct = np.einsum("nd,nkd->nk", sphere_data, sphere_data[idx])
    np.testing.assert_allclose(sim, direct, atol=1e-5)
    # new queries
    Q = sphere_data[:50] + 0.01
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    sim_q, idx_q = index.kneighbors(Q, k)
    ref_q = np.argsort(-(Q @ sphere_data.T), axis=1)[:, :k]
    assert recall(idx_q, ref_q) >= min_recall


def test_exact_backend_sparse_equals_dense(sphere_data):
    k = 10
    dense = NeighborIndex("exact").fit(sphere_data, k).self_kneighbors(sphere_data, k)
    Vs = sp.csr_matrix(sphere_data)
    sparse = NeighborIndex("exact").fit(Vs, k).self_kneighbors(Vs, k)
    np.testing.assert_array_equal(dense[1], sparse[1])
    np.testing.assert_allclose(dense[0], sparse[0])


def test_duplicates_drop_one_neighbour_not_self():
    V = l2_normalize(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))[0]
    sim, idx = NeighborIndex("exact").fit(V, 2).self_kneighbors(V, 2)
    assert not np.any(idx == np.arange(4)[:, None])
    assert idx[0, 0] == 1 and idx[1, 0] == 0  # the duplicate is the nearest


def test_affinity_matches_eq15_by_hand():
    # Four points on the unit circle at 0, 60, 90 and 240 degrees, k = 1.
    angles = np.deg2rad([0.0, 60.0, 90.0, 240.0])
    X = np.c_[np.cos(angles), np.sin(angles)] * [[1.0], [2.0], [3.0], [0.5]]
    V, _ = l2_normalize(X)
    gamma = 3.0
    sim, idx = NeighborIndex("exact").fit(V, 1).self_kneighbors(V, 1)
    # nearest neighbours: 0 -> 1, 1 -> 2, 2 -> 1, 3 -> 0 (cos 240 deg = -0.5)
    np.testing.assert_array_equal(idx.ravel(), [1, 2, 1, 0])
    W = symmetrize(knn_affinity(sim, idx, gamma, 4)).toarray()
    c60, c30 = np.cos(np.deg2rad(60)), np.cos(np.deg2rad(30))
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = c60**gamma  # 0 -> 1 only
    expected[1, 2] = expected[2, 1] = 2 * c30**gamma  # mutual: both contributions
    # 3 -> 0 has a negative cosine: [.]_+ gives no edge
    np.testing.assert_allclose(W, expected, atol=1e-15)
    assert np.allclose(W, W.T) and np.all(np.diag(W) == 0) and np.all(W >= 0)


def test_graph_is_sparse_and_symmetric(sphere_data):
    k = 12
    sim, idx = NeighborIndex("exact").fit(sphere_data, k).self_kneighbors(sphere_data, k)
    W = symmetrize(knn_affinity(sim, idx, 3.0, len(sphere_data)))
    assert sp.issparse(W)
    assert W.nnz <= 2 * k * len(sphere_data)
    assert abs(W - W.T).max() == 0
    assert W.diagonal().max() == 0 and W.data.min() > 0


def test_zero_rows_warn_and_stay_zero():
    X = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]])
    with pytest.warns(UserWarning, match=r"zero norm.*rows 1"):
        V, zero = l2_normalize(X)
    np.testing.assert_array_equal(zero, [False, True, False])
    np.testing.assert_allclose(np.linalg.norm(V, axis=1), [1.0, 0.0, 1.0])


@requires_faiss
def test_faiss_index_pickles(sphere_data):
    import pickle

    index = NeighborIndex("faiss").fit(sphere_data, 5)
    clone = pickle.loads(pickle.dumps(index))
    a = index.kneighbors(sphere_data[:20], 5)
    b = clone.kneighbors(sphere_data[:20], 5)
    np.testing.assert_array_equal(a[1], b[1])


def test_missing_optional_dependency_names_the_extra(monkeypatch, sphere_data):
    import importlib

    real_import = importlib.import_module

    def fake_import(name, *args):
        if name in ("faiss", "pynndescent"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-mixedlp\[faiss\]'"):
        NeighborIndex("faiss").fit(sphere_data, 5)
    with pytest.raises(ImportError, match=r"sklearn-mixedlp\[pynndescent\]"):
        NeighborIndex("pynndescent").fit(sphere_data, 5)
    # 'auto' falls back to exact search without them
    from sklearn_mixedlp._graph import resolve_knn_backend

    assert resolve_knn_backend("auto", 1000, False) == "exact"


@pytest.mark.parametrize("kernel", ["self_tuning", "power"])
def test_knn_graph_is_the_estimators_graph(kernel):
    """knn_graph + knn_backend='precomputed' reproduces a fit on features."""
    from sklearn.datasets import load_digits

    from sklearn_mixedlp import HardNegativeLP, knn_graph
    from sklearn_mixedlp.datasets import mask_labels

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], mask_labels(y[:400], 5, random_state=0)
    A = knn_graph(X, 8, kernel=kernel, gamma=2.0, knn_backend="exact")
    assert A.shape == (400, 400)
    assert np.all(np.diff(A.indptr) <= 8)
    assert A.diagonal().sum() == 0
    pre = HardNegativeLP(knn_backend="precomputed").fit(A, y)
    ref = HardNegativeLP(n_neighbors=8, kernel=kernel, gamma=2.0, knn_backend="exact")
    ref.fit(X, y)
    np.testing.assert_allclose(pre.affinity_.toarray(), ref.affinity_.toarray())
    np.testing.assert_allclose(pre.label_distributions_, ref.label_distributions_)
    with pytest.raises(ValueError, match="knn_backend"):
        knn_graph(X, knn_backend="precomputed")
    with pytest.raises(ValueError, match="kernel"):
        knn_graph(X, kernel="rbf")


def test_neighbor_recall_exact_and_corrupted(sphere_data):
    k = 10
    _, idx = NeighborIndex("exact").fit(sphere_data, k).self_kneighbors(sphere_data, k)
    assert neighbor_recall(sphere_data, idx) == 1.0
    assert neighbor_recall(sphere_data, idx, k=4, n_queries=50, random_state=0) == 1.0
    # The last 3 neighbours replaced by the farthest rows: 7 of 10 found.
    far = np.argsort(sphere_data @ sphere_data.T, axis=1)[:, :3]
    corrupted = np.concatenate([idx[:, :7], far], axis=1)
    assert neighbor_recall(sphere_data, corrupted, random_state=0) == pytest.approx(0.7)
    # A neighbour repeated counts once.
    assert neighbor_recall(sphere_data, np.repeat(idx[:, :1], k, axis=1)) == 0.1
    with pytest.raises(ValueError, match="idx must have shape"):
        neighbor_recall(sphere_data, idx[:10])
    with pytest.raises(ValueError, match="k=11"):
        neighbor_recall(sphere_data, idx, k=11)
