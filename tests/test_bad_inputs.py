"""The bad-input and fault matrix.

Every entry point (the estimators, ``knn_graph``, the metrics, the
model-selection tools, ``mask_labels`` and the command line) is fed inputs
that once gave a silent wrong answer or an unhelpful error. Each case
either checks the right answer against a reference computed another way
(the same data unscaled, the same labels spelled differently, a direct
count), or that a clear error or warning names the problem. New faults
get a case here.
"""

import os
import signal
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_blobs
from sklearn.model_selection import cross_val_score

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, _cli, knn_graph
from sklearn_mixedlp._cli import main, parse_labels
from sklearn_mixedlp.datasets import mask_labels, unlabeled_mask
from sklearn_mixedlp.metrics import (
    make_retrieval_scorer,
    map_at_r,
    nmi_score,
    precision_at_k,
    recall_at_k,
)
from sklearn_mixedlp.model_selection import (
    SemiSupervisedKFold,
    class_disjoint_split,
    labeled_accuracy_score,
    make_semi_supervised_scorer,
)

from .conftest import ignore_relabeled, requires_faiss, requires_torch

ESTIMATORS = [
    pytest.param(MixedLabelPropagation, id="lp"),
    pytest.param(HardNegativeLP, id="hard"),
]


@pytest.fixture(scope="module")
def blobs():
    """300 rows in 3 blobs of distinct directions, 10 labels per class."""
    centers = 10.0 * np.eye(3)
    X, y = make_blobs(300, centers=centers, cluster_std=1.5, random_state=0)
    return X, y, mask_labels(y, 10, random_state=0)


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return est.fit(X, y)


# -- 1. one unlabeled marker -------------------------------------------------


@pytest.mark.parametrize(
    "y, expected",
    [
        (np.array([0, -1, 2]), [False, True, False]),
        (np.array([0, -1, 2], dtype=np.int8), [False, True, False]),
        (np.array([0, 1, 2], dtype=np.uint8), [False, False, False]),
        (np.array([0.0, -1.0, np.nan]), [False, True, True]),
        (np.array([1.5, -1.0], dtype=np.float32), [False, True]),
        (np.array(["a", "-1", "b"]), [False, True, False]),
        (np.array([b"a", b"-1"]), [False, True]),
        (np.array(["a", "-1", -1, None, np.nan, "b"], dtype=object),
         [False, True, True, True, True, False]),
        (np.array([np.int64(-1), np.float32(-1), np.float32("nan"), 3], dtype=object),
         [True, True, True, False]),
        (np.array([True, False]), [False, False]),
        (np.array([True, -1], dtype=object), [False, True]),
        (["cat", None, "dog"], [False, True, False]),
        (np.array([[0], [-1]]), [False, True]),
    ],
    ids=lambda v: None if isinstance(v, list) and all(isinstance(b, bool) for b in v)
    else str(getattr(v, "dtype", type(v).__name__)),
)  # fmt: skip
def test_unlabeled_mask(y, expected):
    assert unlabeled_mask(y).tolist() == expected


def test_unlabeled_mask_pandas_missing_values():
    pd = pytest.importorskip("pandas")
    y = pd.Series(["a", pd.NA, "b", None], dtype=object)
    assert unlabeled_mask(y).tolist() == [False, True, False, True]


def _string_labels(y_masked, marker):
    names = np.array(["ant", "bee", "cat"], dtype=object)
    y = names[np.maximum(y_masked, 0)].astype(object)
    y[y_masked == -1] = marker
    return y


@pytest.mark.parametrize("marker", ["-1", -1, None, np.nan], ids=repr)
def test_cross_validation_never_tests_unlabeled_rows(blobs, marker):
    X, y, y_masked = blobs
    y_text = _string_labels(y_masked, marker)
    est = MixedLabelPropagation(knn_backend="exact", n_neighbors=5)
    cv = SemiSupervisedKFold(3)
    scorer = make_semi_supervised_scorer()
    for _, test in cv.split(X, y_text):
        assert not unlabeled_mask(y_text[test]).any()
        assert test.size == 10
    scores = quiet_fit_scores(est, X, y_text, cv, scorer)
    reference = quiet_fit_scores(est, X, y_masked, cv, scorer)
    np.testing.assert_array_equal(scores, reference)
    assert scores.mean() > 0.9


