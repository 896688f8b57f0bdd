"""Exact torch neighbour search against a brute-force numpy definition."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

torch = pytest.importorskip("torch")

from sklearn_mixedlp._torch_knn import torch_kneighbors

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device"
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # The tests are small: keep torch from spreading over every core.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def unit_rows(n, d, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)


def brute_force(V, Q, k, exclude_self=False):
    """Top ``k`` of ``V @ Q.T`` per query; equal values go to the lower
    index (stable argsort)."""
    S = (V.astype(np.float64) @ Q.astype(np.float64).T).T
    if exclude_self:
        np.fill_diagonal(S, -np.inf)
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(S, idx, axis=1), idx


def assert_same_neighbours(sim, idx, ref_sim, ref_idx, rtol):
    assert sim.shape == idx.shape == ref_idx.shape
    for row, (got, want) in enumerate(zip(idx, ref_idx)):
        assert set(got) == set(want), f"row {row}: {sorted(got)} != {sorted(want)}"
    assert_allclose(sim, ref_sim, rtol=rtol, atol=rtol)


def tie_rows(n_distinct, n_copies, seed):
    """Exact duplicates of unit rows whose inner products are exact in
    floating point (entries +-0.5, four non-zeros in 8 dimensions)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((n_distinct, 8))
    for row in base:
        row[rng.choice(8, size=4, replace=False)] = rng.choice([-0.5, 0.5], size=4)
    return np.repeat(base, n_copies, axis=0)[rng.permutation(n_distinct * n_copies)]


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("block_rows", [None, 1, 7, 40, 1000])
def test_matches_brute_force(dtype, rtol, exclude_self, block_rows):
    V = unit_rows(40, 6, seed=0, dtype=dtype)
    Q = V if exclude_self else unit_rows(23, 6, seed=1, dtype=dtype)
    k = 5

    sim, idx = torch_kneighbors(
        V, Q, k, exclude_self=exclude_self, block_rows=block_rows
    )

    assert sim.dtype == dtype
    assert idx.dtype == np.int64
    assert sim.shape == idx.shape == (Q.shape[0], k)
    ref_sim, ref_idx = brute_force(V, Q, k, exclude_self=exclude_self)
    assert_same_neighbours(sim, idx, ref_sim, ref_idx, rtol)
    assert np.all(np.diff(sim, axis=1) <= 0)
    # Each similarity belongs to its index.
    pairs = np.einsum("qd,qkd->qk", Q.astype(np.float64), V.astype(np.float64)[idx])
    assert_allclose(sim, pairs, rtol=rtol, atol=rtol)
    if exclude_self:
        assert not np.any(idx == np.arange(V.shape[0])[:, None])


def test_self_search_with_a_copy_of_the_rows():
    V = unit_rows(30, 5, seed=2)
    ref_sim, ref_idx = brute_force(V, V, 4, exclude_self=True)
    sim, idx = torch_kneighbors(V, V.copy(), 4, exclude_self=True, block_rows=8)
    assert_same_neighbours(sim, idx, ref_sim, ref_idx, 1e-12)


def test_k_equal_to_the_number_of_rows():
    V = unit_rows(9, 4, seed=3)
    Q = unit_rows(5, 4, seed=4)
    sim, idx = torch_kneighbors(V, Q, 9, block_rows=2)
    assert_array_equal(np.sort(idx, axis=1), np.tile(np.arange(9), (5, 1)))
    ref_sim, _ = brute_force(V, Q, 9)
    assert_allclose(sim, ref_sim, rtol=1e-12)

    sim, idx = torch_kneighbors(V, V, 8, exclude_self=True)
    for row, neighbours in enumerate(idx):
        assert sorted(neighbours) == [j for j in range(9) if j != row]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("exclude_self", [False, True])
@pytest.mark.parametrize("block_rows", [None, 1, 5])
def test_duplicates_give_distinct_lowest_index_neighbours(
    dtype, exclude_self, block_rows
):
    # 4 distinct rows, 6 copies each: every row ties with 5 or 6 others,
    # more than k + 1, so the self index can fall out of the k + 1.
    V = tie_rows(4, 6, seed=5).astype(dtype)
    Q = V if exclude_self else tie_rows(3, 2, seed=6).astype(dtype)
    k = 8

    sim, idx = torch_kneighbors(
        V, Q, k, exclude_self=exclude_self, block_rows=block_rows
    )

    for row in idx:
        assert len(set(row)) == k
    if exclude_self:
        assert not np.any(idx == np.arange(V.shape[0])[:, None])
    # The inner products are exact, so ties are exact and the lowest
    # indices win, as in a stable argsort.
    ref_sim, ref_idx = brute_force(V, Q, k, exclude_self=exclude_self)
    assert_array_equal(idx, ref_idx)
    assert_array_equal(sim, ref_sim.astype(dtype))


