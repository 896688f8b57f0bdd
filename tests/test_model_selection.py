"""Tests for sklearn_mixedlp.model_selection."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, f1_score, zero_one_loss
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from sklearn_mixedlp.model_selection import (
    SemiSupervisedKFold,
    class_disjoint_split,
    labeled_accuracy_score,
    make_semi_supervised_scorer,
)

from .conftest import ignore_relabeled


def _partially_labeled(n_samples=200, n_classes=4, frac_unlabeled=0.6, seed=0):
    rng = np.random.RandomState(seed)
    y_full = rng.randint(n_classes, size=n_samples)
    y = y_full.copy()
    y[rng.rand(n_samples) < frac_unlabeled] = -1
    return np.zeros((n_samples, 2)), y


@pytest.fixture(scope="module")
def masked_digits():
    X, y_true = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    y = y_true.copy()
    y[rng.rand(len(y)) < 0.9] = -1
    return X, y, y_true


def _pipeline(n_neighbors=7):
    return Pipeline(
        [
            ("scale", StandardScaler()),
            ("spread", LabelSpreading(kernel="knn", n_neighbors=n_neighbors)),
        ]
    )


# --------------------------------------------------------------------------
# SemiSupervisedKFold
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("shuffle, random_state", [(False, None), (True, 0)])
def test_folds_cover_labeled_rows_once(stratify, shuffle, random_state):
    X, y = _partially_labeled()
    labeled = np.flatnonzero(y != -1)
    unlabeled = np.flatnonzero(y == -1)
    assert len(unlabeled) > 50 and len(labeled) > 50
    cv = SemiSupervisedKFold(
        5, shuffle=shuffle, random_state=random_state, stratify=stratify
    )
    splits = list(cv.split(X, y))
    assert len(splits) == cv.get_n_splits() == 5

    tested = np.concatenate([test for _, test in splits])
    np.testing.assert_array_equal(np.sort(tested), labeled)  # each exactly once
    for train, test in splits:
        assert np.all(y[test] != -1)
        assert np.isin(unlabeled, train).all()
        assert np.intersect1d(train, test).size == 0
        np.testing.assert_array_equal(np.union1d(train, test), np.arange(len(y)))
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        assert train.dtype.kind == "i" and test.dtype.kind == "i"


def test_folds_are_stratified():
    rng = np.random.RandomState(1)
    # Imbalanced classes: 100 / 40 / 20 labeled rows, plus 150 unlabeled.
    y = np.concatenate([np.repeat([0, 1, 2], [100, 40, 20]), np.full(150, -1)])
    y = y[rng.permutation(len(y))]
    X = np.zeros((len(y), 1))
    for shuffle, rs in [(False, None), (True, 3)]:
        for _, test in SemiSupervisedKFold(5, shuffle=shuffle, random_state=rs).split(
            X, y
        ):
            counts = np.bincount(y[test], minlength=3)
            np.testing.assert_array_equal(counts, [20, 8, 4])

    # Without stratification and without shuffling, contiguous blocks are not.
    y_sorted = np.concatenate([np.repeat([0, 1], 50), np.full(30, -1)])
    X = np.zeros((len(y_sorted), 1))
    first_test = next(SemiSupervisedKFold(2, stratify=False).split(X, y_sorted))[1]
    assert set(y_sorted[first_test]) == {0}
    first_test = next(SemiSupervisedKFold(2).split(X, y_sorted))[1]
    np.testing.assert_array_equal(np.bincount(y_sorted[first_test]), [25, 25])


def test_matches_sklearn_splitters_on_labeled_rows():
    X, y = _partially_labeled(seed=2)
    labeled = np.flatnonzero(y != -1)
    Xl = np.zeros((len(labeled), 1))
    ref_s = StratifiedKFold(4, shuffle=True, random_state=7).split(Xl, y[labeled])
    ref_k = KFold(4).split(Xl)
    ours_s = SemiSupervisedKFold(4, shuffle=True, random_state=7).split(X, y)
    ours_k = SemiSupervisedKFold(4, stratify=False).split(X, y)
    for (_, t_ref), (_, t) in zip(ref_s, ours_s):
        np.testing.assert_array_equal(labeled[t_ref], t)
    for (_, t_ref), (_, t) in zip(ref_k, ours_k):
        np.testing.assert_array_equal(labeled[t_ref], t)


def test_shuffle_reproducible():
    X, y = _partially_labeled(seed=3)
    a = [t for _, t in SemiSupervisedKFold(3, shuffle=True, random_state=0).split(X, y)]
    b = [t for _, t in SemiSupervisedKFold(3, shuffle=True, random_state=0).split(X, y)]
    c = [t for _, t in SemiSupervisedKFold(3, shuffle=True, random_state=1).split(X, y)]
    d = [t for _, t in SemiSupervisedKFold(3).split(X, y)]
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(a, c))
    assert any(not np.array_equal(u, v) for u, v in zip(a, d))


def test_object_labels_mixing_strings_and_minus_one():
    y = np.array(
        ["cat", "dog", -1, "cat", "dog", -1, "cat", "dog", -1, "bird", "bird", -1],
        dtype=object,
    )
    X = np.zeros((len(y), 3))
    splits = list(SemiSupervisedKFold(2).split(X, y))
    tested = np.sort(np.concatenate([t for _, t in splits]))
    np.testing.assert_array_equal(tested, [0, 1, 3, 4, 6, 7, 9, 10])
    for train, test in splits:
        assert {2, 5, 8, 11} <= set(train)
        assert all(isinstance(v, str) for v in y[test])
    # A plain list works too (numpy alone would turn -1 into the string "-1").
    for (tr, te), (tr2, te2) in zip(splits, SemiSupervisedKFold(2).split(X, list(y))):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(te, te2)


def test_all_labeled_equals_stratified_kfold():
    y = np.repeat([0, 1, 2], 10)
    X = np.zeros((30, 1))
    for (tr, te), (tr2, te2) in zip(
        SemiSupervisedKFold(5).split(X, y), StratifiedKFold(5).split(X, y)
    ):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(te, te2)


def test_split_errors():
    X, y = _partially_labeled()
    cv = SemiSupervisedKFold(3)
    with pytest.raises(ValueError, match="y is required"):
        next(cv.split(X, None))
    with pytest.raises(ValueError, match="labeled rows"):
        next(cv.split(np.zeros((6, 1)), np.array([0, 1, -1, -1, -1, -1])))
    with pytest.raises(ValueError, match="labeled rows"):
        next(cv.split(np.zeros((4, 1)), np.full(4, -1)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        next(cv.split(X[:-1], y))
    with pytest.raises(ValueError):
        next(cv.split(X, np.zeros((len(y), 2))))


def test_tiny_classes_policy():
    X = np.zeros((14, 1))
    # Class 1 has 2 labeled rows < n_splits=3: warning, like StratifiedKFold.
    y = np.array([0, 0, 0, 0, 0, 0, 1, 1, -1, -1, -1, -1, -1, -1])
    with pytest.warns(UserWarning, match="only 2 labeled rows"):
        splits = list(SemiSupervisedKFold(3).split(X, y))
    assert len(splits) == 3
    # No warning without stratification.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        list(SemiSupervisedKFold(3, stratify=False).split(X, y))
    # Every class smaller than n_splits: error.
    y = np.array([0, 0, 1, 1, 2, 2, -1, -1, -1, -1, -1, -1, -1, -1])
    with pytest.raises(
        ValueError, match="cannot be greater than the number of labeled"
    ):
        next(SemiSupervisedKFold(3).split(X, y))
    assert len(list(SemiSupervisedKFold(3, stratify=False).split(X, y))) == 3


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_splits": 1}, ValueError),
        ({"n_splits": 2.0}, ValueError),
        ({"n_splits": 3, "random_state": 0}, ValueError),
        ({"n_splits": 3, "shuffle": "yes"}, TypeError),
        ({"n_splits": 3, "stratify": None}, TypeError),
    ],
)
def test_constructor_errors(kwargs, error):
    with pytest.raises(error):
        SemiSupervisedKFold(**kwargs)


def test_repr_and_clone_friendly():
    cv = SemiSupervisedKFold(4, shuffle=True, random_state=2, stratify=False)
    assert repr(cv) == (
        "SemiSupervisedKFold(n_splits=4, random_state=2, shuffle=True, stratify=False)"
    )
    assert cv.get_n_splits() == 4


# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def test_labeled_accuracy_ignores_unlabeled():
    y_true = np.array([0, 1, -1, -1, 2, 2])
    y_pred = np.array([0, 0, 1, -1, 2, 1])
    assert labeled_accuracy_score(y_true, y_pred) == pytest.approx(2 / 4)
    # A plain accuracy counts -1 as a class (sklearn issue #2593).
    assert accuracy_score(y_true, y_pred) == pytest.approx(3 / 6)
    w = np.array([1.0, 3.0, 100.0, 100.0, 1.0, 1.0])
    assert labeled_accuracy_score(y_true, y_pred, sample_weight=w) == pytest.approx(
        2 / 6
    )
    y_obj = np.array(["a", "b", -1, -1], dtype=object)
    assert labeled_accuracy_score(y_obj, np.array(["a", "a", "b", "b"])) == 0.5
    assert labeled_accuracy_score(list(y_obj), ["a", "a", "b", "b"]) == 0.5


def test_labeled_accuracy_errors():
    with pytest.raises(ValueError, match="no labeled row"):
        labeled_accuracy_score([-1, -1], [0, 1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        labeled_accuracy_score([0, 1, -1], [0, 1])
    with pytest.raises(ValueError, match="y_true is required"):
        labeled_accuracy_score(None, [0, 1])


class _FixedPredictor(BaseEstimator):
    """Estimator whose predictions are fixed, to test the scorer."""

    def __init__(self, y_pred):
        self.y_pred = np.asarray(y_pred)

    def fit(self, X, y):
        return self

    def predict(self, X):
        return self.y_pred[: len(X)]


def test_scorer_calls_predict_and_ignores_unlabeled():
    X = np.zeros((6, 1))
    y = np.array([0, 1, -1, -1, 1, 0])
    est = _FixedPredictor([0, 1, 0, 1, 0, 0])
    scorer = make_semi_supervised_scorer()
    assert scorer(est, X, y) == pytest.approx(3 / 4)
    assert scorer(est, X, y, sample_weight=np.array([1, 1, 5, 5, 2, 1.0])) == (
        pytest.approx(3 / 5)
    )
    f1 = make_semi_supervised_scorer(f1_score, average="macro")
    labeled = y != -1
    assert f1(est, X, y) == pytest.approx(
        f1_score(y[labeled], est.predict(X)[labeled], average="macro")
    )
    loss = make_semi_supervised_scorer(zero_one_loss, greater_is_better=False)
    assert loss(est, X, y) == pytest.approx(-1 / 4)
    with pytest.raises(ValueError, match="no labeled row"):
        scorer(est, X, np.full(6, -1))
    with pytest.raises(TypeError):
        make_semi_supervised_scorer("accuracy")
    restored = pickle.loads(pickle.dumps(scorer))
    assert restored(est, X, y) == pytest.approx(3 / 4)


# --------------------------------------------------------------------------
# Integration with scikit-learn model selection
# --------------------------------------------------------------------------


def test_cross_val_score_with_label_spreading(masked_digits):
    X, y, y_true = masked_digits
    assert 0.05 < np.mean(y != -1) < 0.15
    model = _pipeline()
    cv = SemiSupervisedKFold(5, shuffle=True, random_state=0)
    scorer = make_semi_supervised_scorer()
    scores = cross_val_score(model, X, y, cv=cv, scoring=scorer)
    assert scores.shape == (5,)

    # Recompute every fold by hand on its held-out labeled rows.
    for k, (train, test) in enumerate(cv.split(X, y)):
        assert np.all(y[test] != -1)
        fitted = clone(model).fit(X[train], y[train])
        manual = np.mean(fitted.predict(X[test]) == y[test])
        assert scores[k] == pytest.approx(manual, abs=1e-12)
        # The held-out labels are the true ones.
        np.testing.assert_array_equal(y[test], y_true[test])
    assert scores.mean() > 0.7

    # A plain KFold with the default scoring tests on unlabeled rows and
    # counts -1 as a class that is never predicted: the estimate is wrong.
    naive = cross_val_score(model, X, y, cv=KFold(5, shuffle=True, random_state=0))
    assert naive.mean() < 0.2 < scores.mean()


def test_grid_search_with_label_spreading(masked_digits):
    X, y, _ = masked_digits
    cv = SemiSupervisedKFold(3, shuffle=True, random_state=1)
    grid = GridSearchCV(
        _pipeline(),
        {"spread__n_neighbors": [5, 12]},
        cv=cv,
        scoring=make_semi_supervised_scorer(),
    )
    grid.fit(X, y)
    assert grid.best_params_["spread__n_neighbors"] in (5, 12)

    train, test = next(cv.split(X, y))
    for i, params in enumerate(grid.cv_results_["params"]):
        fitted = clone(_pipeline()).set_params(**params).fit(X[train], y[train])
        manual = accuracy_score(y[test], fitted.predict(X[test]))
        assert grid.cv_results_["split0_test_score"][i] == pytest.approx(
            manual, abs=1e-12
        )
    assert grid.best_score_ > 0.7


@ignore_relabeled
def test_grid_search_over_hard_negative_lp_pipeline(masked_digits):
    from sklearn.decomposition import PCA

    from sklearn_mixedlp import HardNegativeLP

    X, y, y_true = masked_digits
    pipe = Pipeline(
        [("scale", StandardScaler()), ("pca", PCA(n_components=20)), ("lp", HardNegativeLP())]
    )
    cv = SemiSupervisedKFold(3, shuffle=True, random_state=0)
    grid = GridSearchCV(
        pipe, {"lp__n_neighbors": [5, 15]}, cv=cv, scoring=make_semi_supervised_scorer()
    )
    grid.fit(X, y)
    assert grid.best_params_["lp__n_neighbors"] in (5, 15)
    # each split's score is the accuracy on its held-out labeled rows
    train, test = next(cv.split(X, y))
    for i, params in enumerate(grid.cv_results_["params"]):
        fitted = clone(pipe).set_params(**params).fit(X[train], y[train])
        manual = accuracy_score(y[test], fitted.predict(X[test]))
        assert grid.cv_results_["split0_test_score"][i] == pytest.approx(manual)
    assert grid.best_score_ > 0.7
    # the refitted model labels the unlabeled rows well
    unlabeled = y == -1
    assert np.mean(grid.predict(X[unlabeled]) == y_true[unlabeled]) > 0.7


# --------------------------------------------------------------------------
# class_disjoint_split
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_classes, expected",
    [(10, (4, 2, 4)), (100, (40, 20, 40)), (3, (1, 1, 1)), (7, (3, 1, 3))],
)
def test_class_disjoint_split_proportions(n_classes, expected):
    rng = np.random.RandomState(0)
    y = rng.randint(n_classes, size=20 * n_classes)
    y[:n_classes] = np.arange(n_classes)  # every class present
    train, val, test = class_disjoint_split(y, random_state=0)
    sets = [set(y[idx]) for idx in (train, val, test)]
    assert tuple(len(s) for s in sets) == expected
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    # Every row of each class is in the set of its class.
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train, val, test])), np.arange(len(y))
    )
    for idx, s in zip((train, val, test), sets):
        np.testing.assert_array_equal(idx, np.flatnonzero(np.isin(y, list(s))))


def test_class_disjoint_split_custom_sizes():
    y = np.repeat(np.arange(20), 3)
    train, val, test = class_disjoint_split(
        y, train_size=0.5, val_size=0.25, test_size=0.25, random_state=0
    )
    assert [len(np.unique(y[i])) for i in (train, val, test)] == [10, 5, 5]


def test_class_disjoint_split_reproducible_and_shuffled():
    y = np.repeat(np.arange(30), 4)
    a = class_disjoint_split(y, random_state=42)
    b = class_disjoint_split(y, random_state=42)
    c = class_disjoint_split(y, random_state=43)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(a, c))
    # Classes are shuffled, not taken in sorted order.
    assert set(y[a[0]]) != set(range(12))


def test_class_disjoint_split_strings_and_unlabeled():
    y = np.array(
        ["a", "b", "c", "d", "e", -1, "a", "b", "c", "d", "e", -1], dtype=object
    )
    train, val, test = class_disjoint_split(y, random_state=0)
    got = np.sort(np.concatenate([train, val, test]))
    np.testing.assert_array_equal(got, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10])
    assert [len(set(y[i])) for i in (train, val, test)] == [2, 1, 2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"train_size": 0.5, "val_size": 0.2, "test_size": 0.4},
        {"train_size": 0.4, "val_size": 0.2, "test_size": 0.3},
        {"train_size": 1.0, "val_size": 0.0, "test_size": 0.0},
        {"train_size": -0.2, "val_size": 0.6, "test_size": 0.6},
    ],
)
def test_class_disjoint_split_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        class_disjoint_split(np.repeat(np.arange(10), 2), **kwargs)


def test_class_disjoint_split_too_few_classes():
    with pytest.raises(ValueError, match="at least 3 classes"):
        class_disjoint_split(np.array([0, 1, 0, 1, -1]))
    with pytest.raises(ValueError, match="y is required"):
        class_disjoint_split(None)
