"""The two-view mining, the cut loss and the label-rate options against
their definitions on small data (dense direct solves, edge-by-edge loops)."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, _kernels, _label_propagation
from sklearn_mixedlp._graph import LiftedRows
from sklearn_mixedlp._negatives import (
    agreement_weights,
    discriminant_features,
    discriminant_unit_rows,
    linear_discriminant_proba,
    unit_rows,
)

from .conftest import requires_torch, touching_clusters
from .test_propagation_definitions import distributions, problem

SOLVERS = [
    {"solver": "scipy"},
    pytest.param({"solver": "torch", "device": "cpu"}, marks=requires_torch),
]


def unit(P):
    n = np.linalg.norm(P, axis=1, keepdims=True)
    return np.divide(P, n, out=np.zeros_like(P), where=n > 0)


def dense_agreement(W, P, Q, temperature, view_weight, combination="product"):
    """``w_ij (1 - exp(-e_ij / temperature))`` edge by edge, with ``d``,
    ``q`` one minus the cosines of the rows and ``e = (1 + view_weight)
    sqrt(d q)`` (``'product'``) or ``d + view_weight q`` (``'sum'``); ``e =
    d`` without ``Q``."""
    Pn, Qn = unit(P), unit(Q) if Q is not None else None
    expected = np.zeros_like(W)
    for i, j in zip(*np.nonzero(W)):
        e = d = max(1 - Pn[i] @ Pn[j], 0.0)
        if Qn is not None:
            q = max(1 - Qn[i] @ Qn[j], 0.0)
            e = (1 + view_weight) * np.sqrt(d * q) if combination == "product" else d + view_weight * q
        expected[i, j] = W[i, j] * (1 - np.exp(-e / temperature))
    return expected


def normalized_system(W, mu, labeled_onehot):
    d = W.sum(axis=1)
    s = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    A = (1 + mu) * np.eye(len(d)) - s[:, None] * W * s[None, :]
    return A, mu * labeled_onehot


# -- the pieces ---------------------------------------------------------------
@pytest.mark.parametrize("combination", ["product", "sum"])
@pytest.mark.parametrize("with_view", [False, True])
def test_agreement_weights_equal_definition(with_view, combination):
    rng = np.random.default_rng(0)
    n, C = 40, 4
    M = sp.random(n, n, density=0.15, random_state=1)
    W = (M + M.T).toarray()
    np.fill_diagonal(W, 0)
    P = rng.dirichlet(np.ones(C) * 0.3, size=n)
    P[3] = 0  # a row without information
    Q = rng.dirichlet(np.ones(C), size=n) if with_view else None
    got = agreement_weights(
        sp.csr_matrix(W), P, Q, temperature=0.3, view_weight=0.7,
        view_combination=combination,
    )
    expected = dense_agreement(W, P, Q, 0.3, 0.7, combination)
    # the rows are compared in float32: cosines to ~1e-7 (through the
    # square root of the product, whose slope is unbounded near 0: ~1e-5)
    atol = (1e-5 if combination == "product" and with_view else 1e-6) * W.max()
    np.testing.assert_allclose(got.toarray(), expected, atol=atol)
    assert abs(got - got.T).max() == 0
    assert np.all(got.toarray() <= W)  # never more than the edge's affinity
    # identical rows in both views: no negative at all
    same = agreement_weights(sp.csr_matrix(W), np.ones((n, C)), np.ones((n, C)))
    assert same.nnz == 0


def test_linear_discriminant_equals_sklearn_without_shrinkage():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 5)) * 2
    labels = rng.integers(0, 3, size=200)
    V = centers[labels] + rng.normal(size=(200, 5))
    got = linear_discriminant_proba(V, labels, np.ones(200), 3, shrinkage=0.0)
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(V, labels)
    np.testing.assert_allclose(got, lda.predict_proba(V), atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_discriminant_unit_rows_are_those_of_the_probabilities(dtype):
    """The mining's float32 unit rows of the discriminant equal the unit
    rows of its float64 probabilities, with a class that has no weight
    (its column stays 0) and for a degenerate (constant) fit."""
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=300)
    # overlapping classes far from the origin: logits of large magnitude
    # whose two terms nearly cancel
    V = (rng.normal(size=(300, 6)) + 0.7 * labels[:, None] + 50).astype(dtype)
    weights = rng.uniform(0.1, 1, 300) * (labels != 2)
    got = discriminant_unit_rows(V, labels, weights, 4)
    expected = unit_rows(linear_discriminant_proba(V, labels, weights, 4))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert np.all(got[:, 2] == 0)
    # equal rows: the constant fit, the class masses 1/5, 2/5, 2/5
    same = np.ones((5, 3), dtype=dtype)
    got = discriminant_unit_rows(same, np.array([0, 1, 1, 2, 2]), np.ones(5), 3)
    np.testing.assert_allclose(got, np.tile([1 / 3, 2 / 3, 2 / 3], (5, 1)), atol=1e-7)


def test_linear_discriminant_weights_are_row_counts():
    """An integer weight counts as that many copies of the row."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=60)
    V = rng.normal(size=(60, 3)) + labels[:, None]
    counts = rng.integers(1, 4, size=60)
    weighted = linear_discriminant_proba(V, labels, counts, 4, shrinkage=0.2)
    copies = np.repeat(np.arange(60), counts)
    repeated = linear_discriminant_proba(
        V[copies], labels[copies], np.ones(copies.size), 4, shrinkage=0.2
    )
    np.testing.assert_allclose(weighted, repeated[np.searchsorted(copies, np.arange(60))], atol=1e-10)