def test_all_rows_identical():
    V = np.tile(np.array([[0.6, 0.8]]), (7, 1))
    sim, idx = torch_kneighbors(V, V, 3, exclude_self=True, block_rows=3)
    expected = np.array([[j for j in range(7) if j != r][:3] for r in range(7)])
    assert_array_equal(idx, expected)
    assert_allclose(sim, 1.0)


def test_results_do_not_depend_on_the_block_size():
    V = unit_rows(60, 8, seed=7, dtype=np.float32)
    Q = unit_rows(25, 8, seed=8, dtype=np.float32)
    sim_a, idx_a = torch_kneighbors(V, Q, 6, block_rows=1)
    sim_b, idx_b = torch_kneighbors(V, Q, 6, block_rows=11)
    sim_c, idx_c = torch_kneighbors(V, Q, 6)
    assert_array_equal(idx_a, idx_b)
    assert_array_equal(idx_a, idx_c)
    assert_allclose(sim_a, sim_b, rtol=1e-6)
    assert_allclose(sim_a, sim_c, rtol=1e-6)


def test_compute_dtype_keeps_the_input_dtype():
    V = unit_rows(30, 6, seed=9)
    Q = unit_rows(10, 6, seed=10)
    sim, idx = torch_kneighbors(V, Q, 4, dtype="float32")
    assert sim.dtype == np.float64
    ref_sim, ref_idx = brute_force(V, Q, 4)
    assert_same_neighbours(sim, idx, ref_sim, ref_idx, 1e-5)

    sim, _ = torch_kneighbors(V, Q, 4, dtype=torch.float64)
    assert_allclose(sim, ref_sim, rtol=1e-12)


def test_non_contiguous_and_read_only_inputs():
    V = np.asfortranarray(unit_rows(20, 5, seed=11))
    Q = unit_rows(12, 5, seed=12)[::2]
    V.flags.writeable = False
    sim, idx = torch_kneighbors(V, Q, 3)
    ref_sim, ref_idx = brute_force(V, Q, 3)
    assert_same_neighbours(sim, idx, ref_sim, ref_idx, 1e-12)


def test_no_queries():
    V = unit_rows(10, 3, seed=13)
    sim, idx = torch_kneighbors(V, V[:0], 2)
    assert sim.shape == idx.shape == (0, 2)
    assert idx.dtype == np.int64


@pytest.mark.parametrize(
    "k, exclude_self, match",
    [
        (0, False, "k=0 .*n_index = 10"),
        (11, False, "k=11 .*n_index = 10"),
        (10, True, "k=10 .*n_index - 1 = 9"),
        (2.0, False, "k=2.0"),
        (True, False, "k=True"),
    ],
)
def test_k_out_of_range(k, exclude_self, match):
    V = unit_rows(10, 3, seed=14)
    with pytest.raises(ValueError, match=match):
        torch_kneighbors(V, V, k, exclude_self=exclude_self)


def test_invalid_inputs():
    V = unit_rows(10, 3, seed=15)
    with pytest.raises(ValueError, match="4 features .* 3"):
        torch_kneighbors(V, unit_rows(5, 4, seed=16), 2)
    with pytest.raises(ValueError, match="exclude_self"):
        torch_kneighbors(V, V[:5], 2, exclude_self=True)
    with pytest.raises(ValueError, match="block_rows=0"):
        torch_kneighbors(V, V, 2, block_rows=0)
    with pytest.raises(ValueError, match="2-d"):
        torch_kneighbors(V, V[0], 2)
    with pytest.raises(ValueError, match="dtype"):
        torch_kneighbors(V, V, 2, dtype="int32")


@requires_cuda
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_cuda_matches_cpu(dtype, rtol, exclude_self):
    V = unit_rows(500, 32, seed=17, dtype=dtype)
    Q = V if exclude_self else unit_rows(130, 32, seed=18, dtype=dtype)
    kwargs = {"exclude_self": exclude_self, "block_rows": 64}
    sim_cpu, idx_cpu = torch_kneighbors(V, Q, 10, device="cpu", **kwargs)
    sim_gpu, idx_gpu = torch_kneighbors(V, Q, 10, device="cuda", **kwargs)
    assert sim_gpu.dtype == dtype
    assert idx_gpu.dtype == np.int64
    assert_same_neighbours(sim_gpu, idx_gpu, sim_cpu, idx_cpu, rtol)

    # Exact ties resolve the same way on both devices.
    T = tie_rows(5, 9, seed=19).astype(dtype)
    cpu = torch_kneighbors(T, T, 12, device="cpu", exclude_self=True, block_rows=7)
    gpu = torch_kneighbors(T, T, 12, device="cuda", exclude_self=True, block_rows=7)
    assert_array_equal(gpu[1], cpu[1])
    assert_array_equal(gpu[0], cpu[0])
