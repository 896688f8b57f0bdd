"""Affinity graph: backends and eq. 15."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp._graph import (
    LiftedRows,
    NeighborIndex,
    _drop_self,
    drop_diagonal,
    knn_affinity,
    l2_normalize,
    lift_rows,
    neighbor_recall,
    resolve_knn_backend,
    symmetrize,
)

from .conftest import (
    has_cuda,
    record_calls,
    requires_cuda,
    requires_faiss,
    requires_numba,
    requires_pynndescent,
    requires_torch,
)

requires_no_cuda = pytest.mark.skipif(has_cuda(), reason="a CUDA device is available")


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
        pytest.param("torch", 0.99, {"device": "cpu"}, marks=requires_torch),
        pytest.param("torch", 0.99, {"device": "cuda"}, marks=requires_cuda),
        pytest.param("faiss", 0.99, {}, marks=requires_faiss),
        # force the approximate IVF index on this small set
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
    with pytest.raises(
        ImportError, match=r"pip install faiss-cpu .*pip install -e '\.\[faiss\]'"
    ):
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
    # the mining that needs no features, as a precomputed graph has none
    pre = HardNegativeLP("agreement", knn_backend="precomputed").fit(A, y)
    ref = HardNegativeLP(
        "agreement", n_neighbors=8, kernel=kernel, gamma=2.0, knn_backend="exact"
    )
    ref.fit(X, y)
    np.testing.assert_allclose(pre.affinity_.toarray(), ref.affinity_.toarray())
    np.testing.assert_allclose(pre.label_distributions_, ref.label_distributions_)
    with pytest.raises(ValueError, match="knn_backend"):
        knn_graph(X, knn_backend="precomputed")
    with pytest.raises(ValueError, match="kernel"):
        knn_graph(X, kernel="rbf")


# -- torch backend --------------------------------------------------------
def assert_same_neighbour_sets(a, b):
    (sim_a, idx_a), (sim_b, idx_b) = a, b
    assert idx_a.shape == idx_b.shape
    for row, (x, y) in enumerate(zip(idx_a, idx_b)):
        assert set(x) == set(y), f"row {row}: {sorted(x)} != {sorted(y)}"
    np.testing.assert_allclose(sim_a, sim_b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "device", [pytest.param("cpu", marks=requires_torch), pytest.param("cuda", marks=requires_cuda)]
)
def test_torch_backend_equals_exact(sphere_data, device):
    k = 10
    exact = NeighborIndex("exact").fit(sphere_data, k)
    index = NeighborIndex("torch", device=device).fit(sphere_data, k)
    assert index.device_ == device
    assert isinstance(index._V, np.ndarray)  # the fitted index holds numpy rows
    assert_same_neighbour_sets(
        index.self_kneighbors(sphere_data, k), exact.self_kneighbors(sphere_data, k)
    )
    Q = l2_normalize(sphere_data[:40] + 0.1)[0]
    got = index.kneighbors(Q, k)
    assert got[0].dtype == np.float64 and got[1].dtype == np.int64
    assert_same_neighbour_sets(got, exact.kneighbors(Q, k))


@requires_torch
def test_torch_backend_rejects_sparse_and_bad_device(sphere_data):
    with pytest.raises(TypeError, match="sparse"):
        NeighborIndex("torch", device="cpu").fit(sp.csr_matrix(sphere_data), 5)
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        NeighborIndex("torch", device="tpu").fit(sphere_data, 5)


@requires_torch
@requires_no_cuda
def test_torch_backend_cuda_without_gpu_raises(sphere_data):
    with pytest.raises(ValueError, match="CUDA is not available"):
        NeighborIndex("torch", device="cuda").fit(sphere_data, 5)


@requires_torch
@requires_no_cuda
def test_torch_index_fitted_on_gpu_loads_on_cpu(sphere_data):
    import pickle

    index = NeighborIndex("torch", device="cpu").fit(sphere_data, 5)
    expected = index.kneighbors(sphere_data[:20], 5)
    # What an index fitted on a GPU looks like: numpy rows, a CUDA device.
    index.device, index.device_ = "cuda", "cuda"
    with pytest.warns(UserWarning, match="searching on the CPU"):
        restored = pickle.loads(pickle.dumps(index))
    assert restored.device_ == "cpu"
    assert_same_neighbour_sets(restored.kneighbors(sphere_data[:20], 5), expected)


def _sphere_task(n=400, seed=0):
    from sklearn_mixedlp.datasets import make_sphere_mixture

    X, y = make_sphere_mixture(n, n_classes=4, n_features=8, random_state=seed)
    y_masked = np.full_like(y, -1)
    for c in range(4):
        y_masked[np.flatnonzero(y == c)[:3]] = c
    return X, y_masked


@requires_torch
def test_estimator_torch_backend_equals_exact():
    from sklearn_mixedlp import HardNegativeLP

    X, y = _sphere_task()
    X_new = _sphere_task(60, seed=1)[0]
    ref = HardNegativeLP(n_neighbors=8, knn_backend="exact").fit(X, y)
    est = HardNegativeLP(n_neighbors=8, knn_backend="torch", device="cpu").fit(X, y)
    assert est.knn_backend_ == "torch"
    np.testing.assert_array_equal(est.affinity_.indices, ref.affinity_.indices)
    np.testing.assert_allclose(est.affinity_.data, ref.affinity_.data, rtol=1e-5)
    np.testing.assert_allclose(
        est.label_distributions_, ref.label_distributions_, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_array_equal(est.transduction_, ref.transduction_)
    np.testing.assert_allclose(
        est.predict_proba(X_new), ref.predict_proba(X_new), rtol=1e-4, atol=1e-6
    )


@requires_torch
def test_pickled_torch_backend_estimator_predicts():
    import pickle

    from sklearn_mixedlp import HardNegativeLP

    X, y = _sphere_task()
    X_new = _sphere_task(60, seed=1)[0]
    est = HardNegativeLP(n_neighbors=8, knn_backend="torch", device="cpu").fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert type(restored._index._V) is np.ndarray  # loads without torch tensors
    np.testing.assert_array_equal(restored.predict(X_new), est.predict(X_new))
    np.testing.assert_allclose(restored.predict_proba(X_new), est.predict_proba(X_new))


@requires_cuda
def test_auto_backend_picks_torch_on_cuda():
    from sklearn_mixedlp import HardNegativeLP

    X, y = _sphere_task()
    ref = HardNegativeLP(n_neighbors=8, knn_backend="exact", device="cpu").fit(X, y)
    est = HardNegativeLP(n_neighbors=8, device="cuda").fit(X, y)
    assert est.knn_backend_ == "torch"
    assert est._index.device_ == "cuda"
    np.testing.assert_array_equal(est.transduction_, ref.transduction_)


def test_auto_backend_without_cuda_request_is_not_torch():
    for device in ("cpu", "auto") if not has_cuda() else ("cpu",):
        assert resolve_knn_backend("auto", 1000, False, device) != "torch"
    assert resolve_knn_backend("auto", 1000, True, "auto") != "torch"  # sparse
    assert resolve_knn_backend("torch", 1000, False, "cpu") == "torch"


def test_missing_torch_names_the_extra(hide_torch, sphere_data):
    with pytest.raises(ImportError, match=r"pip install torch .*whl/cpu.*\[torch\]"):
        NeighborIndex("torch", device="cpu").fit(sphere_data, 5)
    assert resolve_knn_backend("auto", 1000, False, "cuda") != "torch"


# -- approximate faiss path and recall ------------------------------------
@requires_faiss
def test_faiss_ivf_path_has_recall(sphere_data):
    import faiss

    k = 15
    threads = faiss.omp_get_max_threads()
    index = NeighborIndex("faiss", exact_max_samples=500, random_state=0)
    index.fit(sphere_data, k)
    assert isinstance(index._faiss, faiss.IndexIVFFlat), "approximate path not taken"
    assert faiss.omp_get_max_threads() == threads  # thread setting restored
    sim, idx = index.self_kneighbors(sphere_data, k)
    assert not np.any(idx == np.arange(len(sphere_data))[:, None])
    assert neighbor_recall(sphere_data, idx, n_queries=500, random_state=0) >= 0.9
    # New rows, and the index survives pickling.
    import pickle

    restored = pickle.loads(pickle.dumps(index))
    Q = l2_normalize(sphere_data[:30] + 0.05)[0]
    np.testing.assert_array_equal(restored.kneighbors(Q, k)[1], index.kneighbors(Q, k)[1])
    ref_q = np.argsort(-(Q @ sphere_data.T), axis=1)[:, :k]
    assert recall(index.kneighbors(Q, k)[1], ref_q) >= 0.9


@requires_faiss
def test_ivf_lists_added_whole_equal_faiss_add(sphere_data):
    """The inverted lists filled one whole list at a time hold what
    ``index.add`` puts there: same list sizes, same search results."""
    import faiss

    from sklearn_mixedlp._graph import _add_by_list, _train_ivf

    V32 = np.ascontiguousarray(sphere_data, dtype=np.float32)
    plain = _train_ivf(faiss, V32, np.random.RandomState(0))
    whole = _train_ivf(faiss, V32, np.random.RandomState(0))
    plain.add(V32)
    cell = whole.quantizer.search(V32, 1)[1].ravel()
    _add_by_list(faiss, whole, V32, cell)
    assert whole.ntotal == plain.ntotal == len(V32)
    sizes = [plain.invlists.list_size(i) for i in range(plain.nlist)]
    assert [whole.invlists.list_size(i) for i in range(whole.nlist)] == sizes
    np.testing.assert_array_equal(np.bincount(cell.ravel(), minlength=plain.nlist), sizes)
    for a, b in zip(plain.search(V32[:200], 7), whole.search(V32[:200], 7)):
        np.testing.assert_array_equal(a, b)


def _ivf_index(V32, nprobe=None):
    import faiss

    from sklearn_mixedlp._graph import _add_by_list, _train_ivf

    index = _train_ivf(faiss, V32, np.random.RandomState(0))
    if nprobe is not None:
        index.nprobe = nprobe
    _add_by_list(faiss, index, V32, index.quantizer.search(V32, 1)[1].ravel())
    return index


def _list_search(index, Q32, k, exclude_self, n_threads=2):
    import faiss

    from sklearn_mixedlp import _kernels
    from sklearn_mixedlp._graph import _ivf_search, _probe_lists

    kernels = _kernels.get()
    return _ivf_search(
        faiss, index, Q32, _probe_lists(index, Q32), k, exclude_self, n_threads, kernels
    )


@requires_faiss
@requires_numba
@pytest.mark.parametrize("exclude_self", [False, True])
def test_list_by_list_search_equals_faiss_search(sphere_data, exclude_self):
    """The compiled list-by-list scan of an IVF index returns faiss's
    answer on the same index and probes: the top k of the probed lists."""
    V32 = np.ascontiguousarray(sphere_data, dtype=np.float32)
    index = _ivf_index(V32)
    k = 12
    sim, idx = _list_search(index, V32, k, exclude_self)
    ref_sim, ref_idx = index.search(V32, k + 1)
    if exclude_self:
        ref_sim, ref_idx = _drop_self(ref_sim, ref_idx, k)
    else:
        ref_sim, ref_idx = ref_sim[:, :k], ref_idx[:, :k]
    assert sim.dtype == np.float64 and idx.dtype == np.int64
    np.testing.assert_allclose(sim, ref_sim, atol=1e-5)
    # the same neighbours, up to rows whose k-th and (k+1)-th candidates
    # tie within rounding (none on this data)
    assert np.mean(np.sort(idx, 1) == np.sort(ref_idx, 1)) > 0.999
    assert np.all(np.diff(sim, axis=1) <= 0)
    if exclude_self:
        assert not np.any(idx == np.arange(len(V32))[:, None])


@requires_faiss
@requires_numba
def test_list_by_list_search_all_lists_is_exact():
    """Probing every list gives exact search, and the same answer whatever
    the thread count; queries whose probed lists hold fewer than k rows
    are searched against every row. Duplicate rows (exact ties, which
    float32 products may order either way) count as one."""
    rng = np.random.default_rng(0)
    base = l2_normalize(rng.normal(size=(700, 8)))[0]
    V32 = np.ascontiguousarray(np.vstack([base, base[:300]]), dtype=np.float32)
    V64 = V32.astype(np.float64)

    def same_neighbours(idx, sim, k):
        ref = brute_force_knn(V64, k)
        np.testing.assert_allclose(sim, np.take_along_axis(V64 @ V64.T, ref, 1), atol=1e-6)
        original = lambda i: np.where(i >= 700, i - 700, i)  # noqa: E731
        np.testing.assert_array_equal(
            np.sort(original(idx), axis=1), np.sort(original(ref), axis=1)
        )

    k = 9
    index = _ivf_index(V32)
    index.nprobe = index.nlist
    sim, idx = _list_search(index, V32, k, True, 1)
    same_neighbours(idx, sim, k)
    for n_threads in (2, 3):
        other = _list_search(index, V32, k, True, n_threads)
        np.testing.assert_array_equal(other[1], idx)
        np.testing.assert_array_equal(other[0], sim)
    # one probed list (about 16 rows) for 16 neighbours: short queries
    index.nprobe = 1
    sim, idx = _list_search(index, V32, 16, True)
    own = index.quantizer.search(V32, 1)[1].ravel()
    short = np.array([index.invlists.list_size(int(c)) for c in own]) <= 16
    assert short.any() and not short.all()
    assert np.all(idx >= 0) and np.all(np.isfinite(sim))
    ref = brute_force_knn(V64, 16)
    np.testing.assert_allclose(
        sim[short], np.take_along_axis(V64 @ V64.T, ref, 1)[short], atol=1e-6
    )


@requires_faiss
@requires_numba
def test_faiss_backend_uses_the_list_search_and_matches_without_numba(sphere_data, monkeypatch):
    """The estimators' faiss backend on an IVF index gives the same
    neighbours with the compiled kernels as with faiss's own search."""
    index = NeighborIndex("faiss", exact_max_samples=500, random_state=0).fit(sphere_data, 10)
    sim, idx = index.self_kneighbors(sphere_data, 10)
    monkeypatch.setenv("SKLEARN_MIXEDLP_NUMBA", "0")
    plain = NeighborIndex("faiss", exact_max_samples=500, random_state=0).fit(sphere_data, 10)
    ref_sim, ref_idx = plain.self_kneighbors(sphere_data, 10)
    np.testing.assert_allclose(sim, ref_sim, atol=1e-5)
    assert np.mean(idx == ref_idx) > 0.999


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