def test_linear_discriminant_class_without_weight_and_constant_rows():
    labels = np.array([0, 0, 1, 1, 2, 2])
    V = np.array([[0.0, 1], [0.1, 1], [1, 0], [1, 0.1], [5, 5], [5, 5]])
    Q = linear_discriminant_proba(V, labels, [1, 1, 1, 1, 0, 0], 3)
    assert np.all(Q[:, 2] == 0)
    np.testing.assert_allclose(Q.sum(axis=1), 1)
    assert np.all(Q[:2, 0] > 0.5) and np.all(Q[2:4, 1] > 0.5)
    # all rows equal: no direction separates them, the class masses decide
    flat = linear_discriminant_proba(np.ones((4, 2)), np.array([0, 0, 0, 1]), np.ones(4), 2)
    np.testing.assert_allclose(flat, [[0.75, 0.25]] * 4)


def test_discriminant_features_project_wide_or_sparse_rows():
    rng = np.random.default_rng(3)
    narrow = rng.normal(size=(50, 8))
    np.testing.assert_array_equal(discriminant_features(narrow, 3), narrow)
    np.testing.assert_array_equal(
        discriminant_features(sp.csr_matrix(narrow), 3), narrow
    )
    wide = rng.normal(size=(300, 200))
    V = discriminant_features(wide, 3, random_state=0)
    assert V.shape == (300, 64)
    V100 = discriminant_features(wide, 50, random_state=0)
    assert V100.shape == (300, 100)  # 2 * n_classes directions
    # the projection keeps the Gram structure of the leading directions
    Vs = discriminant_features(sp.csr_matrix(wide), 3, random_state=0)
    np.testing.assert_allclose(np.abs(Vs), np.abs(V), atol=1e-6)


# -- the estimators against dense solves -----------------------------------------
@pytest.mark.parametrize("beta", [0.5, 1.0, 3.0])
def test_cut_loss_equals_propagation_on_the_cut_graph(beta):
    """'cut': the normalised propagation on max(W - beta Wdis, 0), with the
    cut graph's own degrees; a negative off the edges removes nothing."""
    X, y_train = problem(seed=4)
    plain = MixedLabelPropagation(n_neighbors=8, knn_backend="exact").fit(X, y_train)
    W = plain.affinity_.toarray()
    rng = np.random.default_rng(0)
    i, j = np.nonzero(np.triu(W, 1))
    pick = rng.choice(i.size, 40, replace=False)
    pairs = np.c_[i[pick], j[pick], rng.uniform(0.0, 2.0, 40) * W[i[pick], j[pick]]]
    pairs = np.vstack([pairs, [[0, 1, 5.0]] if W[0, 1] == 0 else [[0, 2, 0.0]]])
    est = MixedLabelPropagation(
        n_neighbors=8, knn_backend="exact", dissimilarity_loss="cut", beta=beta, tol=1e-11
    ).fit(X, y_train, negatives=pairs)
    Wdis = est.dissimilarity_.toarray()
    cut = np.where(W > 0, np.clip(W - beta * Wdis, 0, None), 0)
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    A, B = normalized_system(cut, est.mu_, Y)
    G = np.linalg.solve(A + 1e-300 * np.eye(len(A)), B)
    expected = distributions(G, est, y_train)
    np.testing.assert_allclose(est.label_distributions_, expected, atol=1e-7)


