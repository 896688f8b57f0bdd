"""Tests for sklearn_mixedlp.metrics (retrieval metrics, NMI and the scorer)."""

import pickle
import sys

import numpy as np
import pytest
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from sklearn_mixedlp.metrics import (
    _iter_kneighbors,
    make_retrieval_scorer,
    map_at_r,
    nmi_score,
    precision_at_k,
    r_precision,
    recall_at_k,
)

METRICS = ["cosine", "euclidean"]
BACKENDS = ["numpy", "faiss"]


def _need(backend):
    if backend == "faiss":
        pytest.importorskip("faiss")


# ---------------------------------------------------------------------------
# Brute-force reference: dense N x N distances and python loops
# ---------------------------------------------------------------------------


def _distance_matrix(X, metric):
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    D = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            if metric == "cosine":
                ni, nj = np.linalg.norm(X[i]), np.linalg.norm(X[j])
                D[i, j] = 1.0 - float(X[i] @ X[j]) / (ni * nj)
            else:
                D[i, j] = float(np.sum((X[i] - X[j]) ** 2))
    return D


def _ranked(X, metric):
    """For every query, all other indices sorted by (distance, index)."""
    D = _distance_matrix(X, metric)
    n = D.shape[0]
    return [
        sorted((j for j in range(n) if j != i), key=lambda j: (D[i, j], j))
        for i in range(n)
    ]


def _brute_recall(ranked, y, k):
    hits = [any(y[j] == y[i] for j in nn[:k]) for i, nn in enumerate(ranked)]
    return sum(hits) / len(hits)


def _brute_precision(ranked, y, k):
    vals = [sum(y[j] == y[i] for j in nn[:k]) / k for i, nn in enumerate(ranked)]
    return sum(vals) / len(vals)


def _brute_r_precision(ranked, y):
    vals = []
    for i, nn in enumerate(ranked):
        R = sum(y[j] == y[i] for j in range(len(y))) - 1
        if R == 0:
            continue
        vals.append(sum(y[j] == y[i] for j in nn[:R]) / R)
    return sum(vals) / len(vals)


def _brute_map_at_r(ranked, y):
    vals = []
    for i, nn in enumerate(ranked):
        R = sum(y[j] == y[i] for j in range(len(y))) - 1
        if R == 0:
            continue
        n_hits, total = 0, 0.0
        for pos, j in enumerate(nn[:R], start=1):
            if y[j] == y[i]:
                n_hits += 1
                total += n_hits / pos
        vals.append(total / R)
    return sum(vals) / len(vals)


def _data(seed, n_samples=57, n_features=5):
    """Overlapping classes (non-trivial scores), one singleton class."""
    rng = np.random.RandomState(seed)
    y = rng.choice(4, size=n_samples, p=[0.4, 0.3, 0.2, 0.1])
    y[0] = 9  # a class with a single member
    centers = rng.normal(size=(10, n_features))
    X = centers[y] + rng.normal(scale=0.9, size=(n_samples, n_features))
    return X, y