def test_symmetrize_drops_the_diagonal_and_stored_zeros():
    """A + A^T without its diagonal (stored or not) and without stored
    zeros, against the dense definition."""
    rng = np.random.default_rng(0)
    A = sp.random(300, 300, density=0.05, random_state=1, format="csr")
    A.setdiag(rng.uniform(0.5, 1.0, 300))  # self-loops, as a precomputed graph may have
    A.data[::7] = 0.0  # stored zeros
    W = symmetrize(A)
    dense = A.toarray() + A.toarray().T
    np.fill_diagonal(dense, 0.0)
    np.testing.assert_array_equal(W.toarray(), dense)
    assert W.has_sorted_indices and W.data.min() > 0
    assert not np.any(W.indices == np.repeat(np.arange(300), np.diff(W.indptr)))
    # chunk boundaries do not matter
    np.testing.assert_array_equal(
        drop_diagonal((A + A.T).tocsr(), chunk_rows=7).toarray(), dense
    )


@requires_faiss
@requires_numba
def test_probe_lists_compiled_equal_the_quantizer_search(sphere_data, monkeypatch):
    """The lists each row probes, by matrix products with the centroids and
    compiled heaps (in several chunks of rows, on two threads), are the
    quantizer's."""
    from sklearn_mixedlp import _graph, _kernels

    monkeypatch.setattr(_graph, "_FAISS_QUERY_CHUNK", 700)
    monkeypatch.setattr(_graph, "_IVF_BLOCK_ENTRIES", 5000)
    V32 = np.ascontiguousarray(sphere_data, dtype=np.float32)
    index = _ivf_index(V32, nprobe=7)
    probes = _graph._probe_lists(index, V32, _kernels.get(), 2)
    assert probes.dtype == np.int32 and probes.shape == (len(V32), 7)
    np.testing.assert_array_equal(probes, index.quantizer.search(V32, 7)[1])
    np.testing.assert_array_equal(probes, _graph._probe_lists(index, V32))