def test_rows_the_cut_separates_from_every_label_are_uniform():
    """A strong cut (beta=50) between two touching clusters, one labeled
    class in each: the rows that the cut graph max(W - beta Wdis, 0) leaves
    without a labeled row in their part get the uniform distribution and
    confidence 0 (an edge cut to 0 is no edge), not the noise of a solve."""
    from scipy.sparse.csgraph import connected_components

    X, y = touching_clusters()
    est = HardNegativeLP(n_neighbors=6, n_rounds=2, beta=50.0).fit(X, y)
    W = est.affinity_
    cut = sp.csr_matrix(W - 50.0 * est.dissimilarity_.multiply(W > 0))
    cut.data = np.clip(cut.data, 0.0, None)
    cut.eliminate_zeros()
    assert connected_components(W)[0] == 1  # the graph itself is connected
    _, part = connected_components(cut, directed=False)
    orphan = ~np.isin(part, part[y != -1])
    assert orphan.sum() > 10
    np.testing.assert_array_equal(est.confidence_[orphan], 0.0)
    np.testing.assert_allclose(est.label_distributions_[orphan], 0.5)


@pytest.mark.parametrize("params", SOLVERS)
@pytest.mark.parametrize("mining", ["two_view", "agreement"])
def test_two_view_pipeline_equals_dense(mining, params, monkeypatch):
    """Three rounds: solve, distributions P, linear view Q, negatives, solve
    on the cut graph, ..., each step by its definition (the rounds' solves
    at the estimator's tol)."""
    monkeypatch.setattr(_label_propagation, "_MINING_TOL", 0.0)
    X, y_train = problem(n=150, seed=6)
    est = HardNegativeLP(
        mining, n_neighbors=8, knn_backend="exact", tol=1e-11, mu="auto", **params
    ).fit(X, y_train)
    assert est.mining_ == mining
    W = est.affinity_.toarray()
    labeled = y_train != -1
    mu = labeled.mean()
    assert est.mu_ == pytest.approx(mu)
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    y_index = np.searchsorted(est.classes_, np.where(labeled, y_train, est.classes_[0]))
    # the linear view sees the rows lifted by the fitted constant
    X_lifted = np.hstack([X, np.full((len(X), 1), est.lift_height_)])
    assert est.lift_height_ > 0
    V = X_lifted / np.linalg.norm(X_lifted, axis=1, keepdims=True)
    A, B = normalized_system(W, mu, Y)
    F = np.linalg.solve(A, B)
    for round_ in range(est.n_rounds):
        P = distributions(F, est, y_train)
        Q = None
        if mining == "two_view":
            plogp = np.where(P > 0, P * np.log(np.where(P > 0, P, 1)), 0)
            omega = 1 + plogp.sum(axis=1) / np.log(P.shape[1])
            labels = np.where(labeled, y_index, P.argmax(axis=1))
            weights = np.where(labeled, 1.0, np.clip(omega, 0, 1))
            Q = linear_discriminant_proba(V, labels, weights, P.shape[1])
        Wdis = dense_agreement(W, P, Q, 0.25, 0.5)
        A, B = normalized_system(W - Wdis, mu, Y)
        F = np.linalg.solve(A, B)
    np.testing.assert_allclose(est.dissimilarity_.toarray(), Wdis, atol=1e-6)
    np.testing.assert_allclose(
        est.label_distributions_, distributions(F, est, y_train), atol=1e-6
    )


