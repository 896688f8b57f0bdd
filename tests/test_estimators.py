"""Estimator-level tests of MixedLabelPropagation and HardNegativeLP.

Input validation, disconnected components, scikit-learn integration
(clone, pickle, Pipeline, GridSearchCV, sparse input, string labels), the
transductive / inductive prediction rule (nearest training rows), the precomputed
backend, verbosity, convergence warnings and user-supplied negatives.
"""

import importlib.util
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp._graph import auto_neighbors
from sklearn_mixedlp._utils import gpu_device_nodes

from .conftest import ignore_relabeled, ignore_unreached, mask_per_class

# The shared 300-digit fixture (5 labels per class): the soft fit relabels
# one labeled row by design.
pytestmark = ignore_relabeled


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def _has_cuda():
    if not _has_module("torch"):
        return False
    import torch

    return torch.cuda.is_available()


requires_faiss = pytest.mark.skipif(
    not _has_module("faiss"), reason="faiss not installed"
)
requires_pynndescent = pytest.mark.skipif(
    not _has_module("pynndescent"), reason="pynndescent not installed"
)
requires_no_cuda = pytest.mark.skipif(_has_cuda(), reason="a CUDA device is available")
requires_cuda = pytest.mark.skipif(not _has_cuda(), reason="no CUDA device")

ESTIMATORS = [MixedLabelPropagation, HardNegativeLP]


# -- data ----------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def small_digits(digits):
    """300 digits, 5 labels per class, and 60 held-out digits."""
    X, y = digits
    X_train, y_true = X[:300], y[:300]
    return X_train, y_true, mask_per_class(y_true, 5), X[1000:1060]


def assert_finite_outputs(est):
    for name in ("label_distributions_", "confidence_"):
        values = getattr(est, name)
        assert np.all(np.isfinite(values)), f"{name} has NaN/inf"
    assert np.all(np.isfinite(est.affinity_.data))
    assert np.all(np.isfinite(est.dissimilarity_.data))
    # float32 features give float32 distributions
    atol = 1e-12 if est.label_distributions_.dtype == np.float64 else 1e-6
    np.testing.assert_allclose(est.label_distributions_.sum(axis=1), 1.0, atol=atol)
    assert np.all(est.label_distributions_ >= 0)
    assert np.all((est.confidence_ >= 0) & (est.confidence_ <= 1))
    assert np.all(np.isin(est.transduction_, est.classes_))


def kernel_weights(cos, kernel, gamma):
    """Affinities of one row's neighbours from their cosine similarities
    (sorted by decreasing similarity): eq. 15, or the self-tuning Gaussian
    ``exp(-4 d^2 / d_k^2)`` with ``d^2 = 2 - 2 cos``."""
    if kernel == "power":
        return np.clip(cos, 0, None) ** gamma
    d2 = 2 - 2 * cos
    return np.exp(-4 * d2 / d2[..., -1:])


def knn_cosine_graph(X, k, gamma, kernel="power"):
    """Directed kNN graph by hand: row j holds cos(v_j, v_i)^gamma (or the
    self-tuning weight) for the k nearest neighbours i of v_j (self
    excluded), rows L2-normalised."""
    V = X / np.linalg.norm(X, axis=1, keepdims=True)
    nn = NearestNeighbors(n_neighbors=k).fit(V)
    _, idx = nn.kneighbors()  # no query: each row's own index is excluded
    cos = np.einsum("nd,nkd->nk", V, V[idx])
    data = kernel_weights(cos, kernel, gamma)
    indptr = np.arange(0, idx.size + 1, k)
    return sp.csr_matrix((data.ravel(), idx.ravel(), indptr), shape=(len(X), len(X)))


# -- 1. bad input ---------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_rejected_at_fit_and_predict(small_digits, bad):
    X, _, y, X_new = small_digits
    match = "NaN" if np.isnan(bad) else "infinity"
    X_bad = X.copy()
    X_bad[7, 3] = bad
    with pytest.raises(ValueError, match=match):
        MixedLabelPropagation(n_neighbors=5).fit(X_bad, y)
    est = MixedLabelPropagation(n_neighbors=5).fit(X, y)
    X_new_bad = X_new.copy()
    X_new_bad[2, 10] = bad
    with pytest.raises(ValueError, match=match):
        est.predict(X_new_bad)
    with pytest.raises(ValueError, match=match):
        est.predict_proba(X_new_bad)