# ---------------------------------------------------------------------------
# Agreement with the brute-force definitions
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_recall_and_precision_match_brute_force(metric, backend, seed):
    _need(backend)
    X, y = _data(seed)
    ranked = _ranked(X, metric)
    ks = [1, 2, 5, 10, len(y) - 1]
    rec = recall_at_k(X, y, k=ks, metric=metric, backend=backend)
    prec = precision_at_k(X, y, k=ks, metric=metric, backend=backend)
    assert list(rec) == ks and list(prec) == ks
    for k in ks:
        expected_rec = _brute_recall(ranked, y, k)
        expected_prec = _brute_precision(ranked, y, k)
        assert rec[k] == pytest.approx(expected_rec, abs=1e-12)
        assert prec[k] == pytest.approx(expected_prec, abs=1e-12)
        single = recall_at_k(X, y, k=k, metric=metric, backend=backend)
        assert isinstance(single, float)
        assert single == pytest.approx(expected_rec, abs=1e-12)
        single = precision_at_k(X, y, k=k, metric=metric, backend=backend)
        assert single == pytest.approx(expected_prec, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_r_precision_and_map_at_r_match_brute_force(metric, backend, seed):
    _need(backend)
    X, y = _data(seed)
    ranked = _ranked(X, metric)
    assert r_precision(X, y, metric=metric, backend=backend) == pytest.approx(
        _brute_r_precision(ranked, y), abs=1e-12
    )
    assert map_at_r(X, y, metric=metric, backend=backend) == pytest.approx(
        _brute_map_at_r(ranked, y), abs=1e-12
    )


def test_integer_grid_ties_broken_by_index_numpy():
    # Integer coordinates: many exact duplicates and distance ties, all
    # represented exactly in float64, so the tie rule is fully observable.
    rng = np.random.RandomState(3)
    X = rng.randint(0, 3, size=(40, 2)).astype(float)
    y = rng.randint(0, 3, size=40)
    ranked = _ranked(X, "euclidean")
    for k in [1, 4, 13]:
        got = np.concatenate(
            [
                ind
                for _, ind in _iter_kneighbors(
                    X,
                    k,
                    np.arange(40),
                    metric="euclidean",
                    batch_size=9,
                    backend="numpy",
                )
            ]
        )
        np.testing.assert_array_equal(got, [nn[:k] for nn in ranked])
        assert recall_at_k(X, y, k=k, metric="euclidean", backend="numpy") == (
            pytest.approx(_brute_recall(ranked, y, k))
        )
        assert precision_at_k(X, y, k=k, metric="euclidean", backend="numpy") == (
            pytest.approx(_brute_precision(ranked, y, k))
        )
    assert map_at_r(X, y, metric="euclidean", backend="numpy") == pytest.approx(
        _brute_map_at_r(ranked, y)
    )
    assert r_precision(X, y, metric="euclidean", backend="numpy") == pytest.approx(
        _brute_r_precision(ranked, y)
    )


# ---------------------------------------------------------------------------
# Chunking, backends, self-exclusion
# ---------------------------------------------------------------------------


def _all_metrics(X, y, **kw):
    return (
        recall_at_k(X, y, k=[1, 3, 8], **kw),
        precision_at_k(X, y, k=[1, 3, 8], **kw),
        r_precision(X, y, **kw),
        map_at_r(X, y, **kw),
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_chunked_equals_unchunked(metric, backend):
    _need(backend)
    X, y = _data(5, n_samples=83)
    chunked = _all_metrics(X, y, metric=metric, backend=backend, batch_size=7)
    unchunked = _all_metrics(X, y, metric=metric, backend=backend, batch_size=10_000)
    one_row = _all_metrics(X, y, metric=metric, backend=backend, batch_size=1)
    assert chunked == unchunked == one_row
    with config_context(working_memory=0.001):  # auto batch size -> 1 row
        assert _all_metrics(X, y, metric=metric, backend=backend) == unchunked


@pytest.mark.parametrize("metric", METRICS)
def test_numpy_and_faiss_agree(metric):
    pytest.importorskip("faiss")
    X, y = _data(7, n_samples=300, n_features=8)
    X = X.astype(np.float32)
    assert _all_metrics(X, y, metric=metric, backend="numpy") == _all_metrics(
        X, y, metric=metric, backend="faiss"
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_query_excluded_by_index_duplicates_count(metric, backend):
    _need(backend)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(12, 3))
    X[7] = X[2]  # an exact duplicate
    y = np.arange(12)
    y[7] = y[2]  # ... sharing the label; every other class is a singleton
    # Only queries 2 and 7 have a same-label item, and it is their
    # duplicate at distance 0: counting it gives 2 hits out of 12. Including
    # the query itself would give 12/12, excluding by distance 0/12.
    assert recall_at_k(X, y, k=1, metric=metric, backend=backend) == 2 / 12
    assert precision_at_k(X, y, k=1, metric=metric, backend=backend) == 2 / 12
    assert r_precision(X, y, metric=metric, backend=backend) == 1.0
    assert map_at_r(X, y, metric=metric, backend=backend) == 1.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("metric", METRICS)
def test_neighbours_exclude_query_among_many_duplicates(metric, backend):
    _need(backend)
    rng = np.random.RandomState(1)
    X = np.vstack(
        [np.tile(rng.normal(size=(1, 4)), (6, 1)), rng.normal(size=(9, 4)) + 5]
    )
    for k in [1, 2, 5]:
        blocks = list(
            _iter_kneighbors(
                X, k, np.arange(len(X)), metric=metric, batch_size=4, backend=backend
            )
        )
        queries = np.concatenate([q for q, _ in blocks])
        ind = np.concatenate([i for _, i in blocks])
        np.testing.assert_array_equal(queries, np.arange(len(X)))
        assert ind.shape == (len(X), k)
        for q, row in zip(queries, ind):
            assert q not in row
            assert len(set(row.tolist())) == k
            if q < 6:  # a copy: its nearest are other copies
                assert set(row.tolist()) <= set(range(6))


def test_ties_broken_by_index_order_numpy():
    # Query 0 at x=0 has items 1 and 2 both at distance 1: the lower index
    # comes first, whichever side it is on.
    for X in (
        np.array([[0.0], [1.0], [-1.0], [10.0], [20.0]]),
        np.array([[0.0], [-1.0], [1.0], [10.0], [20.0]]),
    ):
        ((_, ind),) = _iter_kneighbors(
            X, 2, np.array([0]), metric="euclidean", batch_size=None, backend="numpy"
        )
        np.testing.assert_array_equal(ind, [[1, 2]])
    X = np.array([[0.0], [1.0], [-1.0], [10.0], [20.0]])
    # Only item 2 shares query 0's label: q0 misses. Other queries: q1 -> 0
    # miss, q2 -> 0 hit, q3 -> 1 hit, q4 -> 3 hit. (4/5 if the tie went to 2.)
    assert (
        recall_at_k(X, [0, 1, 0, 1, 1], k=1, metric="euclidean", backend="numpy")
        == 3 / 5
    )
    # Only item 1 shares its label: q0 hits. q1 -> 0 hit, q2 -> 0 miss,
    # q3 -> 1 miss, q4 -> 3 hit. (2/5 if the tie went to 2.)
    assert (
        recall_at_k(X, [0, 0, 1, 1, 1], k=1, metric="euclidean", backend="numpy")
        == 3 / 5
    )


# ---------------------------------------------------------------------------
# Hand-checkable examples
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_recall_precision(backend):
    _need(backend)
    # points 0, 1, 3, 7 with labels 0, 0, 1, 1. Neighbour labels by query:
    #   q0 (x=0): 1, 3, 7 -> [0, 1, 1]     q1 (x=1): 0, 3, 7 -> [0, 1, 1]
    #   q2 (x=3): 1, 0, 7 -> [0, 0, 1]     q3 (x=7): 3, 1, 0 -> [1, 0, 0]
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    y = np.array([0, 0, 1, 1])
    kw = {"metric": "euclidean", "backend": backend}
    assert recall_at_k(X, y, k=[1, 2, 3], **kw) == {1: 0.75, 2: 0.75, 3: 1.0}
    assert precision_at_k(X, y, k=[1, 2, 3], **kw) == pytest.approx(
        {1: 3 / 4, 2: (1 / 2 + 1 / 2 + 0 + 1 / 2) / 4, 3: (1 / 3) * 4 / 4}
    )
    assert r_precision(X, y, **kw) == 0.75  # R = 1: same as recall@1
    assert map_at_r(X, y, **kw) == 0.75


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_map_at_r(backend):
    _need(backend)
    # x = 0, 1, 2.4, 4, 6 with labels 0, 1, 0, 0, 1.
    #   q0: R=2, neighbours 1, 2        rel [0, 1] -> RP 1/2, AP (1/2)(1/2) = 1/4
    #   q1: R=1, neighbour  0           rel [0]    -> RP 0,   AP 0
    #   q2: R=2, neighbours 1, 3        rel [0, 1] -> RP 1/2, AP 1/4
    #   q3: R=2, neighbours 2, 4        rel [1, 0] -> RP 1/2, AP (1/2)(1) = 1/2
    #   q4: R=1, neighbour  3           rel [0]    -> RP 0,   AP 0
    X = np.array([[0.0], [1.0], [2.4], [4.0], [6.0]])
    y = np.array([0, 1, 0, 0, 1])
    kw = {"metric": "euclidean", "backend": backend}
    assert r_precision(X, y, **kw) == pytest.approx(1.5 / 5)
    assert map_at_r(X, y, **kw) == pytest.approx(1.0 / 5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hand_computed_cosine(backend):
    _need(backend)
    # Angles 0, 10, 80, 90, 345 degrees at very different radii: cosine
    # ignores the radius. Nearest by angle: 0->10, 10->0, 80->90, 90->80,
    # 345->0 (15 degrees away; 10 is 25 away).
    angles = np.deg2rad([0, 10, 80, 90, 345])
    radii = np.array([1.0, 50.0, 0.1, 7.0, 3.0])
    X = radii[:, None] * np.c_[np.cos(angles), np.sin(angles)]
    y = np.array([0, 1, 1, 1, 0])
    # hits: q0 (->1, label 1) no; q1 (->0) no; q2 (->3) yes; q3 (->2) yes;
    # q4 (->0, label 0) yes.
    assert recall_at_k(X, y, k=1, metric="cosine", backend=backend) == 3 / 5
    # Euclidean sees the radii: the nearest of q2 (radius 0.1) is q0.
    assert recall_at_k(X, y, k=1, metric="euclidean", backend=backend) != 3 / 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_cosine_ignores_row_scale(backend):
    _need(backend)
    X, y = _data(2)
    scale = np.random.RandomState(0).uniform(0.01, 100, size=(len(X), 1))
    kw = {"metric": "cosine", "backend": backend}
    assert _all_metrics(X * scale, y, **kw) == _all_metrics(X, y, **kw)


def test_string_labels_and_float32():
    X, y = _data(4)
    names = np.array(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])[y]
    kw = {"metric": "euclidean", "backend": "numpy"}
    assert _all_metrics(X, names, **kw) == _all_metrics(X, y, **kw)
    assert _all_metrics(X.astype(np.float32), y, **kw) == _all_metrics(X, y, **kw)


# ---------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------

_X, _y = _data(0, n_samples=10)


@pytest.mark.parametrize(
    "func, kwargs, error, match",
    [
        (recall_at_k, {"k": 0}, ValueError, "k must be >= 1"),
        (precision_at_k, {"k": -2}, ValueError, "k must be >= 1"),
        (recall_at_k, {"k": 10}, ValueError, "smaller than n_samples=10"),
        (precision_at_k, {"k": [1, 3, 10]}, ValueError, "smaller than n_samples"),
        (recall_at_k, {"k": []}, ValueError, "non-empty"),
        (recall_at_k, {"k": 1.5}, TypeError, "integer"),
        (recall_at_k, {"k": True}, TypeError, "integer"),
        (recall_at_k, {"metric": "manhattan"}, ValueError, "Unknown metric"),
        (map_at_r, {"metric": "dot"}, ValueError, "Unknown metric"),
        (precision_at_k, {"backend": "annoy", "k": 2}, ValueError, "Unknown backend"),
        (r_precision, {"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_invalid_parameters(func, kwargs, error, match):
    with pytest.raises(error, match=match):
        func(_X, _y, **kwargs)


@pytest.mark.parametrize(
    "func", [recall_at_k, precision_at_k, r_precision, map_at_r, nmi_score]
)
def test_invalid_data(func):
    kw = {"k": 1} if func in (recall_at_k, precision_at_k) else {}
    with pytest.raises(ValueError, match="minimum of 2"):
        func(_X[:1], _y[:1], **kw)
    X_nan = _X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        func(X_nan, _y, **kw)
    X_inf = _X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        func(X_inf, _y, **kw)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        func(_X, _y[:-1], **kw)


@pytest.mark.parametrize("func", [r_precision, map_at_r])
def test_r_metrics_need_a_class_with_two_members(func):
    with pytest.raises(ValueError, match="single sample"):
        func(_X, np.arange(len(_X)))
    # a single non-singleton class is enough: only its queries count
    X = _X.copy()
    X[4] = X[1] + 1e-3  # the only same-class pair are mutual nearest neighbours
    y = np.arange(len(X))
    y[4] = y[1]
    assert func(X, y, backend="numpy") == 1.0
    y[4] = y[2]  # now a pair that is far apart
    assert func(X, y, backend="numpy") < 1.0


def test_missing_faiss(monkeypatch):
    X, y = _data(0)
    expected = recall_at_k(X, y, k=[1, 4], backend="numpy")
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(ImportError, match=r"pip install faiss-cpu .*\[faiss\]"):
        recall_at_k(X, y, backend="faiss")
    with pytest.raises(ImportError, match="backend='faiss'"):
        map_at_r(X, y, backend="faiss")
    assert recall_at_k(X, y, k=[1, 4], backend="auto") == expected


# ---------------------------------------------------------------------------
# NMI
# ---------------------------------------------------------------------------


def test_nmi_matches_kmeans_and_sklearn():
    X, y = _data(0, n_samples=80)
    labels = KMeans(n_clusters=5, n_init=10, random_state=3).fit_predict(X)
    expected = normalized_mutual_info_score(y, labels)
    assert nmi_score(X, y, random_state=3) == pytest.approx(expected)
    labels = KMeans(n_clusters=2, n_init=10, random_state=3).fit_predict(X)
    expected = normalized_mutual_info_score(y, labels)
    assert nmi_score(X, y, n_clusters=2, random_state=3) == pytest.approx(expected)
    names = np.array(list("abcdefghij"))[y]
    assert nmi_score(X, names, random_state=3) == nmi_score(X, y, random_state=3)


def test_nmi_separated_vs_random_labels():
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(3), 20)
    X = np.array([[0, 0], [20, 0], [0, 20]])[y] + rng.normal(size=(60, 2))
    good = nmi_score(X, y, random_state=0)
    shuffled = nmi_score(X, rng.permutation(y), random_state=0)
    assert good > 0.99
    assert shuffled < 0.2


def test_nmi_invalid_n_clusters():
    with pytest.raises(ValueError, match="n_clusters"):
        nmi_score(_X, _y, n_clusters=len(_X) + 1)
    with pytest.raises(ValueError, match="n_clusters"):
        nmi_score(_X, _y, n_clusters=0)


# ---------------------------------------------------------------------------
# Scorer
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600], y[:600]


_SCORER_CASES = [
    ("recall", recall_at_k, {"k": 1}),
    ("precision", precision_at_k, {"k": 5, "backend": "numpy"}),
    ("map_at_r", map_at_r, {}),
    ("r_precision", r_precision, {"metric": "euclidean"}),
    ("nmi", nmi_score, {"random_state": 0}),
]


@pytest.mark.parametrize("name, func, kwargs", _SCORER_CASES)
def test_scorer_ignores_unlabeled_rows(digits, name, func, kwargs):
    X, y = digits
    pca = PCA(n_components=2).fit(X)
    y_semi = y.copy()
    unlabeled = np.random.RandomState(0).rand(len(y)) < 0.4
    y_semi[unlabeled] = -1
    scorer_kwargs = dict(kwargs)
    if "metric" in scorer_kwargs:
        scorer_kwargs["distance"] = scorer_kwargs.pop("metric")
    scorer = make_retrieval_scorer(name, **scorer_kwargs)
    score = scorer(pca, X, y_semi)
    Z = pca.transform(X)
    assert score == pytest.approx(func(Z[~unlabeled], y[~unlabeled], **kwargs))
    assert score == pickle.loads(pickle.dumps(scorer))(pca, X, y_semi)
    assert repr(scorer).startswith(f"make_retrieval_scorer(metric={name!r}")


def test_scorer_in_cross_val_score(digits):
    X, y = digits
    y_semi = y.copy()
    y_semi[np.random.RandomState(1).rand(len(y)) < 0.3] = -1
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    scorer = make_retrieval_scorer("recall", k=3)
    scores = cross_val_score(PCA(n_components=2), X, y_semi, scoring=scorer, cv=cv)
    expected = []
    for train, test in cv.split(X):
        Z = PCA(n_components=2).fit(X[train]).transform(X[test])
        keep = y_semi[test] != -1
        expected.append(recall_at_k(Z[keep], y_semi[test][keep], k=3))
    np.testing.assert_allclose(scores, expected)

    search = GridSearchCV(PCA(), {"n_components": [2, 16]}, scoring=scorer, cv=cv)
    search.fit(X, y_semi)
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_params_ == search.cv_results_["params"][best]
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"][0], np.mean(scores)
    )


def test_scorer_object_labels_with_unlabeled_marker(digits):
    X, y = digits
    pca = PCA(n_components=3).fit(X)
    y_obj = np.array([f"d{v}" for v in y], dtype=object)
    y_obj[::4] = -1
    keep = np.ones(len(y), dtype=bool)
    keep[::4] = False
    scorer = make_retrieval_scorer("precision", k=4)
    expected = precision_at_k(pca.transform(X)[keep], y[keep], k=4)
    assert scorer(pca, X, y_obj) == pytest.approx(expected)


def test_scorer_invalid_arguments():
    with pytest.raises(ValueError, match="Unknown retrieval scorer metric"):
        make_retrieval_scorer("accuracy")
    with pytest.raises(TypeError):
        make_retrieval_scorer("recall", n_neighbors=3)
    with pytest.raises(TypeError, match="single integer"):
        make_retrieval_scorer("recall", k=[1, 5])
    with pytest.raises(ValueError, match="distance"):
        make_retrieval_scorer("nmi", distance="cosine")
    with pytest.raises(ValueError, match="Unknown metric"):
        make_retrieval_scorer("recall", distance="hamming")
    with pytest.raises(ValueError, match="needs the labels"):
        make_retrieval_scorer("recall")(PCA(n_components=2).fit(_X), _X, None)