def test_mining_rounds_stop_early_and_the_final_solve_meets_tol():
    """The rounds' solves stop at a relative residual of _MINING_TOL: fewer
    iterations, nearly the same negatives; the final solve on the cut graph
    still meets tol (a dense solve on the fitted dissimilarity_)."""
    X, y_train = problem(n=300, seed=3)
    params = dict(n_neighbors=8, lift=0.0, knn_backend="exact", tol=1e-10)
    default = HardNegativeLP(**params).fit(X, y_train)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_label_propagation, "_MINING_TOL", 0.0)
        exact = HardNegativeLP(**params).fit(X, y_train)
    assert _label_propagation._MINING_TOL >= 1e-4
    assert default.n_iter_ < 0.8 * exact.n_iter_
    Wd, We = default.dissimilarity_.toarray(), exact.dissimilarity_.toarray()
    assert 0 < np.abs(Wd - We).max() < 0.02 * We.max()
    np.testing.assert_array_equal(default.transduction_, exact.transduction_)
    W = default.affinity_.toarray()
    Y = (y_train[:, None] == default.classes_[None, :]).astype(float)
    A, B = normalized_system(W - Wd, default.mu_, Y)
    expected = distributions(np.linalg.solve(A, B), default, y_train)
    np.testing.assert_allclose(default.label_distributions_, expected, atol=1e-7)


def test_no_negatives_after_a_round_gives_plain_propagation(monkeypatch):
    """A round's cut system overwrites the base system in place; when the
    last round mines nothing, the fit is plain label propagation, solved
    again on the base system (not on the earlier round's cut graph)."""
    X, y_train = problem(n=300, seed=3)
    params = dict(n_neighbors=8, lift=0.0, knn_backend="exact", tol=1e-10)
    plain = MixedLabelPropagation(**params).fit(X, y_train)
    real = _label_propagation.agreement_data
    calls = []

    def first_round_only(*args, **kwargs):
        values = real(*args, **kwargs)
        calls.append(np.count_nonzero(values))
        return values if len(calls) == 1 else np.zeros_like(values)

    monkeypatch.setattr(_label_propagation, "agreement_data", first_round_only)
    est = HardNegativeLP(n_rounds=2, **params).fit(X, y_train)
    assert len(calls) == 2 and calls[0] > 0  # the first round did cut edges
    assert est.dissimilarity_.nnz == 0
    np.testing.assert_allclose(
        est.label_distributions_, plain.label_distributions_, atol=1e-8
    )


def test_nothing_mined_in_the_first_round_gives_plain_propagation(monkeypatch):
    """The first propagation of the rounds runs on a float32 system (it
    only ranks edges); when no round mines anything, the plain propagation
    is refined on the float64 system, as plain label propagation."""
    X, y_train = problem(n=300, seed=4)
    params = dict(n_neighbors=8, knn_backend="exact", tol=1e-10)
    plain = MixedLabelPropagation(**params).fit(X, y_train)
    monkeypatch.setattr(
        _label_propagation, "agreement_data",
        lambda W, *args, **kwargs: np.zeros(W.nnz),
    )
    # one round: nothing but the first propagation ran on the base system
    est = HardNegativeLP(n_rounds=1, **params).fit(X, y_train)
    assert est.dissimilarity_.nnz == 0
    np.testing.assert_allclose(
        est.label_distributions_, plain.label_distributions_, atol=1e-9
    )


@pytest.mark.parametrize("tol, final", [(1e-4, np.float32), (1e-6, np.float64)])
def test_loose_solves_use_float32_systems_and_the_final_one_float64(monkeypatch, tol, final):
    """The solves that only feed the mining (tol 1e-3) get float32 systems
    and return float32 solutions; so does the final solve at the default
    tol (1e-4, which float32 meets alone: no float64 copy of the system or
    the warm start), while below it the final system is float64."""
    X, y_train = problem(n=300, seed=5)
    calls = []
    real = _label_propagation.block_cg

    def recording(A, B, **kwargs):
        result = real(A, B, **kwargs)
        x0 = kwargs.get("x0")
        calls.append((A.dtype, kwargs["tol"], result.X.dtype, None if x0 is None else x0.dtype))
        return result

    monkeypatch.setattr(_label_propagation, "block_cg", recording)
    HardNegativeLP(n_neighbors=8, knn_backend="exact", tol=tol).fit(X, y_train)
    assert len(calls) == 3  # two rounds' solves, then the final one
    assert calls[0] == (np.float32, 1e-3, np.float32, None)
    assert calls[1] == (np.float32, 1e-3, np.float32, np.float32)
    assert calls[-1] == (final, tol, final, final)