@ignore_unreached
@pytest.mark.parametrize(
    "Est, kwargs",
    [
        (MixedLabelPropagation, {"knn_backend": "exact"}),
        (MixedLabelPropagation, {"knn_backend": "exact", "negatives": "mom"}),
        (HardNegativeLP, {"knn_backend": "exact"}),
        (HardNegativeLP, {"knn_backend": "exact", "mining": "control"}),
        pytest.param(
            MixedLabelPropagation, {"knn_backend": "faiss"}, marks=requires_faiss
        ),
        pytest.param(HardNegativeLP, {"knn_backend": "faiss"}, marks=requires_faiss),
        pytest.param(
            HardNegativeLP,
            {"knn_backend": "pynndescent", "random_state": 0},
            marks=requires_pynndescent,
        ),
    ],
    ids=["lp", "mom", "hard", "control", "lp-faiss", "hard-faiss", "hard-pynndescent"],
)
def test_zero_rows_warn_and_come_out_uniform(small_digits, Est, kwargs):
    X, y_true, y, _ = small_digits
    X = X.copy()
    y = y.copy()
    zero_unlabeled = [int(r) for r in np.flatnonzero(y == -1)[[2, 15]]]
    X[zero_unlabeled] = 0.0
    # a labeled zero row keeps its label
    labeled_zero = int(np.flatnonzero(y != -1)[0])
    X[labeled_zero] = 0.0
    shown = ", ".join(map(str, sorted(zero_unlabeled + [labeled_zero])))
    # on the rows' directions (with a lift a zero row is a point like any
    # other: the pole of the lifted sphere)
    with pytest.warns(
        UserWarning, match=rf"3 row\(s\) of X have zero norm.*\(rows {shown}\)"
    ):
        est = Est(n_neighbors=8, lift=0.0, **kwargs).fit(X, y)
    assert_finite_outputs(est)
    n_classes = est.classes_.size
    np.testing.assert_allclose(
        est.label_distributions_[zero_unlabeled], 1.0 / n_classes
    )
    np.testing.assert_array_equal(est.confidence_[zero_unlabeled], 0.0)
    # zero rows are isolated: no edge in the affinity graph
    for r in zero_unlabeled + [labeled_zero]:
        assert est.affinity_[r].nnz == 0
        assert est.affinity_[:, r].nnz == 0
    assert est.transduction_[labeled_zero] == y[labeled_zero]
    # the other rows are still propagated sensibly (MoM is a poor baseline)
    others = np.setdiff1d(np.flatnonzero(y == -1), zero_unlabeled)
    min_accuracy = 0.3 if kwargs.get("negatives") == "mom" else 0.8
    assert np.mean(est.transduction_[others] == y_true[others]) > min_accuracy
    # predicting the training rows gives the transduction (the zero rows are
    # identical inputs, so only the unlabeled ones are compared)
    rows = np.setdiff1d(np.arange(X.shape[0]), [labeled_zero])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(est.predict(X[rows]), est.transduction_[rows])


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_predict_on_new_zero_row_is_uniform(small_digits, Est):
    X, _, y, X_new = small_digits
    # on the rows' directions (lifted, a zero row is a point like another)
    est = Est(n_neighbors=8, lift=0.0, knn_backend="exact").fit(X, y)
    X_pred = np.vstack([X_new[:5], np.zeros((1, X.shape[1]))])
    with pytest.warns(UserWarning, match=r"zero norm.*rows 5\)"):
        proba = est.predict_proba(X_pred)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba[-1], 1.0 / est.classes_.size)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:5], est.predict_proba(X_new[:5]))


def test_basic_input_validation(small_digits):
    X, _, y, X_new = small_digits
    for Est in ESTIMATORS:
        est = Est(n_neighbors=5)
        with pytest.raises(ValueError, match="inconsistent numbers of samples"):
            est.fit(X, y[:-1])
        with pytest.raises(ValueError, match="2D array"):
            est.fit(X[:, 0], y)
        with pytest.raises(ValueError, match="duplicated"):
            Est(n_neighbors=5, classes=[0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9]).fit(X, y)
        with pytest.raises(NotFittedError):
            Est().predict(X_new)
        with pytest.raises(ValueError, match="n_neighbors"):
            Est(n_neighbors=0).fit(X, y)
        with pytest.raises(ValueError, match="gamma"):
            Est(gamma=-1.0).fit(X, y)
        with pytest.raises(ValueError, match="minimum of 2"):
            Est().fit(X[:1], y[:1])


def test_no_labeled_sample_raises(small_digits):
    X = small_digits[0]
    y = np.full(X.shape[0], -1)
    for Est in ESTIMATORS:
        with pytest.raises(ValueError, match="no labeled sample"):
            Est(n_neighbors=5).fit(X, y)


def test_labels_outside_classes_raise(small_digits):
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match=r"neither -1.*classes"):
        MixedLabelPropagation(n_neighbors=5, classes=[0, 1, 2, 3, 4, 5, 6, 7, 8]).fit(
            X, y
        )


def test_class_without_labeled_sample_warns_and_has_zero_probability(digits):
    X, y = digits
    keep = np.isin(y, [0, 1, 2])
    X, y_true = X[keep][:150], y[keep][:150]
    y = mask_per_class(y_true, 5)
    classes = [0, 1, 2, 9]
    for Est in ESTIMATORS:
        with pytest.warns(UserWarning, match=r"\[9\].*no labeled sample"):
            est = Est(n_neighbors=10, classes=classes).fit(X, y)
        np.testing.assert_array_equal(est.classes_, classes)
        assert est.label_distributions_.shape == (X.shape[0], 4)
        assert_finite_outputs(est)
        # the graph is connected here, so no row falls back to uniform
        assert np.all(est.confidence_ > 0)
        np.testing.assert_array_equal(est.label_distributions_[:, 3], 0.0)
        assert not np.any(est.transduction_ == 9)
        X_new = digits[0][digits[1] == 1][-5:]
        proba = est.predict_proba(X_new)
        np.testing.assert_array_equal(proba[:, 3], 0.0)
        assert not np.any(est.predict(X_new) == 9)


def test_class_without_labeled_sample_is_never_predicted_for_isolated_rows(digits):
    # The warning and the ``classes`` docstring promise that a class without
    # labeled sample keeps probability 0 and is never predicted; that must
    # also hold for rows that get no propagated label at all (isolated rows,
    # new rows without positive similarity), which fall back to "uniform".
    X, y = digits
    keep = np.isin(y, [1, 2, 3])
    X, y_true = X[keep][:120].copy(), y[keep][:120]
    y = mask_per_class(y_true, 4)
    isolated = int(np.flatnonzero(y == -1)[0])
    X[isolated] = 0.0
    classes = [0, 1, 2, 3]  # 0 has no labeled sample
    for Est in ESTIMATORS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # zero rows are isolated on the rows' directions (lift=0)
            est = Est(n_neighbors=8, lift=0.0, knn_backend="exact", classes=classes)
            est.fit(X, y)
            proba_new = est.predict_proba(np.zeros((1, X.shape[1])))
            pred_new = est.predict(np.zeros((1, X.shape[1])))
        assert_finite_outputs(est)
        assert est.confidence_[isolated] == 0.0
        np.testing.assert_array_equal(est.label_distributions_[:, 0], 0.0)
        assert 0 not in est.transduction_
        np.testing.assert_array_equal(proba_new[:, 0], 0.0)
        assert pred_new[0] != 0
        # the remaining classes share the isolated row's mass equally
        np.testing.assert_allclose(est.label_distributions_[isolated, 1:], 1.0 / 3)


