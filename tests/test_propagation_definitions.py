"""The estimators against dense direct solves of the propagation systems."""

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp._negatives import hard_negative_weights

from .conftest import ignore_relabeled, requires_torch

# tiny graphs in the paper's configuration: the soft fit relabels some rows
pytestmark = ignore_relabeled

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


LAPLACIANS = ["combinatorial", "normalized"]


def dense_system(est, y_train):
    """Dense base system ``(A, B)`` and row scale ``s`` of the label propagation:
    ``L + U``, ``U Y`` and 1 for the combinatorial Laplacian (eq. 16);
    ``(1 + mu) I - D^-1/2 W D^-1/2``, ``mu Y`` and ``D^-1/2`` for the
    normalised one (Zhou et al.)."""
    W = est.affinity_.toarray()
    labeled = y_train != -1
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    d = W.sum(axis=1)
    if est.laplacian == "combinatorial":
        U = np.diag(est.mu_ * labeled)
        return np.diag(d) - W + U, U @ Y, np.ones_like(d)
    s = 1 / np.sqrt(d)
    return (1 + est.mu_) * np.eye(len(d)) - s[:, None] * W * s[None, :], est.mu_ * Y, s


def dense_dissimilarity(est, Wdis, s, sign=1.0):
    """``2 beta Q`` (signless Laplacian; ``sign=-1``: ``Ldis``), scaled by
    ``D^-1/2`` on both sides for the normalised Laplacian."""
    Q = np.diag(Wdis.sum(axis=1)) + sign * Wdis
    return 2 * est.beta * s[:, None] * Q * s[None, :]


def distributions(G, est=None, y_train=None, prior=None):
    """Clip, class-mass normalise to ``prior`` (default: the labels'
    proportions) when ``est`` does, and normalise the rows."""
    P = np.clip(G, 0, None)
    if est is not None and est.class_mass_normalization:
        if prior is None:
            labeled = y_train[y_train != -1]
            prior = np.array([(labeled == c).mean() for c in est.classes_])
        P = P * prior / P.sum(axis=0)
    mass = P.sum(axis=1, keepdims=True)
    return np.where(mass > 0, P / np.where(mass > 0, mass, 1), 1 / P.shape[1])


@pytest.mark.parametrize("cmn", [False, True])
@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("params", SOLVERS)
def test_plain_lp_equals_dense_solve(params, laplacian, cmn):
    X, y_train = problem()
    est = MixedLabelPropagation(
        n_neighbors=8,
        laplacian=laplacian,
        class_mass_normalization=cmn,
        tol=1e-10,
        **params,
    ).fit(X, y_train)
    A, B, s = dense_system(est, y_train)
    F = np.linalg.solve(A, B)  # (LP), or Zhou's (I - alpha S) F = (1 - alpha) Y
    expected = distributions(F, est, y_train)
    np.testing.assert_allclose(est.label_distributions_, expected, atol=1e-7)
    np.testing.assert_array_equal(est.transduction_, est.classes_[expected.argmax(axis=1)])
    assert est.dissimilarity_.nnz == 0
    # eq. 17: unlabeled rows of D^-1/2 F are (a multiple of) the weighted
    # average of their neighbours' rows
    W = est.affinity_.toarray()
    unl = y_train == -1
    G = s[:, None] * F
    factor = 1.0 if laplacian == "combinatorial" else 1 / (1 + est.mu_)
    np.testing.assert_allclose(
        factor * (W @ G)[unl] / W.sum(axis=1)[unl, None], G[unl], atol=1e-8
    )


def test_class_mass_normalisation_matches_label_proportions():
    """Column masses of the normalised distributions follow the labeled
    class proportions more closely than without normalisation."""
    X, y_train = problem(n=200, n_labeled=30, seed=7)
    with_cmn = MixedLabelPropagation(n_neighbors=8, tol=1e-10).fit(X, y_train)
    plain = MixedLabelPropagation(
        n_neighbors=8, class_mass_normalization=False, tol=1e-10
    ).fit(X, y_train)
    A, B, _ = dense_system(plain, y_train)
    G = np.clip(np.linalg.solve(A, B), 0, None)
    labeled = y_train[y_train != -1]
    prior = np.array([(labeled == c).mean() for c in with_cmn.classes_])
    scaled = G * prior / G.sum(axis=0)
    np.testing.assert_allclose(scaled.sum(axis=0), prior)
    np.testing.assert_allclose(
        with_cmn.label_distributions_,
        scaled / scaled.sum(axis=1, keepdims=True),
        atol=1e-7,
    )
    assert not np.allclose(with_cmn.label_distributions_, plain.label_distributions_)