def record_systems(monkeypatch):
    """Turn the compiled kernels on for small problems and record the
    system of every solve of the estimators (the returned list)."""
    monkeypatch.setattr(_kernels, "MIN_WORK", 0)
    calls = []
    real = _label_propagation.block_cg

    def recording(A, B, **kwargs):
        calls.append(A)
        return real(A, B, **kwargs)

    monkeypatch.setattr(_label_propagation, "block_cg", recording)
    return calls


@pytest.mark.skipif(not _kernels.installed(), reason="numba not installed")
@pytest.mark.parametrize("mined", [True, False], ids=["cut-final", "plain-final"])
def test_final_solve_reads_its_float64_residuals_from_the_graph(monkeypatch, mined):
    """With the compiled kernels, the final solve gets its system as float32
    values plus the graph (no float64 copy): the cut system after mining,
    or the plain one when the first round mines nothing; the fit is the
    one a float64 system gives."""
    from sklearn_mixedlp._solvers import _GraphSystem

    calls = record_systems(monkeypatch)
    X, y_train = problem(n=300, seed=5)
    if not mined:
        monkeypatch.setattr(
            _label_propagation, "agreement_data",
            lambda W, *args, **kwargs: np.zeros(W.nnz, dtype=np.float32),
        )
    params = dict(n_neighbors=8, knn_backend="exact", tol=1e-10)
    est = HardNegativeLP(**params).fit(X, y_train)
    final = calls[-1]
    assert isinstance(final, _GraphSystem) and final.A32.dtype == np.float32
    assert (final.share.size > 0) == mined  # cut by the shares, or plain
    assert all(not isinstance(A, _GraphSystem) for A in calls[:-1])
    monkeypatch.setattr(_label_propagation._BaseMixedLP, "_graph_residuals", lambda self: False)
    calls.clear()
    reference = HardNegativeLP(**params).fit(X, y_train)
    assert calls[-1].dtype == np.float64
    np.testing.assert_allclose(
        est.label_distributions_, reference.label_distributions_, atol=1e-8
    )
    np.testing.assert_array_equal(est.transduction_, reference.transduction_)


@pytest.mark.skipif(not _kernels.installed(), reason="numba not installed")
def test_plain_propagation_solves_on_the_graph_system(monkeypatch):
    """Plain label propagation's one solve is its final one: with the
    compiled kernels it gets the float32 system plus the graph, and fits as
    the float64 system does; with negatives it keeps the float64 system
    (the mixed loss adds a second matrix to it)."""
    from sklearn_mixedlp._solvers import _GraphSystem

    calls = record_systems(monkeypatch)
    X, y_train = problem(n=300, seed=6)
    params = dict(n_neighbors=8, knn_backend="exact", tol=1e-10)
    est = MixedLabelPropagation(**params).fit(X, y_train)
    assert len(calls) == 1 and isinstance(calls[0], _GraphSystem)
    calls.clear()
    MixedLabelPropagation("mom", **params).fit(X, y_train)
    assert not any(isinstance(A, _GraphSystem) for A in calls)
    monkeypatch.setattr(_label_propagation._BaseMixedLP, "_graph_residuals", lambda self: False)
    calls.clear()
    reference = MixedLabelPropagation(**params).fit(X, y_train)
    assert calls[0].dtype == np.float64
    np.testing.assert_allclose(
        est.label_distributions_, reference.label_distributions_, atol=1e-8
    )