def test_classes_order_is_respected(small_digits):
    X, _, y, X_new = small_digits
    order = [3, 9, 0, 1, 8, 2, 7, 4, 6, 5]
    ref = MixedLabelPropagation(n_neighbors=8, knn_backend="exact").fit(X, y)
    est = MixedLabelPropagation(n_neighbors=8, knn_backend="exact", classes=order).fit(
        X, y
    )
    np.testing.assert_array_equal(est.classes_, order)
    np.testing.assert_allclose(
        est.label_distributions_, ref.label_distributions_[:, order], atol=1e-10
    )
    np.testing.assert_array_equal(est.transduction_, ref.transduction_)
    np.testing.assert_array_equal(est.predict(X_new), ref.predict(X_new))


def test_n_neighbors_clipped_with_warning(small_digits):
    X, _, y, _ = small_digits
    X, y = X[:12], y[:12].copy()
    y[:3] = [0, 1, 2]
    for Est in ESTIMATORS:
        with pytest.warns(UserWarning, match=r"n_neighbors=50.*n_samples=12"):
            est = Est(n_neighbors=50, knn_backend="exact").fit(X, y)
        assert est.n_neighbors_ == 11
        assert_finite_outputs(est)


def test_n_neighbors_auto_is_the_root_of_the_rows_per_label(small_digits):
    """'auto' picks round(sqrt(n_samples / n_labeled)) within [10, 50] and
    fits exactly as that integer does; a set too small for 10 neighbours
    takes n_samples - 1 without the clipping warning."""
    X, y_true, _, _ = small_digits
    n = X.shape[0]
    # 300 rows: 1 label -> sqrt(300) = 17.3, 2 -> 12.2, 75 -> 2 (raised to 10)
    for n_labeled, expected in [(1, 17), (2, 12), (75, 10)]:
        y = np.full(n, -1)
        rows = np.random.default_rng(0).choice(n, n_labeled, replace=False)
        y[rows] = y_true[rows]
        for Est in ESTIMATORS:
            auto = Est(n_neighbors="auto", knn_backend="exact").fit(X, y)
            fixed = Est(n_neighbors=expected, knn_backend="exact").fit(X, y)
            assert auto.n_neighbors_ == expected
            np.testing.assert_array_equal(auto.transduction_, fixed.transduction_)
            np.testing.assert_allclose(
                auto.label_distributions_, fixed.label_distributions_, atol=1e-12
            )
    # the upper end: 100 classes of 1 label in a million rows
    assert auto_neighbors("auto", 10**6, 100) == 50
    assert auto_neighbors("auto", 10**6, 1000) == 32
    assert auto_neighbors(7, 10**6, 100) == 7
    X, y = X[:8], np.array([0, 1, 2, -1, -1, -1, -1, -1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est = MixedLabelPropagation(n_neighbors="auto", knn_backend="exact").fit(X, y)
    assert est.n_neighbors_ == 7


@pytest.mark.parametrize(
    "param, value",
    [
        ("knn_backend", "annoy"),
        ("solver", "cholmod"),
        ("dissimilarity_loss", "hinge"),
        ("device", "tpu"),
    ],
)
def test_unknown_option_names_raise_at_fit(small_digits, param, value):
    X, _, y, _ = small_digits
    for Est in ESTIMATORS:
        est = Est(n_neighbors=5, **{param: value})  # no validation in __init__
        with pytest.raises(ValueError, match=param):
            est.fit(X, y)


def test_unknown_mining_and_negatives_raise(small_digits):
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match="mining"):
        HardNegativeLP("edge", n_neighbors=5).fit(X, y)
    with pytest.raises(ValueError, match="negatives"):
        MixedLabelPropagation("oracle", n_neighbors=5).fit(X, y)


@requires_no_cuda
@pytest.mark.parametrize("solver", ["auto", "torch"])
def test_cuda_device_without_cuda_raises(small_digits, solver):
    pytest.importorskip("torch")
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match="CUDA"):
        MixedLabelPropagation(n_neighbors=5, solver=solver, device="cuda").fit(X, y)


def test_scipy_solver_with_cuda_device_raises(small_digits):
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match=r"solver='scipy'.*cuda"):
        MixedLabelPropagation(n_neighbors=5, solver="scipy", device="cuda").fit(X, y)


def test_precomputed_graph_validation(small_digits):
    X, _, y, _ = small_digits
    A = knn_cosine_graph(X, 5, 3.0)
    est = MixedLabelPropagation(knn_backend="precomputed")
    with pytest.raises(ValueError, match="square"):
        est.fit(A[:, :-1], y)
    A_neg = A.copy()
    A_neg.data[10] = -0.5
    with pytest.raises(ValueError, match="negative"):
        est.fit(A_neg, y)
    with pytest.raises(ValueError, match="negative"):
        est.fit(A_neg.toarray(), y)
    # at predict time, one column per training sample
    est.fit(A, y)
    with pytest.raises(ValueError, match="features|column"):
        est.predict(A[:5, :-3])