# -- lifted rows ----------------------------------------------------------
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("estimator", ["MixedLabelPropagation", "HardNegativeLP"])
def test_lift_is_a_fit_on_rows_with_the_appended_constant(estimator, sparse):
    """lift=t: the fit on ``[X, c]``, c = t times the root-mean-square row
    norm, for the graph, the mining and new rows."""
    import sklearn_mixedlp
    from sklearn.datasets import load_digits

    from sklearn_mixedlp.datasets import mask_labels

    X, y = load_digits(return_X_y=True)
    # 48 features: narrow enough for the linear view with and without the
    # lifted coordinate (which does not count towards its width)
    X, y = X[:500, 8:56], mask_labels(y[:500], 5, random_state=0)
    c = 0.7 * np.sqrt(np.mean(np.sum(X**2, axis=1)))
    X_lifted = np.hstack([X, np.full((len(X), 1), c)])
    new = X[:40] + np.linspace(0, 3, 48)
    new_lifted = np.hstack([new, np.full((40, 1), c)])
    if sparse:
        X, X_lifted = sp.csr_matrix(X), sp.csr_matrix(X_lifted)
    cls = getattr(sklearn_mixedlp, estimator)
    lifted = cls(lift=0.7, knn_backend="exact", random_state=0).fit(X, y)
    by_hand = cls(lift=0.0, knn_backend="exact", random_state=0).fit(X_lifted, y)
    assert lifted.lift_height_ == pytest.approx(c, rel=1e-12)
    assert by_hand.lift_height_ == 0.0
    np.testing.assert_allclose(lifted.affinity_.toarray(), by_hand.affinity_.toarray())
    np.testing.assert_allclose(
        lifted.label_distributions_, by_hand.label_distributions_, atol=1e-12
    )
    np.testing.assert_allclose(
        lifted.predict_proba(new), by_hand.predict_proba(new_lifted), atol=1e-12
    )
    # the lift changes the graph of these rows (their norms differ)
    plain = cls(lift=0.0, knn_backend="exact", random_state=0).fit(X, y)
    assert abs(plain.affinity_ - lifted.affinity_).max() > 0.1