def test_mu_auto_is_the_labeled_fraction_or_the_papers_value():
    X, y_train = problem(seed=2)
    auto = MixedLabelPropagation(n_neighbors=8, mu="auto").fit(X, y_train)
    fraction = np.mean(y_train != -1)
    assert fraction > 1 / 99
    explicit = MixedLabelPropagation(n_neighbors=8, mu=fraction).fit(X, y_train)
    assert auto.mu_ == fraction and explicit.mu_ == fraction
    np.testing.assert_array_equal(auto.label_distributions_, explicit.label_distributions_)
    # fewer than one label per 99 rows: the paper's 1/99
    X, y_train = problem(n=400, n_labeled=3, seed=2)
    assert MixedLabelPropagation(n_neighbors=8).fit(X, y_train).mu_ == 1 / 99


# on this small problem the combinatorial fit relabels one labeled row; the
# test is about the solve, not the label fit
@pytest.mark.filterwarnings("ignore:.*labeled rows get a class other than:UserWarning")
@pytest.mark.parametrize("laplacian", ["normalized", "combinatorial"])
def test_poisson_source_equals_dense_solve(laplacian):
    """Sources mu (Y - mean of Y over the labeled rows) on the labeled rows."""
    X, y_train = problem(seed=3)
    est = MixedLabelPropagation(
        n_neighbors=8, source="poisson", laplacian=laplacian,
        class_mass_normalization=False, tol=1e-11,
    ).fit(X, y_train)
    W = est.affinity_.toarray()
    labeled = y_train != -1
    Y = (y_train[:, None] == est.classes_[None, :]).astype(float)
    S = np.zeros_like(Y)
    S[labeled] = Y[labeled] - Y[labeled].mean(axis=0)
    if laplacian == "normalized":
        A, B = normalized_system(W, est.mu_, S)
    else:
        A = np.diag(W.sum(axis=1)) - W + np.diag(est.mu_ * labeled)
        B = est.mu_ * S
    expected = distributions(np.linalg.solve(A, B))
    np.testing.assert_allclose(est.label_distributions_, expected, atol=1e-7)
    # the sources of each class sum to zero
    np.testing.assert_allclose(S.sum(axis=0), 0, atol=1e-12)


def test_precomputed_graph_mines_from_the_propagation_alone():
    X, y_train = problem(seed=5)
    exact = HardNegativeLP(n_neighbors=8, knn_backend="exact").fit(X, y_train)
    assert exact.mining_ == "two_view"
    pre = HardNegativeLP(knn_backend="precomputed").fit(
        sp.triu(exact.affinity_, format="csr"), y_train
    )
    assert pre.mining_ == "agreement"
    agreement = HardNegativeLP("agreement", knn_backend="precomputed").fit(
        sp.triu(exact.affinity_, format="csr"), y_train
    )
    np.testing.assert_array_equal(pre.label_distributions_, agreement.label_distributions_)


def test_paper_keeps_the_edge_removal_mining():
    est = HardNegativeLP.paper()
    assert est.mining == "hard" and est.dissimilarity_loss == "mixed"
    assert HardNegativeLP.paper("control").mining == "control"
    assert HardNegativeLP.paper(mining="control").mining == "control"


@pytest.mark.parametrize("estimator", [HardNegativeLP, MixedLabelPropagation])
@pytest.mark.parametrize("compiled", [True, False])
def test_fit_in_column_passes_equals_one_pass(monkeypatch, capsys, estimator, compiled):
    """A working memory of one column per solve pass: every solve runs in
    passes (the final one writes into its float32 warm start) and the fit
    equals the one-pass fit, up to the float32 rounding of the solution."""
    from sklearn_mixedlp import _solvers

    if compiled:
        monkeypatch.setattr(_kernels, "MIN_WORK", 0)
    X, y_train = problem(n=300, seed=5)
    params = dict(n_neighbors=8, knn_backend="exact")
    reference = estimator(**params).fit(X, y_train)
    seen = []
    real = _label_propagation.block_cg

    def recording(A, B, **kwargs):
        result = real(A, B, **kwargs)
        seen.append((kwargs.get("x0") is not None, result.X.dtype))
        return result

    monkeypatch.setattr(_label_propagation, "block_cg", recording)
    # a working memory of one column: 300 rows x 20 bytes
    monkeypatch.setattr(_solvers, "default_working_memory", lambda: 300 * 20 / 2**20)
    capsys.readouterr()
    est = estimator(verbose=2, **params).fit(X, y_train)
    solves = [line for line in capsys.readouterr().out.splitlines() if "[block_cg]" in line]
    assert solves and all("passes of 1 columns" in line for line in solves)
    if estimator is HardNegativeLP:
        # the final solve warm-started from the float32 mining solution
        assert seen[-1] == (True, np.float32)
    np.testing.assert_allclose(
        est.label_distributions_, reference.label_distributions_, atol=1e-6
    )
    np.testing.assert_array_equal(est.transduction_, reference.transduction_)