def test_predict_with_wrong_number_of_features_raises(small_digits):
    X, _, y, X_new = small_digits
    for Est in ESTIMATORS:
        est = Est(n_neighbors=5).fit(X, y)
        with pytest.raises(ValueError, match="features"):
            est.predict(X_new[:, :40])
        with pytest.raises(ValueError, match="features"):
            est.predict_proba(np.hstack([X_new, X_new]))


def test_continuous_y_raises(small_digits):
    X = small_digits[0]
    y = np.random.default_rng(0).random(X.shape[0])
    for Est in ESTIMATORS:
        with pytest.raises(ValueError, match="continuous"):
            Est(n_neighbors=5).fit(X, y)
    y[10:] = -1  # still continuous among the labeled rows
    with pytest.raises(ValueError, match="continuous"):
        MixedLabelPropagation(n_neighbors=5).fit(X, y)


@pytest.mark.parametrize(
    "negatives, match",
    [
        ([(0, 300)], r"\[0, 299\]"),
        ([(0, 5), (-1, 4)], r"\[0, 299\]"),
        ([(2, 2)], "self pair"),
        ([(0, 5, 1.0), (3, 7, -0.5)], "non-negative"),
        ([(0, 5, np.nan)], "NaN"),
        ([(0.5, 5)], "integers"),
        (np.zeros((3, 4)), "shape"),
        (sp.csr_matrix((299, 299)), r"\(300, 300\)"),
        (sp.csr_matrix((300, 301)), r"\(300, 300\)"),
        (sp.csr_matrix(([-1.0], ([0], [5])), shape=(300, 300)), "non-negative"),
        (sp.csr_matrix(([1.0], ([4], [4])), shape=(300, 300)), "self pair"),
    ],
)
def test_bad_user_negatives_raise(small_digits, negatives, match):
    X, _, y, _ = small_digits
    with pytest.raises(ValueError, match=match):
        MixedLabelPropagation(n_neighbors=5).fit(X, y, negatives=negatives)


def _blobs(n_samples=80, seed=0):
    X, y_true = make_blobs(
        n_samples=n_samples,
        centers=3,
        n_features=5,
        random_state=seed,
        center_box=(2, 8),
    )
    y = mask_per_class(y_true, 3, seed=seed)
    return X, y, y_true


@ignore_unreached
@pytest.mark.parametrize(
    "Est, kwargs",
    [
        (MixedLabelPropagation, {}),
        (MixedLabelPropagation, {"negatives": "mom"}),
        (
            MixedLabelPropagation,
            {"negatives": "mom", "dissimilarity_loss": "lpdr", "beta": 0.05},
        ),
        (MixedLabelPropagation, {"solver": "torch", "device": "cpu"}),
        (HardNegativeLP, {}),
        (HardNegativeLP, {"mining": "control"}),
        (HardNegativeLP, {"dissimilarity_loss": "lpdr", "beta": 0.05}),
        (HardNegativeLP, {"gamma": 1.0, "mu": 10.0, "beta": 5.0, "temperature": 50.0}),
        (HardNegativeLP, {"solver": "torch", "device": "cpu"}),
    ],
    ids=[
        "lp",
        "mom",
        "mom-lpdr",
        "lp-torch",
        "hard",
        "control",
        "hard-lpdr",
        "hard-extreme",
        "hard-torch",
    ],
)
@pytest.mark.parametrize(
    "case", ["blobs", "float32", "sparse", "single_class", "two_rows", "duplicates"]
)
def test_no_nan_in_outputs_for_valid_input(Est, kwargs, case):
    if kwargs.get("solver") == "torch":
        pytest.importorskip("torch")
    X, y, _ = _blobs()
    if case == "float32":
        X = X.astype(np.float32)
    elif case == "sparse":
        # about half the entries are zero, and a few rows entirely
        X = sp.csr_matrix(np.where(np.abs(X - 5) < 1.2, 0.0, X))
    elif case == "single_class":
        y = np.where(y == 1, 1, -1)
    elif case == "two_rows":
        X, y = X[:2], np.array([0, -1])
    elif case == "duplicates":
        X = np.vstack([X, X[:20]])
        y = np.concatenate([y, np.full(20, -1)])
    n_neighbors = 1 if case == "two_rows" else 6
    with warnings.catch_warnings():
        # LPDR may be indefinite: a ConvergenceWarning is allowed there
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "n_neighbors", UserWarning)
        warnings.filterwarnings("ignore", ".*zero norm", UserWarning)  # sparse case
        est = Est(n_neighbors=n_neighbors, knn_backend="exact", **kwargs).fit(X, y)
    assert_finite_outputs(est)
    X_shifted = X[:10] * 1.01 if sp.issparse(X) else X[:10] * 1.01 + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zero rows (sparse case)
        proba = est.predict_proba(X_shifted)
        assert np.all(np.isfinite(proba))
        # in the precision of the features
        assert proba.dtype == est.label_distributions_.dtype == X.dtype
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=4 * np.finfo(X.dtype).eps)
        # exact duplicates are identical inputs: compare the other rows only
        rows = np.arange(20, 80) if case == "duplicates" else np.arange(X.shape[0])
        if case == "sparse":  # so are the zero rows
            rows = np.flatnonzero(X.getnnz(axis=1) > 0)
        np.testing.assert_array_equal(est.predict(X[rows]), est.transduction_[rows])


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_torch_solver_matches_scipy(small_digits, Est, device):
    pytest.importorskip("torch")
    X, _, y, X_new = small_digits
    ref = Est(n_neighbors=8, knn_backend="exact", solver="scipy").fit(X, y)
    est = Est(n_neighbors=8, knn_backend="exact", solver="torch", device=device).fit(
        X, y
    )
    assert_finite_outputs(est)
    np.testing.assert_array_equal(est.transduction_, ref.transduction_)
    np.testing.assert_allclose(
        est.label_distributions_, ref.label_distributions_, atol=1e-5
    )
    np.testing.assert_allclose(
        est.predict_proba(X_new), ref.predict_proba(X_new), atol=1e-5
    )