def quiet_fit_scores(est, X, y, cv, scorer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return cross_val_score(est, X, y, cv=cv, scoring=scorer)


def test_string_minus_one_in_a_str_array_is_unlabeled(blobs):
    X, _, y_masked = blobs
    y_str = _string_labels(y_masked, "-1").astype(str)
    splits = list(SemiSupervisedKFold(2).split(X, y_str))
    tested = np.sort(np.concatenate([t for _, t in splits]))
    np.testing.assert_array_equal(tested, np.flatnonzero(y_masked != -1))


@pytest.mark.parametrize("marker", ["-1", None, np.nan], ids=repr)
def test_labeled_accuracy_ignores_every_marker(marker):
    y_true = np.array(["a", marker, "b", marker], dtype=object)
    assert labeled_accuracy_score(y_true, ["a", "a", "a", "b"]) == 0.5


@pytest.mark.parametrize("marker", ["-1", None, np.nan], ids=repr)
def test_class_disjoint_split_drops_every_marker(marker):
    y = np.array(["a", "b", "c", marker, "a", "b", "c", marker], dtype=object)
    sets = class_disjoint_split(y, random_state=0)
    np.testing.assert_array_equal(np.sort(np.concatenate(sets)), [0, 1, 2, 4, 5, 6])


@pytest.mark.parametrize("marker", ["-1", None, np.nan], ids=repr)
def test_mask_labels_never_makes_the_marker_a_class(marker):
    y = np.array(["a", "a", "b", "b", marker, marker], dtype=object)
    out = mask_labels(y, 1, random_state=0)
    assert unlabeled_mask(out).sum() == 4
    assert sorted(out[~unlabeled_mask(out)]) == ["a", "b"]


def test_mask_labels_float_nan_is_unlabeled():
    y = np.array([0.0, 0.0, 1.0, 1.0, np.nan])
    out = mask_labels(y, 2, random_state=0)
    np.testing.assert_array_equal(out, [0.0, 0.0, 1.0, 1.0, -1.0])


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("marker", ["-1", None, np.nan], ids=repr)
def test_estimators_accept_every_marker(blobs, Est, marker):
    X, _, y_masked = blobs
    reference = quiet_fit(Est(knn_backend="exact"), X, y_masked)
    y_text = _string_labels(y_masked, marker)
    est = quiet_fit(Est(knn_backend="exact"), X, y_text)
    assert est.classes_.tolist() == ["ant", "bee", "cat"]
    np.testing.assert_allclose(
        est.label_distributions_, reference.label_distributions_, atol=1e-12
    )


def test_estimators_accept_float_nan_as_unlabeled(blobs):
    X, _, y_masked = blobs
    y_nan = y_masked.astype(float)
    y_nan[y_masked == -1] = np.nan
    est = quiet_fit(MixedLabelPropagation(knn_backend="exact"), X, y_nan)
    reference = quiet_fit(MixedLabelPropagation(knn_backend="exact"), X, y_masked)
    assert est.classes_.tolist() == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(est.transduction_, reference.transduction_)


@pytest.mark.parametrize("marker", ["-1", None], ids=repr)
def test_retrieval_scorer_drops_every_marker(blobs, marker):
    from sklearn.decomposition import PCA

    X, y, y_masked = blobs
    y_text = _string_labels(y_masked, marker)
    pca = PCA(2).fit(X)
    scorer = make_retrieval_scorer("precision", k=3, backend="numpy")
    keep = y_masked != -1
    expected = precision_at_k(pca.transform(X[keep]), y_text[keep], k=3, backend="numpy")
    assert scorer(pca, X, y_text) == pytest.approx(expected)


# -- 2. huge and tiny feature values -----------------------------------------

SCALES = [1e160, 1e200, 1e300, 1e-170, 1e-300, 1e-310]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("Est", ESTIMATORS)
def test_fit_predict_do_not_depend_on_the_scale(blobs, Est, scale):
    X, _, y_masked = blobs
    X_train, X_new = X[:250], X[250:]
    y_train = y_masked[:250]
    reference = quiet_fit(Est(knn_backend="exact"), X_train, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow
        warnings.filterwarnings("error", message=".*zero norm", category=UserWarning)
        est = quiet_fit(Est(knn_backend="exact"), X_train * scale, y_train)
        proba = est.predict_proba(X_new * scale)
    np.testing.assert_array_equal(est.transduction_, reference.transduction_)
    np.testing.assert_allclose(
        est.label_distributions_, reference.label_distributions_, atol=1e-9
    )
    np.testing.assert_allclose(proba, reference.predict_proba(X_new), atol=1e-9)


@pytest.mark.parametrize("scale", [1e20, 1e30, 1e-25, 1e-35])
def test_float32_rows_do_not_depend_on_the_scale(blobs, scale):
    X, _, y_masked = blobs
    X32 = X.astype(np.float32)
    reference = quiet_fit(MixedLabelPropagation(knn_backend="exact"), X32, y_masked)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = quiet_fit(
            MixedLabelPropagation(knn_backend="exact"),
            X32 * np.float32(scale),
            y_masked,
        )
    assert (est.transduction_ == reference.transduction_).mean() > 0.99


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("scale", [1e170, 1e-200])
def test_knn_graph_does_not_depend_on_the_scale(blobs, scale, sparse):
    X = blobs[0]
    convert = sp.csr_matrix if sparse else np.asarray
    A = knn_graph(convert(X), 6, knn_backend="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        B = knn_graph(convert(X * scale), 6, knn_backend="exact")
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_allclose(A.data, B.data, rtol=1e-6)


@requires_faiss
@pytest.mark.parametrize("scale", [1e170, 1e-200])
def test_faiss_graph_does_not_depend_on_the_scale(blobs, scale):
    X = blobs[0]
    A = knn_graph(X, 6, knn_backend="faiss")
    B = knn_graph(X * scale, 6, knn_backend="faiss")
    np.testing.assert_array_equal(A.indices, B.indices)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("scale", [1e160, 1e-170])
@pytest.mark.parametrize(
    "func", [recall_at_k, precision_at_k, map_at_r], ids=lambda f: f.__name__
)
def test_retrieval_metrics_do_not_depend_on_the_scale(blobs, func, scale, metric):
    X, y, _ = blobs
    expected = func(X, y, metric=metric, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = func(X * scale, y, metric=metric, backend="numpy")
    assert got == expected


def test_nmi_does_not_depend_on_the_scale(blobs):
    X, y, _ = blobs
    expected = nmi_score(X, y, random_state=0)
    assert nmi_score(X * 1e200, y, random_state=0) == pytest.approx(expected)


def test_cli_does_not_depend_on_the_scale(blobs, tmp_path, capsys):
    X, _, y_masked = blobs
    labels = tmp_path / "labels.npy"
    np.save(labels, y_masked)
    outputs = {}
    for scale in (1.0, 1e200):
        features = tmp_path / f"X{scale:g}.npy"
        np.save(features, X * scale)
        out = tmp_path / f"pred{scale:g}.npy"
        assert main([str(features), "--labels", str(labels), "-o", str(out), "-q"]) == 0
        outputs[scale] = np.load(out)
    assert "overflow" not in capsys.readouterr().err
    np.testing.assert_array_equal(outputs[1e200], outputs[1.0])


# -- 3. labeled rows that change class ----------------------------------------


@pytest.fixture(scope="module")
def imbalanced():
    """2,000 rows, 95% / 5% overlapping classes, 57 + 3 random labels."""
    rng = np.random.default_rng(0)
    n, n_minority = 2000, 100
    X = np.vstack(
        [rng.normal(0, 1, (n - n_minority, 5)), rng.normal(0.7, 1, (n_minority, 5))]
    )
    y_masked = np.full(n, -1)
    majority = rng.choice(n - n_minority, 57, replace=False)
    minority = rng.choice(n_minority, 3, replace=False) + n - n_minority
    y_masked[majority], y_masked[minority] = 0, 1
    return X, y_masked


@pytest.mark.parametrize(
    "make",
    [
        lambda: MixedLabelPropagation(knn_backend="exact", mu=1 / 99),
        lambda: HardNegativeLP("hard", knn_backend="exact", mu=1 / 99),
    ],
    ids=["plain", "edge-removal"],
)
def test_relabeled_labeled_rows_are_counted_in_a_warning(imbalanced, make):
    X, y_masked = imbalanced
    with pytest.warns(UserWarning, match="labeled rows get a class other") as record:
        est = make().fit(X, y_masked)
    labeled = y_masked != -1
    n_changed = int((est.transduction_[labeled] != y_masked[labeled]).sum())
    assert n_changed > 0
    messages = [str(w.message) for w in record if "labeled rows get" in str(w.message)]
    assert messages == [
        m for m in messages if m.startswith(f"{n_changed} of {labeled.sum()} ")
    ]
    assert "mu=" in messages[0]


def test_mined_negatives_keep_the_minority_labels(imbalanced):
    """The default mining cuts the edges that carry the majority into the
    labeled minority rows: they keep their class, without a warning."""
    X, y_masked = imbalanced
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*labeled rows get a class")
        est = HardNegativeLP(knn_backend="exact").fit(X, y_masked)
    labeled = y_masked != -1
    np.testing.assert_array_equal(est.transduction_[labeled], y_masked[labeled])


def test_a_larger_mu_keeps_the_given_labels(imbalanced):
    X, y_masked = imbalanced
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*labeled rows get a class")
        est = MixedLabelPropagation(knn_backend="exact", mu=1.0).fit(X, y_masked)
    labeled = y_masked != -1
    np.testing.assert_array_equal(est.transduction_[labeled], y_masked[labeled])
    assert (est.transduction_ == 1).sum() > 3


# -- 4. parts of the graph without a label -------------------------------------


@ignore_relabeled
def test_far_apart_cluster_without_labels_is_counted(blobs):
    X, y, _ = blobs
    far = np.vstack([X[y == 0], -X[y == 1]])  # the second cluster on the far side
    y_far = np.full(far.shape[0], -1)
    y_far[:5] = 0
    y_far[5:8] = 2  # a second class, also in the first cluster
    n_far = int((y == 1).sum())
    with pytest.warns(UserWarning, match=rf"^{n_far} of {far.shape[0]} rows lie in"):
        est = MixedLabelPropagation(knn_backend="exact", n_neighbors=5).fit(far, y_far)
    unreached = slice(far.shape[0] - n_far, None)
    np.testing.assert_array_equal(est.confidence_[unreached], 0.0)
    # documented: the first of classes_ that has a labeled row
    assert set(est.transduction_[unreached]) == {est.classes_[0]}


def test_duplicate_heavy_data_warns_with_the_unreached_count():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(20, 4)) + 5
    X = np.repeat(points, 30, axis=0)  # 20 points, 30 copies each
    y = np.full(600, -1)
    y[0] = 0
    y[30] = 1  # labels in the first two groups only
    with pytest.warns(UserWarning, match=r"^(\d+) of 600 rows lie in") as record:
        est = MixedLabelPropagation(knn_backend="exact", n_neighbors=10).fit(X, y)
    message = next(str(w.message) for w in record if "rows lie in" in str(w.message))
    n_unreached = int(message.split()[0])
    assert n_unreached == int((est.confidence_ == 0).sum()) >= 500


# -- 5. predict on training rows --------------------------------------------------


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("duplicate", ["zero", "nonzero"])
def test_predict_training_rows_with_duplicates_is_transduction(blobs, Est, duplicate):
    X, _, y_masked = blobs
    X, y_masked = X.copy(), y_masked.copy()
    labeled = np.flatnonzero(y_masked == 0)[0]
    if duplicate == "zero":  # an unlabeled copy of a labeled zero row
        other = np.flatnonzero(y_masked == -1)[-1]
        X[[labeled, other]] = 0.0
    else:  # a copy of a labeled row, with another label
        other = np.flatnonzero(y_masked == 1)[-1]
        X[other] = X[labeled]
    est = quiet_fit(Est(knn_backend="exact"), X, y_masked)
    assert not np.array_equal(
        est.label_distributions_[labeled], est.label_distributions_[other]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(est.predict_proba(X), est.label_distributions_)
        np.testing.assert_array_equal(est.predict(X), est.transduction_)


def test_precomputed_new_empty_affinity_row_is_uniform(blobs):
    X, _, y_masked = blobs
    A = knn_graph(X, 5, knn_backend="exact").tolil()
    labeled = int(np.flatnonzero(y_masked != -1)[0])
    A[labeled, :] = 0  # a labeled row with no out-edges
    A = A.tocsr()
    A.eliminate_zeros()
    est = quiet_fit(MixedLabelPropagation(knn_backend="precomputed"), A, y_masked)
    assert est.confidence_[labeled] > 0
    proba = est.predict_proba(sp.csr_matrix((2, X.shape[0])))
    np.testing.assert_allclose(proba, 1.0 / est.classes_.size)


# -- 6, 7. unhelpful errors of the graph -------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        pytest.param("faiss", marks=requires_faiss),
        pytest.param("torch", marks=requires_torch),
    ],
)
def test_dense_only_backend_refuses_sparse_predict_clearly(blobs, backend):
    X, _, y_masked = blobs
    kwargs = {"device": "cpu"} if backend == "torch" else {}
    est = quiet_fit(HardNegativeLP(knn_backend=backend, **kwargs), X, y_masked)
    with pytest.raises(TypeError, match="dense data is required.*toarray"):
        est.predict(sp.csr_matrix(X[:5] + 0.5))


@pytest.mark.parametrize(
    "call",
    [
        lambda X: knn_graph(X[:1]),
        lambda X: knn_graph(X[:0]),
        lambda X: MixedLabelPropagation().fit(X[:1], [0]),
        lambda X: HardNegativeLP().fit(X[:1], [0]),
    ],
    ids=["knn_graph-1", "knn_graph-0", "lp-1", "hard-1"],
)
def test_too_few_rows_are_refused_clearly(blobs, call):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no 'n_neighbors=0' first
        with pytest.raises(ValueError, match=r"sample\(s\).*minimum of 2"):
            call(blobs[0])


# -- general bad inputs of the estimators ------------------------------------------


def _bad_fits(X, y):
    nan = X.copy()
    nan[3, 1] = np.nan
    inf = X.copy()
    inf[5, 0] = np.inf
    return [
        ("nan", nan, y, ValueError, "NaN"),
        ("inf", inf, y, ValueError, "infinity"),
        ("empty", X[:0], y[:0], ValueError, "0 sample"),
        ("1-d", X[:, 0], y, ValueError, "2D array"),
        ("no features", X[:, :0], y, ValueError, "0 feature"),
        ("text", X.astype(str).astype(object) + "x", y, ValueError, "string|float"),
        ("complex", X + 1j, y, ValueError, "omplex"),
        ("short y", X, y[:-1], ValueError, "inconsistent numbers"),
        ("2-d y", X, np.c_[y, y], ValueError, "y should be a 1d array|multioutput"),
        ("no label", X, np.full_like(y, -1), ValueError, "no labeled sample"),
        ("no label nan", X, np.full(y.shape, np.nan), ValueError, "no labeled sample"),
        ("continuous y", X, np.where(y == -1, -1, y + 0.5), ValueError,
         "Unknown label type"),
        ("unknown class", X, y, ValueError, "neither -1"),
        ("prior length", X, y, ValueError, "one entry per class"),
        ("prior 2-d", X, y, ValueError, "one entry per class"),
        ("prior negative", X, y, ValueError, "non-negative with a positive sum"),
        ("prior zero", X, y, ValueError, "non-negative with a positive sum"),
        ("prior nan", X, y, ValueError, "NaN"),
        ("prior without cmn", X, y, ValueError, "class_mass_normalization=True"),
    ]  # fmt: skip


# the estimator parameters of the cases that need them
BAD_FIT_PARAMS = {
    "unknown class": {"classes": [0, 1]},
    "prior length": {"class_prior": [0.5, 0.5]},
    "prior 2-d": {"class_prior": [[0.2, 0.3, 0.5]]},
    "prior negative": {"class_prior": [0.6, 0.6, -0.2]},
    "prior zero": {"class_prior": [0, 0, 0]},
    "prior nan": {"class_prior": [0.2, np.nan, 0.8]},
    "prior without cmn": {"class_prior": [1, 1, 2], "class_mass_normalization": False},
}


BAD_FIT_IDS = [case[0] for case in _bad_fits(np.ones((8, 2)), np.zeros(8, int))]


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("case", BAD_FIT_IDS)
def test_bad_fit_inputs_raise_clear_errors(blobs, Est, case):
    X, _, y_masked = blobs
    _, X_bad, y_bad, error, match = next(
        c for c in _bad_fits(X, y_masked) if c[0] == case
    )
    params = BAD_FIT_PARAMS.get(case, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            Est(knn_backend="exact", **params).fit(X_bad, y_bad)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "case", ["nan", "features", "1-d", "precomputed-negative", "precomputed-shape"]
)
def test_bad_predict_inputs_raise_clear_errors(blobs, Est, case):
    X, _, y_masked = blobs
    if case.startswith("precomputed"):
        A = knn_graph(X, 5, knn_backend="exact")
        est = quiet_fit(Est(knn_backend="precomputed"), A, y_masked)
        bad = -A[:3] if case.endswith("negative") else A[:3, :-1]
        match = "negative" if case.endswith("negative") else "299 features"
    else:
        est = quiet_fit(Est(knn_backend="exact"), X, y_masked)
        bad = {"nan": np.full((2, 2), np.nan), "features": X[:3, :1], "1-d": X[0]}[
            case
        ]
        match = {"nan": "NaN", "features": "features", "1-d": "2D array"}[case]
    with pytest.raises(ValueError, match=match):
        est.predict(bad)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda X, y: recall_at_k(X[:1], y[:1]), ValueError, "minimum of 2"),
        (lambda X, y: recall_at_k(X, y, k=len(y)), ValueError, "smaller than"),
        (lambda X, y: precision_at_k(np.where(X == X[4, 1], np.nan, X), y),
         ValueError, "NaN"),
        (lambda X, y: map_at_r(X, y[:-1]), ValueError, "inconsistent"),
        (lambda X, y: recall_at_k(X, y, metric="manhattan"), ValueError,
         "Unknown metric"),
        (lambda X, y: next(SemiSupervisedKFold(3).split(X, np.full_like(y, -1))),
         ValueError, "labeled rows"),
        (lambda X, y: mask_labels(y, 1000), ValueError, "fewer samples"),
    ],
    ids=["recall-1-row", "recall-k", "precision-nan", "map-length", "metric",
         "kfold-unlabeled", "mask-too-many"],
)  # fmt: skip
def test_bad_inputs_of_the_tools_raise_clear_errors(blobs, call, error, match):
    X, y, _ = blobs
    with pytest.raises(error, match=match):
        call(X, y)