def test_lifted_rows_read_as_the_lifted_copy():
    """LiftedRows gives the rows of lift_rows' copy, by slices and index
    arrays, and l2_normalize normalises them as it does the copy."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        X = (rng.normal(size=(500, 6)) * rng.uniform(0.1, 5.0, size=(500, 1))).astype(dtype)
        copy, height = lift_rows(X, 0.5)
        lazy, lazy_height = lift_rows(X, 0.5, lazy=True)
        assert isinstance(lazy, LiftedRows) and lazy_height == height > 0
        assert lazy.shape == copy.shape and lazy.dtype == copy.dtype == dtype
        rows = rng.permutation(500)[:77]
        np.testing.assert_array_equal(lazy[rows], copy[rows])
        np.testing.assert_array_equal(lazy[10:300], copy[10:300])
        V, zero = l2_normalize(lazy)
        V_copy, zero_copy = l2_normalize(copy)
        assert isinstance(V, np.ndarray) and V.dtype == dtype
        np.testing.assert_array_equal(V, V_copy)
        np.testing.assert_array_equal(zero, zero_copy)
    # sparse rows are lifted by a copy, as before
    lifted, _ = lift_rows(sp.csr_matrix(X), 0.5, lazy=True)
    assert sp.issparse(lifted) and lifted.shape == (500, 7)


@pytest.mark.parametrize("n_features", [16, 80])  # linear view as read / projected
def test_a_fit_on_lifted_rows_is_the_fit_on_the_lifted_copy(monkeypatch, n_features):
    """The estimators read lifted rows through LiftedRows (no copy of X),
    in the search, the solves' row order and the mining's linear view:
    the fit is the one on the lifted copy."""
    from sklearn_mixedlp import HardNegativeLP, _graph, _label_propagation, _solvers
    from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels

    # reorder the solves even at this size (locality order on the features)
    monkeypatch.setattr(_solvers, "_CACHE_BYTES", 1024)
    X, y = make_sphere_mixture(800, n_classes=4, n_features=n_features, random_state=0)
    X *= np.random.default_rng(0).uniform(0.3, 3.0, size=(800, 1))
    y = mask_labels(y, 5, random_state=0)
    calls = record_calls(monkeypatch, _label_propagation._BaseMixedLP, "_locality_order")
    lazy = HardNegativeLP(lift=0.5, random_state=0).fit(X, y)
    lifted = calls[0][1]  # the features (after self)
    assert isinstance(lifted, LiftedRows) and lifted.X is X
    monkeypatch.setattr(
        _label_propagation, "lift_rows",
        lambda X, lift, height=None, lazy=False: _graph.lift_rows(X, lift, height),
    )
    copied = HardNegativeLP(lift=0.5, random_state=0).fit(X, y)
    copy = calls[1][1]
    assert isinstance(copy, np.ndarray) and copy.shape == (800, n_features + 1)
    np.testing.assert_array_equal(lazy.affinity_.toarray(), copied.affinity_.toarray())
    np.testing.assert_allclose(
        lazy.dissimilarity_.toarray(), copied.dissimilarity_.toarray(), atol=1e-12
    )
    np.testing.assert_allclose(
        lazy.label_distributions_, copied.label_distributions_, atol=1e-12
    )
    assert lazy.dissimilarity_.nnz > 0


def test_lift_leaves_rows_of_equal_norm_as_they_were():
    """Rows of one norm keep their cosine neighbours and self-tuning weights
    when lifted; so they are not lifted (lift_height_ 0), unless one row
    has another norm."""
    from sklearn_mixedlp import MixedLabelPropagation, knn_graph

    V, _ = l2_normalize(np.random.default_rng(0).normal(size=(300, 6)))
    X = 5.0 * V
    cosine = knn_graph(X, 7, lift=0.0, knn_backend="exact")
    lifted_rows, height = lift_rows(X, None, height=2.0 * 5.0)
    assert lifted_rows.shape == (300, 7)
    lifted = knn_graph(lifted_rows, 7, lift=0.0, knn_backend="exact")
    np.testing.assert_array_equal(cosine.indices, lifted.indices)
    np.testing.assert_allclose(cosine.data, lifted.data, rtol=1e-9)
    # float32 rows of one norm up to rounding: not lifted
    y = np.r_[0, 1, np.full(298, -1)]
    for rows in (X, V.astype(np.float32)):
        assert lift_rows(rows, 0.5)[1] == 0.0
        assert MixedLabelPropagation(lift=0.5).fit(rows, y).lift_height_ == 0.0
    other = X.copy()
    other[7] *= 1.01  # one row of another norm: lifted
    assert lift_rows(other, 0.5)[1] == pytest.approx(2.5, rel=1e-2)
    assert MixedLabelPropagation(lift=0.5).fit(other, y).lift_height_ > 0


def test_a_high_lift_tends_to_the_euclidean_graph():
    """As the lift grows the graph becomes the Euclidean self-tuning graph."""
    from sklearn.neighbors import NearestNeighbors

    from sklearn_mixedlp import knn_graph

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 5)) * rng.uniform(0.2, 3.0, size=(300, 1))
    dist, idx = NearestNeighbors(n_neighbors=8).fit(X).kneighbors(X)
    dist, idx = dist[:, 1:], idx[:, 1:]
    weights = np.exp(-4 * dist**2 / dist[:, -1:] ** 2)
    lifted = knn_graph(X, 7, lift=1e3, knn_backend="exact")
    for row in range(300):
        start, stop = lifted.indptr[row], lifted.indptr[row + 1]
        order = np.argsort(lifted.indices[start:stop])
        np.testing.assert_array_equal(lifted.indices[start:stop][order], np.sort(idx[row]))
        np.testing.assert_allclose(
            lifted.data[start:stop][order],
            weights[row][np.argsort(idx[row])],
            rtol=1e-3, atol=1e-6,
        )
    # the cosine graph of these rows is another graph
    assert (knn_graph(X, 7, lift=0.0, knn_backend="exact").indices != lifted.indices).any()


def test_a_lift_of_zero_rows_leaves_them_as_they_are():
    """Regression: with every training row zero the lift is 0, and predict
    once failed on a dimension mismatch (training rows lifted by a zero
    column, new rows not)."""
    from sklearn_mixedlp import MixedLabelPropagation

    X = np.zeros((30, 3))
    y = np.r_[0, 1, np.full(28, -1)]
    with pytest.warns(UserWarning):  # zero rows: isolated
        lifted = MixedLabelPropagation(lift=1.0, knn_backend="exact").fit(X, y)
        plain = MixedLabelPropagation(knn_backend="exact").fit(X, y)
    assert lifted.lift_height_ == 0.0
    new = np.ones((2, 3))
    np.testing.assert_array_equal(lifted.predict_proba(new), plain.predict_proba(new))


# scikit-learn's finiteness check sums the huge entries
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_lift_that_overflows_is_refused():
    from sklearn_mixedlp import MixedLabelPropagation

    X = np.full((20, 4), 3e38, dtype=np.float32)
    X[::2] *= -1
    X[::3] *= 0.5  # rows of several norms (rows of one norm are not lifted)
    y = np.r_[0, 1, np.full(18, -1)]
    with pytest.raises(ValueError, match="lift=1.0.*overflows float32"):
        MixedLabelPropagation(lift=1.0).fit(X, y)
    with pytest.raises(ValueError, match="lift"):
        MixedLabelPropagation(lift=-1.0).fit(X, y)