def test_unit_feature_rows_are_the_normalised_rows_in_order():
    """The mining's linear view reads the narrow feature rows through
    UnitFeatureRows: the rows of l2_normalize(X)[order], normalised as they
    are read (no copy of X), and the discriminant fitted on them equals the
    one fitted on the normalised copy."""
    from sklearn_mixedlp._graph import l2_normalize_quiet as l2_normalize
    from sklearn_mixedlp._negatives import UnitFeatureRows, discriminant_unit_rows

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 12)).astype(np.float32)
    X[7] = 0.0  # a zero row stays zero
    X[8] *= 1e30  # a row whose squares overflow in float32
    order = rng.permutation(X.shape[0])
    V = l2_normalize(X)[0][order]
    U = UnitFeatureRows(X, order)
    assert U.shape == X.shape and U.dtype == np.float32 and U.X is X
    np.testing.assert_array_equal(U[10:300], V[10:300])
    np.testing.assert_array_equal(U[::7], V[::7])
    np.testing.assert_array_equal(U[np.array([4, 0, 4999])], V[[4, 0, 4999]])
    labels = rng.integers(0, 3, X.shape[0])
    weights = rng.uniform(0, 1, X.shape[0])
    np.testing.assert_array_equal(
        discriminant_unit_rows(U, labels, weights, 3),
        discriminant_unit_rows(V, labels, weights, 3),
    )
    np.testing.assert_array_equal(UnitFeatureRows(X)[:50], l2_normalize(X)[0][:50])
    assert UnitFeatureRows(np.ones((3, 2), dtype=np.int64)).dtype == np.float64