@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_class_prior_is_the_target_of_the_class_masses(laplacian):
    """With ``class_prior`` the columns are normalised to its masses (given
    as counts, in the order of ``classes_``): the dense definition."""
    X, y_train = problem(n=200, n_labeled=30, seed=7)
    est = MixedLabelPropagation(
        n_neighbors=8, laplacian=laplacian, class_prior=[5, 3, 2], tol=1e-10
    ).fit(X, y_train)
    prior = np.array([0.5, 0.3, 0.2])
    np.testing.assert_allclose(est.class_prior_, prior)
    A, B, _ = dense_system(est, y_train)
    expected = distributions(np.linalg.solve(A, B), est, y_train, prior=prior)
    np.testing.assert_allclose(est.label_distributions_, expected, atol=1e-7)
    np.testing.assert_array_equal(est.transduction_, est.classes_[expected.argmax(axis=1)])
    default = MixedLabelPropagation(n_neighbors=8, laplacian=laplacian, tol=1e-10)
    default.fit(X, y_train)
    labeled = y_train[y_train != -1]
    np.testing.assert_allclose(
        default.class_prior_, [np.mean(labeled == c) for c in default.classes_]
    )
    assert not np.allclose(est.label_distributions_, default.label_distributions_)


@pytest.mark.parametrize("Est", [MixedLabelPropagation, HardNegativeLP])
def test_class_prior_of_the_labels_changes_nothing(Est):
    """The labels' own proportions as ``class_prior`` give the default fit
    (the mining's views are class-mass normalised the same way)."""
    X, y_train = problem(n=200, n_labeled=30, seed=3)
    default = Est(n_neighbors=8, tol=1e-10).fit(X, y_train)
    given = Est(n_neighbors=8, tol=1e-10, class_prior=default.class_prior_ * 7).fit(
        X, y_train
    )
    np.testing.assert_allclose(given.label_distributions_, default.label_distributions_,
                               atol=1e-9)
    np.testing.assert_array_equal(given.transduction_, default.transduction_)


@pytest.mark.parametrize("Est", [MixedLabelPropagation, HardNegativeLP])
def test_a_larger_class_prior_predicts_the_class_more_often(Est):
    """Raising one class's target mass moves rows into it. For plain
    propagation the solution does not depend on the prior, only its column
    scales do, so no row ever leaves the class; the mining's cut depends on
    the normalised views, so only the overall direction is pinned there."""
    X, y_train = problem(n=300, n_labeled=15, seed=5)
    counts = []
    for weight in (0.5, 1.0, 2.0):
        est = Est(n_neighbors=8, class_prior=[weight, 1.0, 1.0]).fit(X, y_train)
        counts.append(np.sum(est.transduction_ == est.classes_[0]))
    if Est is MixedLabelPropagation:
        assert counts[0] < counts[1] < counts[2]
    assert counts[0] < counts[2]


@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("params", SOLVERS)
@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_mixed_lp_equals_dense_solve(params, beta, laplacian):
    X, y_train = problem(seed=1)
    est = MixedLabelPropagation(
        "mom", n_neighbors=8, beta=beta, laplacian=laplacian, tol=1e-10, **params
    )
    est.fit(X, y_train)
    A, B, s = dense_system(est, y_train)
    Wdis = est.dissimilarity_.toarray()
    G = np.linalg.solve(A + dense_dissimilarity(est, Wdis, s), B)  # (MLP)
    np.testing.assert_allclose(
        est.label_distributions_, distributions(G, est, y_train), atol=1e-6
    )