# -- 2. components without labels ------------------------------------------
@ignore_unreached
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_unlabeled_component_is_uniform_and_labeled_one_unaffected(digits, Est):
    X, y = digits
    first = np.flatnonzero(np.isin(y, [0, 1, 2]))[:120]
    second = np.flatnonzero(np.isin(y, [5, 7]))[:80]
    A1 = knn_cosine_graph(X[first], 8, 3.0)
    A2 = knn_cosine_graph(X[second], 8, 3.0)
    A = sp.block_diag([A1, A2], format="csr")
    y1 = mask_per_class(y[first], 4)
    y_all = np.concatenate([y1, np.full(second.size, -1)])

    # a fixed mu: 'auto' follows the labeled fraction, which the second
    # component changes
    est = Est(knn_backend="precomputed", mu=0.02).fit(A, y_all)
    alone = Est(knn_backend="precomputed", mu=0.02).fit(A1, y1)
    n1 = first.size
    assert_finite_outputs(est)
    np.testing.assert_allclose(est.label_distributions_[n1:], 1.0 / 3)
    np.testing.assert_array_equal(est.confidence_[n1:], 0.0)
    np.testing.assert_allclose(
        est.label_distributions_[:n1], alone.label_distributions_, atol=1e-6
    )
    np.testing.assert_allclose(est.confidence_[:n1], alone.confidence_, atol=1e-6)
    np.testing.assert_array_equal(est.transduction_[:n1], alone.transduction_)
    assert np.all(est.confidence_[:n1] > 0)
    # no negative edge crosses between the components
    assert sp.triu(est.dissimilarity_[:n1, n1:]).nnz == 0


# -- 3. scikit-learn integration --------------------------------------------
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_clone_gives_unfitted_copy_with_same_params(small_digits, Est):
    X, _, y, _ = small_digits
    est = Est(
        n_neighbors=7, gamma=2.0, mu=0.1, knn_backend="exact", classes=list(range(10))
    )
    cloned = clone(est)
    assert cloned is not est
    assert cloned.get_params() == est.get_params()
    est.fit(X, y)
    cloned = clone(est)
    assert not hasattr(cloned, "classes_")
    assert not hasattr(cloned, "transduction_")
    assert cloned.get_params() == est.get_params()
    cloned.fit(X, y)
    np.testing.assert_array_equal(cloned.transduction_, est.transduction_)


@pytest.mark.parametrize(
    "Est, backend",
    [
        (MixedLabelPropagation, "exact"),
        (HardNegativeLP, "exact"),
        pytest.param(MixedLabelPropagation, "faiss", marks=requires_faiss),
        pytest.param(HardNegativeLP, "faiss", marks=requires_faiss),
        pytest.param(HardNegativeLP, "pynndescent", marks=requires_pynndescent),
    ],
)
def test_pickle_round_trip(small_digits, Est, backend):
    X, _, y, X_new = small_digits
    est = Est(n_neighbors=8, knn_backend=backend, random_state=0).fit(X, y)
    assert est.knn_backend_ == backend
    expected_proba = est.predict_proba(X_new)
    expected = est.predict(X_new)
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X_new), expected)
    np.testing.assert_array_equal(restored.predict_proba(X_new), expected_proba)
    np.testing.assert_array_equal(restored.predict(X), est.transduction_)
    np.testing.assert_array_equal(restored.transduction_, est.transduction_)
    np.testing.assert_array_equal(
        restored.label_distributions_, est.label_distributions_
    )
    assert restored.get_params() == est.get_params()


