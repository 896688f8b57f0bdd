"""Dissimilarity weights (eqs. 18-22 and MoM) against direct loops over the
definitions."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp._graph import NeighborIndex, knn_affinity, l2_normalize, symmetrize
from sklearn_mixedlp._graph import mutual_knn_graph
from sklearn_mixedlp._negatives import (
    check_negatives,
    control_negative_weights,
    hard_negative_weights,
    mom_negative_weights,
)


def small_graph(n=60, k=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    V, _ = l2_normalize(X)
    sim, idx = NeighborIndex("exact").fit(V, k).self_kneighbors(V, k)
    return symmetrize(knn_affinity(sim, idx, 3.0, n)), idx


def omega(z):
    z = np.asarray(z, dtype=float)
    H = -sum(p * np.log(p) for p in z if p > 0)
    return 1 - H / np.log(len(z))


def softmax(s):
    e = np.exp(s - s.max())
    return e / e.sum()


@pytest.mark.parametrize("temperature", [0.5, 4.0, 50.0])
def test_hard_negative_weights_equal_direct_loop(temperature):
    W, _ = small_graph()
    F = np.random.default_rng(1).uniform(-0.1, 1.0, size=(W.shape[0], 4))
    Wdis = hard_negative_weights(W, F, temperature).toarray()
    Wd = W.toarray()
    D = Wd.sum(axis=1)
    expected = np.zeros_like(Wd)
    for i in range(len(Wd)):
        for j in range(len(Wd)):
            if Wd[i, j] > 0:
                zij = softmax(temperature * (D[i] * F[i] - Wd[i, j] * F[j]))  # eq. 20
                zji = softmax(temperature * (D[j] * F[j] - Wd[i, j] * F[i]))
                expected[i, j] = omega(zij) * omega(zji) * (1 - zij @ zji)  # eq. 22
    np.testing.assert_allclose(Wdis, expected, atol=1e-12)
    assert np.all(Wdis[Wd == 0] == 0)  # same sparsity pattern as W


def test_hard_negative_weights_chunked(monkeypatch):
    import sklearn_mixedlp._negatives as negatives

    W, _ = small_graph(seed=3)
    F = np.random.default_rng(2).uniform(size=(W.shape[0], 3))
    full = hard_negative_weights(W, F, 4.0)
    monkeypatch.setattr(negatives, "_CHUNK_ENTRIES", 7)
    chunked = hard_negative_weights(W, F, 4.0)
    np.testing.assert_allclose(full.toarray(), chunked.toarray())


def test_control_weights_equal_direct_loop():
    W, _ = small_graph(seed=4)
    F = np.random.default_rng(5).uniform(-0.2, 1.0, size=(W.shape[0], 3))
    F[0] = -1.0  # an all-negative row becomes uniform
    Wdis = control_negative_weights(W, F).toarray()
    P = np.clip(F, 0, None)
    P = np.array([p / p.sum() if p.sum() > 0 else np.full(3, 1 / 3) for p in P])
    Wd = W.toarray()
    expected = np.zeros_like(Wd)
    for i, j in zip(*np.nonzero(Wd)):
        expected[i, j] = omega(P[i]) * omega(P[j]) * (1 - P[i] @ P[j])
    np.testing.assert_allclose(Wdis, expected, atol=1e-12)


def test_mom_weights_are_knn_but_not_mutual():
    W, idx = small_graph(seed=6)
    n = W.shape[0]
    Wdis = mom_negative_weights(mutual_knn_graph(idx, n)).toarray()
    neighbours = [set(row) for row in idx]
    for i in range(n):
        for j in range(n):
            one_way = (j in neighbours[i]) != (i in neighbours[j])
            assert Wdis[i, j] == float(one_way)


def test_single_class_has_no_negatives():
    W, _ = small_graph()
    F = np.ones((W.shape[0], 1))
    assert hard_negative_weights(W, F, 4.0).nnz == 0
    assert control_negative_weights(W, F).nnz == 0


def test_user_negatives_pairs_and_matrix():
    pairs = [(0, 3), (2, 1, 0.5), (0, 3)]
    with pytest.raises(ValueError, match=r"\(i, j\) or"):
        check_negatives([[0, 1, 2, 3]], 5)
    Wdis = check_negatives(np.array([(0, 3, 1.0), (2, 1, 0.5), (0, 3, 1.0)]), 5).toarray()
    expected = np.zeros((5, 5))
    expected[0, 3] = expected[3, 0] = 2.0  # listed twice: summed
    expected[1, 2] = expected[2, 1] = 0.5
    np.testing.assert_allclose(Wdis, expected)
    S = sp.csr_matrix(([2.0, 0.5], ([0, 2], [3, 1])), shape=(5, 5))
    np.testing.assert_allclose(check_negatives(S, 5).toarray(), expected)
    np.testing.assert_allclose(check_negatives(np.array(pairs[:2], dtype=object)[:1].tolist(), 5).toarray()[0, 3], 1.0)


@pytest.mark.parametrize(
    "negatives, match",
    [
        (sp.csr_matrix((4, 4)), r"\(5, 5\) matrix"),
        ([(0, 5)], r"lie in \[0, 4\]"),
        ([(0, -1)], r"lie in \[0, 4\]"),
        ([(1, 1)], "self pair"),
        ([(0, 1, -2.0)], "non-negative"),
        ([(0, 1, np.nan)], "NaN"),
        ([(0.5, 1)], "integers"),
    ],
)
def test_user_negatives_errors(negatives, match):
    with pytest.raises(ValueError, match=match):
        check_negatives(negatives, 5)
