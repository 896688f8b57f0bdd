"""The estimators against dense direct solves of the SPEC systems."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp._negatives import hard_negative_weights

from .conftest import requires_torch

SOLVERS = [{"solver": "scipy"}, pytest.param({"solver": "torch", "device": "cpu"}, marks=requires_torch)]


def problem(n=120, n_classes=3, n_labeled=12, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, 6)) * 2
    y = rng.integers(0, n_classes, size=n)
    X = centers[y] + rng.normal(size=(n, 6))
    y_train = np.full(n, -1)
    labeled = rng.choice(n, n_labeled, replace=False)
    y_train[labeled] = y[labeled]
    return X, y_train


def dense_system(est, y_train):
    """Dense ``L + U`` and ``U Y`` of eq. 16 from the fitted graph."""
    W = est.affinity_.toarray()
    labeled = y_train != -1
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    U = np.diag(est.mu * labeled)
    return np.diag(W.sum(axis=1)) - W, U, U @ Y


def distributions(G):
    P = np.clip(G, 0, None)
    mass = P.sum(axis=1, keepdims=True)
    return np.where(mass > 0, P / np.where(mass > 0, mass, 1), 1 / P.shape[1])


@pytest.mark.parametrize("params", SOLVERS)
def test_plain_lp_equals_dense_solve(params):
    X, y_train = problem()
    est = MixedLabelPropagation(n_neighbors=8, tol=1e-10, **params).fit(X, y_train)
    L, U, UY = dense_system(est, y_train)
    F = np.linalg.solve(L + U, UY)  # (LP)
    np.testing.assert_allclose(est.label_distributions_, distributions(F), atol=1e-7)
    np.testing.assert_array_equal(est.transduction_, est.classes_[F.argmax(axis=1)])
    assert est.dissimilarity_.nnz == 0
    # eq. 17: unlabeled rows are the weighted average of their neighbours
    W = est.affinity_.toarray()
    unl = y_train == -1
    np.testing.assert_allclose((W @ F)[unl] / W.sum(axis=1)[unl, None], F[unl], atol=1e-8)


@pytest.mark.parametrize("params", SOLVERS)
@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_mixed_lp_equals_dense_solve(params, beta):
    X, y_train = problem(seed=1)
    est = MixedLabelPropagation("mom", n_neighbors=8, beta=beta, tol=1e-10, **params)
    est.fit(X, y_train)
    L, U, UY = dense_system(est, y_train)
    Wdis = est.dissimilarity_.toarray()
    Q = np.diag(Wdis.sum(axis=1)) + Wdis
    G = np.linalg.solve(L + 2 * beta * Q + U, UY)  # (MLP)
    np.testing.assert_allclose(est.label_distributions_, distributions(G), atol=1e-7)


def test_mixed_lp_minimises_the_objective():
    """The solution of (MLP) is the minimiser of eq. 23 with eq. 24."""
    X, y_train = problem(n=60, seed=2)
    rng = np.random.default_rng(3)
    pairs = rng.integers(0, 60, size=(40, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    est = MixedLabelPropagation(n_neighbors=6, tol=1e-12).fit(X, y_train, negatives=pairs)
    L, U, UY = dense_system(est, y_train)
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    Wdis = est.dissimilarity_.toarray()

    def objective(G):
        dis = sum(
            Wdis[i, j] * (G[i] + G[j]) @ (G[i] + G[j])
            for i, j in zip(*np.nonzero(Wdis))
        )
        return (
            0.5 * np.trace(G.T @ L @ G)
            + 0.5 * np.trace((G - Y).T @ U @ (G - Y))
            + 0.5 * est.beta * dis
        )

    Qfull = np.diag(Wdis.sum(axis=1)) + Wdis
    G = np.linalg.solve(L + 2 * est.beta * Qfull + U, UY)
    best = objective(G)
    for _ in range(5):
        assert objective(G + 1e-3 * rng.normal(size=G.shape)) > best


def test_lpdr_equals_dense_solve():
    X, y_train = problem(seed=4)
    beta = 0.05
    est = MixedLabelPropagation(
        "mom", n_neighbors=8, beta=beta, dissimilarity_loss="lpdr", tol=1e-10, max_iter=5000
    ).fit(X, y_train)
    L, U, UY = dense_system(est, y_train)
    Wdis = est.dissimilarity_.toarray()
    Ldis = np.diag(Wdis.sum(axis=1)) - Wdis
    G = np.linalg.solve(L - 2 * beta * Ldis + U, UY)  # eq. 25's system
    np.testing.assert_allclose(est.label_distributions_, distributions(G), atol=1e-6)


@pytest.mark.parametrize("params", SOLVERS)
@pytest.mark.parametrize("mining", ["hard", "control"])
def test_hard_negative_lp_pipeline_equals_dense(params, mining):
    X, y_train = problem(seed=5)
    plain = MixedLabelPropagation(n_neighbors=8).fit(X, y_train)
    L, U, UY = dense_system(plain, y_train)
    F = np.linalg.solve(L + U, UY)
    # a temperature on the scale of D_ii F_i, so that the mined weights matter
    temperature = 5.0 / np.abs(np.diag(L)[:, None] * F).max()
    est = HardNegativeLP(mining, n_neighbors=8, temperature=temperature, tol=1e-11, **params)
    est.fit(X, y_train)
    W = est.affinity_
    if mining == "hard":
        expected = hard_negative_weights(W, F, temperature)
        np.testing.assert_allclose(est.dissimilarity_.toarray(), expected.toarray(), atol=1e-8)
    Wdis = est.dissimilarity_.toarray()
    assert Wdis.max() > 1e-3  # negatives are not all vanishing at this temperature
    Q = np.diag(Wdis.sum(axis=1)) + Wdis
    G = np.linalg.solve(L + 2 * est.beta * Q + U, UY)
    np.testing.assert_allclose(est.label_distributions_, distributions(G), atol=1e-7)


def test_confidence_is_entropy_weight():
    X, y_train = problem(seed=6)
    est = HardNegativeLP(n_neighbors=8).fit(X, y_train)
    P = est.label_distributions_
    H = -np.sum(np.where(P > 0, P * np.log(np.where(P > 0, P, 1)), 0), axis=1)
    np.testing.assert_allclose(est.confidence_, 1 - H / np.log(P.shape[1]), atol=1e-12)
    assert sp.issparse(est.affinity_) and sp.issparse(est.dissimilarity_)