def test_pipeline_on_digits(digits):
    X, y_true = digits
    y = mask_per_class(y_true, 5)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("pca", PCA(n_components=20, random_state=0)),
            ("lp", HardNegativeLP(n_neighbors=10)),
        ]
    )
    pipe.fit(X, y)
    unlabeled = y == -1
    assert pipe.score(X[unlabeled], y_true[unlabeled]) > 0.7
    assert np.mean(pipe.predict(X[unlabeled]) == y_true[unlabeled]) > 0.7
    assert np.mean(pipe[-1].transduction_[unlabeled] == y_true[unlabeled]) > 0.7
    proba = pipe.predict_proba(X[:20])
    assert proba.shape == (20, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_sparse_X_matches_dense(small_digits):
    X, _, y, X_new = small_digits
    for Est in ESTIMATORS:
        dense = Est(n_neighbors=8, knn_backend="exact").fit(X, y)
        sparse = Est(n_neighbors=8, knn_backend="exact").fit(sp.csr_matrix(X), y)
        np.testing.assert_array_equal(sparse.transduction_, dense.transduction_)
        # both solves meet tol=1e-6 (in float32 iterations): equal to ~1e-7
        np.testing.assert_allclose(
            sparse.label_distributions_, dense.label_distributions_, atol=1e-6
        )
        # training rows are recognised in either format
        np.testing.assert_array_equal(
            sparse.predict(sp.csr_matrix(X)), dense.transduction_
        )
        np.testing.assert_array_equal(sparse.predict(X), dense.transduction_)
        np.testing.assert_array_equal(
            dense.predict(sp.csr_matrix(X)), dense.transduction_
        )
        np.testing.assert_allclose(
            sparse.predict_proba(sp.csr_matrix(X_new)),
            dense.predict_proba(X_new),
            atol=1e-6,
        )


def test_sparse_X_with_auto_backend(small_digits):
    X, _, y, X_new = small_digits
    est = MixedLabelPropagation(n_neighbors=8).fit(sp.csr_matrix(X), y)
    assert est.knn_backend_ != "faiss"
    ref = MixedLabelPropagation(n_neighbors=8, knn_backend="exact").fit(X, y)
    np.testing.assert_array_equal(est.transduction_, ref.transduction_)
    est.predict(sp.csr_matrix(X_new))


def test_string_class_labels(small_digits):
    X, _, y, X_new = small_digits
    names = ["zero", "one", "two", "three", "four"]
    names = np.array(names + ["five", "six", "seven", "eight", "nine"], dtype=object)
    y_str = np.array([names[v] if v != -1 else -1 for v in y], dtype=object)
    for Est in ESTIMATORS:
        est = Est(n_neighbors=8, knn_backend="exact").fit(X, y_str)
        ref = Est(n_neighbors=8, knn_backend="exact").fit(X, y)
        np.testing.assert_array_equal(est.classes_, np.sort(names))
        assert all(isinstance(c, str) for c in est.classes_)
        assert all(isinstance(t, str) for t in est.transduction_)
        np.testing.assert_array_equal(est.transduction_, names[ref.transduction_])
        np.testing.assert_array_equal(est.predict(X_new), names[ref.predict(X_new)])
        # the labels of y are the string names of the integer run's labels
        labeled = y != -1
        np.testing.assert_array_equal(
            est.transduction_[labeled], names[ref.transduction_[labeled]]
        )
    # a numpy string array marks unlabeled rows with "-1"
    y_u = np.where(y == -1, "-1", names[np.maximum(y, 0)].astype(str))
    est = MixedLabelPropagation(n_neighbors=8, knn_backend="exact").fit(X, y_u)
    assert "-1" not in est.classes_
    np.testing.assert_array_equal(est.classes_, np.sort(names).astype(str))


def test_grid_search_over_n_neighbors(digits):
    X, y = digits
    X, y = X[:300], y[:300]  # fully labeled
    pipe = Pipeline([("scale", StandardScaler()), ("lp", MixedLabelPropagation())])
    grid = {"lp__n_neighbors": [3, 8]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
    assert search.best_params_["lp__n_neighbors"] in grid["lp__n_neighbors"]
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_score_ > 0.8
    assert search.score(X[:50], y[:50]) > 0.8


# -- 4. transductive vs inductive prediction ---------------------------------
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_predict_on_training_rows_is_transduction(small_digits, Est):
    X, _, y, _ = small_digits
    est = Est(n_neighbors=8, knn_backend="exact").fit(X, y)
    np.testing.assert_array_equal(est.predict(X), est.transduction_)
    np.testing.assert_array_equal(est.predict_proba(X), est.label_distributions_)
    perm = np.random.default_rng(1).permutation(X.shape[0])
    np.testing.assert_array_equal(est.predict(X[perm]), est.transduction_[perm])
    np.testing.assert_array_equal(
        est.predict_proba(X[perm]), est.label_distributions_[perm]
    )
    # float32 training data: training rows are still recognised
    est32 = Est(n_neighbors=8, knn_backend="exact").fit(X.astype(np.float32), y)
    np.testing.assert_array_equal(
        est32.predict(X.astype(np.float32)[perm]), est32.transduction_[perm]
    )


def inductive_proba(est, X_train, X_new):
    """The inductive rule (weighted average of the neighbours'
    distributions), computed directly, on the rows lifted by the fitted
    constant."""
    c = est.lift_height_
    X_train = np.hstack([X_train, np.full((len(X_train), 1), c)])
    X_new = np.hstack([X_new, np.full((len(X_new), 1), c)])
    V = X_train / np.linalg.norm(X_train, axis=1, keepdims=True)
    Q = X_new / np.linalg.norm(X_new, axis=1, keepdims=True)
    S = Q @ V.T
    k = est.n_neighbors_
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    w = kernel_weights(np.take_along_axis(S, idx, axis=1), est.kernel, est.gamma)
    return np.einsum("nk,nkc->nc", w, est.label_distributions_[idx]) / w.sum(
        axis=1, keepdims=True
    )


@pytest.mark.parametrize("kernel", ["self_tuning", "power"])
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_predict_on_new_rows_is_the_inductive_rule(small_digits, Est, kernel):
    X, _, y, X_new = small_digits
    est = Est(n_neighbors=8, kernel=kernel, gamma=2.0, knn_backend="exact")
    est.fit(X, y)
    expected = inductive_proba(est, X, X_new)
    proba = est.predict_proba(X_new)
    np.testing.assert_allclose(proba, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(
        est.predict(X_new), est.classes_[expected.argmax(axis=1)]
    )
    # training and new rows mixed and shuffled: each is handled row-wise
    X_mix = np.vstack([X, X_new])
    expected_mix = np.vstack([est.label_distributions_, expected])
    perm = np.random.default_rng(2).permutation(X_mix.shape[0])
    np.testing.assert_allclose(
        est.predict_proba(X_mix[perm]), expected_mix[perm], rtol=1e-10, atol=1e-12
    )
    # a slightly perturbed training row is a new row
    X_near = X[:5] + 1e-3
    np.testing.assert_allclose(
        est.predict_proba(X_near),
        inductive_proba(est, X, X_near),
        rtol=1e-10,
        atol=1e-12,
    )


@requires_faiss
def test_inductive_rule_with_faiss(small_digits):
    X, _, y, X_new = small_digits
    est = HardNegativeLP(n_neighbors=8, knn_backend="faiss").fit(X, y)
    # faiss searches in float32
    np.testing.assert_allclose(
        est.predict_proba(X_new), inductive_proba(est, X, X_new), atol=1e-5
    )
    np.testing.assert_array_equal(est.predict(X), est.transduction_)


# -- 5. precomputed backend ----------------------------------------------------
@pytest.mark.parametrize("kernel", ["self_tuning", "power"])
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_precomputed_graph_matches_exact_backend(digits, Est, kernel):
    X, y_true = digits
    X = X[:300] + np.random.default_rng(0).normal(scale=0.01, size=(300, 64))  # no ties
    y = mask_per_class(y_true[:300], 5)
    k, gamma = 8, 3.0
    A = knn_cosine_graph(X, k, gamma, kernel)
    pre = Est(knn_backend="precomputed").fit(A, y)
    # a precomputed graph has no features: HardNegativeLP's default mining
    # then uses the propagation's view alone
    view = {"mining": "agreement"} if Est is HardNegativeLP else {}
    exact = Est(
        knn_backend="exact", n_neighbors=k, kernel=kernel, gamma=gamma, lift=0.0, **view
    )
    exact.fit(X, y)
    if Est is HardNegativeLP:
        assert pre.mining_ == exact.mining_ == "agreement"
    assert pre.knn_backend_ == "precomputed"
    assert pre.n_neighbors_ == k
    W_pre, W_exact = pre.affinity_.tocsr(), exact.affinity_.tocsr()
    assert W_pre.shape == W_exact.shape
    assert (W_pre != 0).sum() == (W_exact != 0).sum()
    assert abs((W_pre != 0) - (W_exact != 0)).nnz == 0, "different edges"
    np.testing.assert_allclose(
        W_pre.toarray(), W_exact.toarray(), rtol=1e-10, atol=1e-14
    )
    np.testing.assert_array_equal(pre.transduction_, exact.transduction_)
    np.testing.assert_allclose(
        # float32 iterations, both solves meet tol=1e-6
        pre.label_distributions_, exact.label_distributions_, atol=1e-6
    )
    # predict on the training graph rows returns the transduction
    np.testing.assert_array_equal(pre.predict(A), pre.transduction_)
    # new rows: their affinities to the training rows, same inductive rule
    X_new = digits[0][1000:1040]
    V = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = (X_new / np.linalg.norm(X_new, axis=1, keepdims=True)) @ V.T
    idx = np.argsort(-S, axis=1)[:, :k]
    A_new = np.zeros_like(S)
    weights = kernel_weights(np.take_along_axis(S, idx, axis=1), kernel, gamma)
    np.put_along_axis(A_new, idx, weights, axis=1)
    np.testing.assert_allclose(
        pre.predict_proba(sp.csr_matrix(A_new)), exact.predict_proba(X_new), atol=1e-6
    )
    np.testing.assert_array_equal(pre.predict(A_new), exact.predict(X_new))


# -- 6. verbosity -----------------------------------------------------------------
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_verbose_prints_stage_lines(small_digits, capsys, Est):
    X, _, y, _ = small_digits
    Est(n_neighbors=5, knn_backend="exact", verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""
    Est(n_neighbors=5, knn_backend="exact", verbose=1).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 3
    assert all(line.startswith(f"[{Est.__name__}]") for line in lines)
    stages = [line.split("]")[1].split(":")[0].strip() for line in lines]
    expected = ["neighbors", "graph", "label_propagation", "output"]
    if Est is HardNegativeLP:
        expected[3:3] = ["mining", "mixed_solve"]
    else:
        expected[2:2] = ["negatives"]
    assert stages == expected
    est = Est(n_neighbors=5, knn_backend="exact").fit(X, y)
    assert list(est.fit_stages_) == expected
    assert all(info["seconds"] >= 0 for info in est.fit_stages_.values())
    iters = sum(info["n_iter"] for info in est.fit_stages_.values())
    assert iters == est.n_iter_ > 0


# -- 7. convergence ---------------------------------------------------------------
# HardNegativeLP: the first propagation, one solve between its two rounds of
# mining, and the final solve
@pytest.mark.parametrize(
    "Est, n_solves", [(MixedLabelPropagation, 1), (HardNegativeLP, 3)]
)
def test_convergence_warning_with_max_iter_1(small_digits, Est, n_solves):
    X, _, y, _ = small_digits
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        est = Est(n_neighbors=8, knn_backend="exact", max_iter=1).fit(X, y)
    assert est.n_iter_ == n_solves
    assert_finite_outputs(est)
    full = Est(n_neighbors=8, knn_backend="exact").fit(X, y)
    assert full.n_iter_ > est.n_iter_


def test_convergence_warning_lpdr(small_digits):
    X, _, y, _ = small_digits
    with pytest.warns(ConvergenceWarning):
        est = MixedLabelPropagation(
            "mom",
            n_neighbors=8,
            knn_backend="exact",
            dissimilarity_loss="lpdr",
            max_iter=1,
        ).fit(X, y)
    assert est.n_iter_ >= 1
    assert_finite_outputs(est)


def test_no_convergence_warning_by_default(small_digits):
    X, _, y, _ = small_digits
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for Est in ESTIMATORS:
            est = Est(n_neighbors=8, knn_backend="exact").fit(X, y)
            assert est.n_iter_ > 0


# -- 8. user-supplied negatives --------------------------------------------------------
def test_negative_pairs_equal_sparse_matrix_and_are_symmetrised(small_digits):
    X, y_true, y, _ = small_digits
    rng = np.random.default_rng(3)
    i = rng.integers(0, 300, size=200)
    j = rng.integers(0, 300, size=200)
    keep = (i < j) & (y_true[i] != y_true[j])
    i, j = i[keep], j[keep]
    w = rng.uniform(0.5, 2.0, size=i.size)
    pairs = [(int(a), int(b), float(c)) for a, b, c in zip(i, j, w)]

    S_upper = sp.csr_matrix((w, (i, j)), shape=(300, 300))
    expected = (S_upper + S_upper.T).toarray()

    est = MixedLabelPropagation(n_neighbors=8, knn_backend="exact")
    from_pairs = clone(est).fit(X, y, negatives=pairs)
    from_upper = clone(est).fit(X, y, negatives=S_upper)
    from_lower = clone(est).fit(X, y, negatives=S_upper.T.tocsr())
    from_sym = clone(est).fit(X, y, negatives=sp.csr_matrix(expected))
    reversed_pairs = [(b, a, c) for a, b, c in pairs]
    from_reversed = clone(est).fit(X, y, negatives=np.array(reversed_pairs))
    plain = clone(est).fit(X, y)

    # scale_free=True (default): weight 1 is an average edge of the graph
    expected = expected * plain.affinity_.data.mean()
    D = from_pairs.dissimilarity_
    np.testing.assert_array_equal(D.toarray(), D.T.toarray())
    np.testing.assert_allclose(D.toarray(), expected, rtol=1e-14)
    for other in (from_upper, from_lower, from_sym, from_reversed):
        np.testing.assert_allclose(other.dissimilarity_.toarray(), expected, rtol=1e-14)
        np.testing.assert_array_equal(
            other.label_distributions_, from_pairs.label_distributions_
        )
        np.testing.assert_array_equal(other.transduction_, from_pairs.transduction_)
    # the negatives change the solution
    assert not np.allclose(from_pairs.label_distributions_, plain.label_distributions_)
    assert plain.dissimilarity_.nnz == 0
    assert_finite_outputs(from_pairs)


def test_negative_pairs_without_weights_and_both_orders(small_digits):
    X, _, y, _ = small_digits
    est = MixedLabelPropagation(n_neighbors=8, knn_backend="exact", scale_free=False)
    a = clone(est).fit(X, y, negatives=[(0, 5), (3, 7)])
    # (i, j) and (j, i) are one pair: max(S, S^T), not a sum
    b = clone(est).fit(X, y, negatives=np.array([(0, 5), (5, 0), (3, 7)]))
    expected = np.zeros((300, 300))
    expected[[0, 5, 3, 7], [5, 0, 7, 3]] = 1.0
    np.testing.assert_array_equal(a.dissimilarity_.toarray(), expected)
    np.testing.assert_array_equal(b.dissimilarity_.toarray(), expected)
    np.testing.assert_array_equal(a.label_distributions_, b.label_distributions_)
    # scale_free=True: the same pairs, in units of the mean affinity
    c = clone(est).set_params(scale_free=True).fit(X, y, negatives=[(0, 5), (3, 7)])
    np.testing.assert_allclose(
        c.dissimilarity_.toarray(), expected * c.affinity_.data.mean(), rtol=1e-14
    )


def test_fit_negatives_override_mom(small_digits):
    X, _, y, _ = small_digits
    mom = MixedLabelPropagation("mom", n_neighbors=8, knn_backend="exact").fit(X, y)
    assert mom.dissimilarity_.nnz > 0
    user = MixedLabelPropagation("mom", n_neighbors=8, knn_backend="exact").fit(
        X, y, negatives=[(0, 5)]
    )
    assert user.dissimilarity_.nnz == 2


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "backend, sparse",
    [("auto", True), ("exact", True), ("pynndescent", True), ("precomputed", True),
     ("faiss", False), ("torch", False)],
)
def test_sparse_tag_follows_the_backend(Est, backend, sparse):
    # faiss and the torch search take dense rows only
    assert Est(knn_backend=backend).__sklearn_tags__().input_tags.sparse is sparse


@pytest.mark.skipif(
    not sys.platform.startswith("linux")
    or bool(gpu_device_nodes()),
    reason="only a Linux machine without GPU device nodes skips the torch import",
)
def test_auto_settings_do_not_import_torch_without_a_gpu():
    # solver='auto', device='auto' and knn_backend='auto' look for a GPU;
    # without one they must not pay for importing torch
    code = (
        "import sys\n"
        "from sklearn.datasets import load_digits\n"
        "from sklearn_mixedlp import HardNegativeLP\n"
        "X, y = load_digits(return_X_y=True)\n"
        "y[100:] = -1\n"
        "est = HardNegativeLP().fit(X, y)\n"
        "assert est.knn_backend_ != 'torch'\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_distributions_and_confidence_follow_their_definitions(monkeypatch):
    """normalize_distributions (in place too) and entropy_confidence, the
    latter taken by chunks of rows, against their formulas."""
    from sklearn_mixedlp import _utils

    rng = np.random.default_rng(0)
    G = rng.normal(size=(50, 4))
    G[3] = -1.0  # no positive score: the uniform (given) distribution
    uniform = np.array([0.5, 0.5, 0.0, 0.0])
    clipped = np.clip(G, 0.0, None)
    expected = clipped / np.where(clipped.sum(1) > 0, clipped.sum(1), 1.0)[:, None]
    none = clipped.sum(1) == 0
    expected[none] = uniform
    P, empty = _utils.normalize_distributions(G, uniform)
    np.testing.assert_allclose(P, expected, rtol=1e-15)
    assert empty[3] and np.array_equal(empty, none) and P is not G
    P2, _ = _utils.normalize_distributions(G, uniform, overwrite=True)
    assert P2 is G
    np.testing.assert_array_equal(P2, P)

    monkeypatch.setattr(_utils, "_ROW_CHUNK", 7)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P > 0, P * np.log(P), 0.0)
    omega = 1.0 + plogp.sum(axis=1) / np.log(4)
    np.testing.assert_allclose(_utils.entropy_confidence(P), omega, rtol=1e-12, atol=1e-15)
    assert _utils.entropy_confidence(np.eye(4))[0] == 1.0