def test_mixed_lp_minimises_the_objective():
    """The solution of (MLP) is the minimiser of eq. 23 with eq. 24."""
    X, y_train = problem(n=60, seed=2)
    rng = np.random.default_rng(3)
    pairs = rng.integers(0, 60, size=(40, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    est = MixedLabelPropagation.paper(n_neighbors=6, tol=1e-12)
    est.fit(X, y_train, negatives=pairs)
    A, B, _ = dense_system(est, y_train)
    W = est.affinity_.toarray()
    L = np.diag(W.sum(axis=1)) - W
    U = np.diag(est.mu_ * (y_train != -1))
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
    G = np.linalg.solve(L + 2 * est.beta * Qfull + U, U @ Y)
    np.testing.assert_allclose(
        est.label_distributions_, distributions(G), atol=1e-7
    )
    best = objective(G)
    for _ in range(5):
        assert objective(G + 1e-3 * rng.normal(size=G.shape)) > best


@pytest.mark.parametrize("laplacian", LAPLACIANS)
def test_lpdr_equals_dense_solve(laplacian):
    X, y_train = problem(seed=4)
    beta = 0.05 if laplacian == "combinatorial" else 0.002
    est = MixedLabelPropagation.paper(
        "mom",
        n_neighbors=8,
        beta=beta,
        laplacian=laplacian,
        dissimilarity_loss="lpdr",
        tol=1e-10,
        max_iter=5000,
    ).fit(X, y_train)
    A, B, s = dense_system(est, y_train)
    Wdis = est.dissimilarity_.toarray()
    G = np.linalg.solve(A - dense_dissimilarity(est, Wdis, s, sign=-1.0), B)  # eq. 25
    np.testing.assert_allclose(est.label_distributions_, distributions(G), atol=1e-6)


@pytest.mark.parametrize("laplacian", LAPLACIANS)
@pytest.mark.parametrize("params", SOLVERS)
@pytest.mark.parametrize("mining", ["hard", "control"])
def test_hard_negative_lp_pipeline_equals_dense(params, mining, laplacian):
    """The paper's pipeline: LP, eqs. 18-22 on the LP scores, mixed LP."""
    X, y_train = problem(seed=5)
    plain = MixedLabelPropagation.paper(n_neighbors=8, laplacian=laplacian)
    plain.fit(X, y_train)
    A, B, s = dense_system(plain, y_train)
    F = np.linalg.solve(A, B)
    scores = s[:, None] * F
    degree = plain.affinity_.sum(axis=1).A1
    # a temperature on the scale of D_ii F_i, so that the mined weights matter
    temperature = 5.0 / np.abs(degree[:, None] * scores).max()
    est = HardNegativeLP.paper(
        mining,
        n_neighbors=8,
        laplacian=laplacian,
        temperature=temperature,
        tol=1e-11,
        **params,
    ).fit(X, y_train)
    W = est.affinity_
    if mining == "hard":
        expected = hard_negative_weights(W, scores, temperature)
        np.testing.assert_allclose(
            est.dissimilarity_.toarray(), expected.toarray(), atol=1e-8
        )
    Wdis = est.dissimilarity_.toarray()
    assert Wdis.max() > 1e-3  # negatives are not all vanishing at this temperature
    G = np.linalg.solve(A + dense_dissimilarity(est, Wdis, s), B)
    np.testing.assert_allclose(est.label_distributions_, distributions(G), atol=1e-7)


@pytest.mark.parametrize("params", SOLVERS)
def test_scale_free_hard_negatives_equal_definition(params):
    """The default (scale-free) mining, edge by edge from its definition."""
    X, y_train = problem(seed=8)
    est = HardNegativeLP(
        "hard", temperature=16.0, beta=0.3, dissimilarity_loss="mixed",
        n_neighbors=8, tol=1e-11, **params,
    ).fit(X, y_train)
    plain = MixedLabelPropagation(n_neighbors=8, class_mass_normalization=False)
    plain.set_params(tol=1e-11).fit(X, y_train)
    A, B, s = dense_system(plain, y_train)
    F = s[:, None] * np.linalg.solve(A, B)
    W = est.affinity_.toarray()
    d = W.sum(axis=1)
    spread = F.std(axis=1).mean()
    C = F.shape[1]

    def z(i, j):
        h = (d[i] * F[i] - W[i, j] * F[j]) / (d[i] - W[i, j])  # eq. 19
        h = est.temperature * (h - h.mean()) / spread
        e = np.exp(h - h.max())
        return e / e.sum()

    def omega(p):
        return 1 + np.sum(p * np.log(np.clip(p, 1e-300, None))) / np.log(C)

    expected = np.zeros_like(W)
    for i, j in zip(*np.nonzero(np.triu(W, 1))):
        zi, zj = z(i, j), z(j, i)
        expected[i, j] = expected[j, i] = W[i, j] * omega(zi) * omega(zj) * (1 - zi @ zj)
    np.testing.assert_allclose(est.dissimilarity_.toarray(), expected, atol=1e-9)
    assert expected.max() > 1e-3
    G = np.linalg.solve(A + dense_dissimilarity(est, expected, s), B)
    np.testing.assert_allclose(
        est.label_distributions_, distributions(G, est, y_train), atol=1e-7
    )


def test_confidence_is_entropy_weight():
    X, y_train = problem(seed=6)
    est = HardNegativeLP(n_neighbors=8).fit(X, y_train)
    P = est.label_distributions_
    H = -np.sum(np.where(P > 0, P * np.log(np.where(P > 0, P, 1)), 0), axis=1)
    np.testing.assert_allclose(est.confidence_, 1 - H / np.log(P.shape[1]), atol=1e-12)
    assert sp.issparse(est.affinity_) and sp.issparse(est.dissimilarity_)