def test_two_view_mining_reads_the_features_in_place(monkeypatch):
    """A fit with narrow rows gives the discriminant a view on X itself, in
    the order of the solves; wide rows are projected first."""
    from sklearn_mixedlp import _negatives

    seen = []
    real = _label_propagation.discriminant_unit_rows

    def spy(V, *args, **kwargs):
        seen.append(V)
        return real(V, *args, **kwargs)

    monkeypatch.setattr(_label_propagation, "discriminant_unit_rows", spy)
    X, y_train = problem(n=300, seed=5)
    HardNegativeLP(n_neighbors=8, lift=0.0, knn_backend="exact").fit(X, y_train)
    assert seen and all(isinstance(V, _negatives.UnitFeatureRows) for V in seen)
    assert all(V.X is X or np.shares_memory(V.X, X) for V in seen)
    seen.clear()
    # lifted (the default): the rows are lifted as they are read
    HardNegativeLP(n_neighbors=8, knn_backend="exact").fit(X, y_train)
    assert seen and all(isinstance(V, _negatives.UnitFeatureRows) for V in seen)
    assert all(isinstance(V.X, LiftedRows) and V.X.X is X for V in seen)
    seen.clear()
    # regression: 64 features, 65 columns once lifted, were projected (the
    # lifted coordinate is not a feature): four times the fit on the digits
    width = np.hstack([X] * (64 // X.shape[1] + 1))[:, :64]
    HardNegativeLP(n_neighbors=8, knn_backend="exact").fit(width, y_train)
    assert seen and all(isinstance(V, _negatives.UnitFeatureRows) for V in seen)
    assert all(V.shape == (300, 65) for V in seen)
    seen.clear()
    wide = np.hstack([X] * 40)  # more than max(64, 2 C) features
    HardNegativeLP(n_neighbors=8, knn_backend="exact").fit(wide, y_train)
    assert seen and all(isinstance(V, np.ndarray) for V in seen)


def test_discriminant_is_the_same_on_one_thread_and_on_all(monkeypatch):
    """The linear view's fit and probabilities run by row blocks on all
    cores, their sums taken in block order: the result does not depend on
    the thread count, bit for bit."""
    from sklearn_mixedlp import _utils
    from sklearn_mixedlp._negatives import UnitFeatureRows, discriminant_unit_rows

    rng = np.random.default_rng(1)
    n = 5 * 2**14 + 123  # more blocks than run on the calling thread
    X = rng.normal(size=(n, 8)).astype(np.float32)
    V = UnitFeatureRows(X, rng.permutation(n))
    labels = rng.integers(0, 5, n)
    weights = rng.uniform(0, 1, n)
    monkeypatch.setattr(_utils, "available_cores", lambda: 2)
    threaded = discriminant_unit_rows(V, labels, weights, 5)
    monkeypatch.setattr(_utils, "available_cores", lambda: 1)
    np.testing.assert_array_equal(threaded, discriminant_unit_rows(V, labels, weights, 5))


@pytest.mark.parametrize("cmn", [True, False])
def test_mining_views_are_the_same_on_one_thread_and_on_all(monkeypatch, cmn):
    """The unit rows, arg-max and confidence the mining reads of a solution
    are computed by row chunks on all cores: equal, bit for bit, to one
    thread, and to the distributions' definition."""
    from types import SimpleNamespace

    from sklearn_mixedlp import _utils

    rng = np.random.default_rng(2)
    n, C = 1000, 4
    G = rng.normal(size=(n, C)) + 0.5
    G[:5] = -1.0  # rows without information: uniform over the present classes
    y_index = rng.integers(0, C - 1, n)  # the last class has no label
    labeled = rng.uniform(size=n) < 0.2
    orphan = np.zeros(n, dtype=bool)
    orphan[10:20] = True
    prior = np.bincount(y_index[labeled], minlength=C) / labeled.sum()
    mining = SimpleNamespace(
        orphan=orphan, y_index=y_index, labeled=labeled,
        est=SimpleNamespace(class_mass_normalization=cmn, class_prior_=prior if cmn else None),
    )
    views = _label_propagation._Mining.views
    monkeypatch.setattr(_utils, "available_cores", lambda: 2)
    threaded = views(mining, G, chunk_rows=64)
    monkeypatch.setattr(_utils, "available_cores", lambda: 1)
    single = views(mining, G, chunk_rows=64)
    np.testing.assert_array_equal(threaded[0].scale, single[0].scale)
    np.testing.assert_array_equal(threaded[0][:], single[0][:])
    np.testing.assert_array_equal(threaded[1], single[1])
    np.testing.assert_array_equal(threaded[2], single[2])
    # the definition: clip, zero the orphans, class-mass normalise, L1
    P = np.clip(G, 0.0, None)
    P[orphan] = 0.0
    if cmn:
        P = P * np.divide(prior, P.sum(axis=0), out=np.zeros(C), where=P.sum(axis=0) > 0)
    mass = P.sum(axis=1, keepdims=True)
    present = np.bincount(y_index[labeled], minlength=C) > 0
    P = np.where(mass > 0, P / np.where(mass > 0, mass, 1.0), present / present.sum())
    np.testing.assert_array_equal(threaded[1], P.argmax(axis=1))
    unit = P / np.linalg.norm(P, axis=1, keepdims=True)
    np.testing.assert_allclose(threaded[0][:], unit, atol=1e-12)


def test_unlabeled_components_match_the_undirected_definition():
    """The components of a symmetric graph found as strongly connected
    components are its undirected components: the rows of parts without a
    label, on a graph of many small parts (isolated rows included)."""
    from scipy.sparse.csgraph import connected_components

    from sklearn_mixedlp._label_propagation import _BaseMixedLP

    rng = np.random.default_rng(5)
    M = sp.random(300, 300, density=0.004, random_state=6, format="csr")
    W = sp.csr_matrix(M + M.T)
    labeled = rng.random(300) < 0.2
    n_parts, part = connected_components(W, directed=False)
    assert 20 < n_parts < 300
    expected = ~np.isin(part, part[labeled])
    assert 0 < expected.sum() < 300 - labeled.sum()
    np.testing.assert_array_equal(_BaseMixedLP._unlabeled_components(W, labeled), expected)