# -- 8, 9. the command line ----------------------------------------------------------


def test_cli_sigterm_while_writing_leaves_nothing(blobs, tmp_path, capsys, monkeypatch):
    X, _, y_masked = blobs
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y_masked)
    real_writer = _cli._write_csv

    def killed_writer(fh, estimator):
        real_writer(fh, estimator)
        fh.flush()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(_cli, "_write_csv", killed_writer)
    previous = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "pred.csv"
    code = main(
        [str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy"), "-o", str(out)]
    )
    assert code == 128 + signal.SIGTERM
    assert "terminated; no output written" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["X.npy", "y.npy"]
    assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.parametrize(
    "marker", ["NA", "N/A", "None", "null", "unlabeled", "NaN", "na", "NULL", "<NA>", "?"]
)
def test_cli_missing_value_spellings_are_unlabeled(marker):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        y = parse_labels(["cat", marker, "dog", marker, " cat "])
    # "nan" was always read as a missing number; the others are counted
    counted = [str(w.message) for w in record if "read as unlabeled" in str(w.message)]
    assert len(counted) == (marker.lower() != "nan")
    assert y.tolist() == ["cat", "-1", "dog", "-1", "cat"]
    assert unlabeled_mask(y).tolist() == [False, True, False, True, False]


def test_cli_missing_value_spellings_with_numeric_labels():
    with pytest.warns(UserWarning, match=r"2 x 'NA'"):
        y = parse_labels(["3", "NA", "4", "NA", "null"])
    assert y.tolist() == [3, -1, 4, -1, -1]


def test_cli_na_labels_end_to_end(blobs, tmp_path, capsys):
    X, _, y_masked = blobs
    np.save(tmp_path / "X.npy", X)
    labels = tmp_path / "labels.txt"
    names = np.array(["ant", "bee", "cat"])
    labels.write_text(
        "".join(("NA" if v == -1 else names[v]) + "\n" for v in y_masked)
    )
    out = tmp_path / "pred.npz"
    code = main([str(tmp_path / "X.npy"), "--labels", str(labels), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"{(y_masked == -1).sum()} x 'NA' read as unlabeled" in captured.err
    with np.load(out) as result:
        assert result["classes"].tolist() == ["ant", "bee", "cat"]
        assert set(result["label"]) <= {"ant", "bee", "cat"}
