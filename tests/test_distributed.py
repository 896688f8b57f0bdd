"""``fit_distributed`` on a local Dask cluster against the single-machine fit.

The distributed fit searches the neighbours shard by shard and solves on
row blocks; on the same rows it must give the single-machine
``MixedLabelPropagation.fit`` (the same exact neighbours and graph, the
solution to the solver's tolerance).
"""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("faiss")

import dask.array as da  # noqa: E402

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation  # noqa: E402
from sklearn_mixedlp import distributed as dist  # noqa: E402
from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels  # noqa: E402

from .conftest import touching_clusters  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False,
            dashboard_address=":0",
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    """1,200 rows of 6 classes and of several norms, one zero row, 4 labels
    per class."""
    X, y = make_sphere_mixture(1200, n_classes=6, n_features=12, random_state=0)
    # rows of several norms: with the default lift a zero row is the pole of
    # the lifted sphere, which rows of one norm would all tie for
    X *= np.random.default_rng(0).uniform(0.5, 2.0, size=(1200, 1))
    X[17] = 0.0  # isolated with lift=0 (no neighbours, uniform output)
    return X, y, mask_labels(y, 4, random_state=0)


def compare(reference, fitted, atol=1e-6):
    np.testing.assert_array_equal(fitted.classes_, reference.classes_)
    np.testing.assert_allclose(
        fitted.label_distributions_, reference.label_distributions_, atol=atol
    )
    np.testing.assert_array_equal(fitted.transduction_, reference.transduction_)
    np.testing.assert_allclose(fitted.confidence_, reference.confidence_, atol=1e-4)


@pytest.mark.parametrize(
    "params, chunks",
    [
        ({}, 400),
        ({}, (600, 5, 595)),
        ({"laplacian": "combinatorial"}, (600, 5, 595)),
        ({"kernel": "power", "gamma": 3.0, "source": "poisson"}, 400),
        ({"class_mass_normalization": False, "mu": 0.1}, 400),
        ({"class_prior": [3, 1, 1, 1, 1, 2]}, 400),
    ],
    ids=["default", "tiny-shard", "combinatorial", "power-poisson", "no-cmn", "prior"],
)
def test_same_transduction_as_one_machine(client, data, params, chunks):
    X, _, y = data
    params = dict(n_neighbors=8, tol=1e-9, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the zero row
        reference = MixedLabelPropagation(knn_backend="faiss", **params).fit(X, y)
        fitted = dist.fit_distributed(
            MixedLabelPropagation(**params), da.from_array(X, chunks=(chunks, -1)), y,
            client=client,
        )
    compare(reference, fitted)
    assert fitted.n_shards_ == len(da.from_array(X, chunks=(chunks, -1)).chunks[0])
    assert fitted.n_iter_ > 0 and fitted.knn_backend_ == "faiss"
    assert set(fitted.fit_stages_) >= {"neighbors", "graph", "label_propagation"}


def test_auto_neighbors_as_one_machine(client, data):
    """n_neighbors='auto' resolves to the same k from the labels as on one
    machine (1,200 rows, 24 labels: sqrt(50) -> 10)."""
    X, _, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = MixedLabelPropagation(
            n_neighbors="auto", knn_backend="faiss", tol=1e-9
        ).fit(X, y)
        fitted = dist.fit_distributed(
            MixedLabelPropagation(n_neighbors="auto", tol=1e-9),
            da.from_array(X, chunks=(400, -1)), y, client=client,
        )
    assert fitted.n_neighbors_ == reference.n_neighbors_ == 10
    compare(reference, fitted)


@pytest.mark.parametrize(
    "params",
    [
        {"n_rounds": 2},
        {"mining": "agreement", "n_rounds": 2},
        {"laplacian": "combinatorial", "n_rounds": 2},
        {"class_mass_normalization": False, "beta": 0.5, "n_rounds": 1},
        {"class_prior": [3, 1, 1, 1, 1, 2], "n_rounds": 2},
        {"view_combination": "sum", "n_rounds": 2},
    ],
    ids=["two_view", "agreement", "combinatorial", "no-cmn", "prior", "sum"],
)
def test_hard_negative_lp_same_transduction(client, data, params):
    """The mining rounds (the views, the linear discriminant, the agreement
    weights on the cut graph) on the shards, against one machine."""
    X, _, y = data
    params = dict(n_neighbors=8, tol=1e-9, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = HardNegativeLP(knn_backend="faiss", **params).fit(X, y)
        fitted = dist.fit_distributed(
            HardNegativeLP(**params), da.from_array(X, chunks=(500, -1)), y,
            client=client,
        )
    compare(reference, fitted, atol=1e-5)
    assert fitted.mining_ == reference.mining_
    assert set(fitted.fit_stages_) >= {"mining", "mixed_solve"}


def test_hard_negative_lp_wide_features(client):
    """More columns than the linear view keeps: the projection is fitted on
    the same sample of rows as on one machine."""
    X, y = make_sphere_mixture(900, n_classes=5, n_features=80, random_state=1)
    y = mask_labels(y, 4, random_state=1)
    params = dict(n_neighbors=8, tol=1e-9, random_state=0, n_rounds=2)
    reference = HardNegativeLP(knn_backend="faiss", **params).fit(X, y)
    fitted = dist.fit_distributed(
        HardNegativeLP(**params), da.from_array(X, chunks=(400, -1)), y, client=client
    )
    compare(reference, fitted, atol=1e-5)


@pytest.mark.parametrize("n_features", [12, 80])
def test_lift_as_one_machine(client, n_features):
    """lift: the root-mean-square row norm reduced over the shards, the
    lifted rows in the graph and in the linear view (projected when wide)."""
    X, y = make_sphere_mixture(900, n_classes=5, n_features=n_features, random_state=2)
    X = X * np.random.default_rng(2).uniform(0.3, 3.0, size=(900, 1))
    X[17] = 0.0  # no longer isolated: the lifted row is the pole
    y = mask_labels(y, 4, random_state=2)
    for est in (
        MixedLabelPropagation(n_neighbors=8, tol=1e-9, lift=1.0),
        HardNegativeLP(n_neighbors=8, tol=1e-9, lift=1.0, random_state=0),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the lifted zero row is a point
            reference = clone(est).set_params(knn_backend="faiss").fit(X, y)
        fitted = dist.fit_distributed(
            clone(est), da.from_array(X, chunks=(400, -1)), y, client=client
        )
        assert fitted.lift_height_ == pytest.approx(reference.lift_height_, rel=1e-12)
        assert reference.lift_height_ > 0
        compare(reference, fitted, atol=1e-5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cosine = MixedLabelPropagation(n_neighbors=8, lift=0.0, knn_backend="faiss").fit(X, y)
    assert any("zero norm" in str(w.message) for w in caught)  # isolated without the lift
    assert abs(cosine.affinity_ - reference.affinity_).max() > 0.1


def test_rows_of_one_norm_are_not_lifted_as_one_machine(client):
    """Rows of one norm: the smallest and largest norms reduced over the
    shards, no lift (lift_height_ 0), as on one machine."""
    X, y = make_sphere_mixture(900, n_classes=5, n_features=12, random_state=3)
    y = mask_labels(y, 4, random_state=3)
    est = MixedLabelPropagation(n_neighbors=8, tol=1e-9, lift=0.5)

    def fit_both(X):
        """The fit on one machine and on shards of 300 rows."""
        reference = clone(est).set_params(knn_backend="faiss").fit(X, y)
        fitted = dist.fit_distributed(
            clone(est), da.from_array(X, chunks=(300, -1)), y, client=client
        )
        return reference, fitted

    reference, fitted = fit_both(X)
    assert fitted.lift_height_ == reference.lift_height_ == 0.0
    compare(reference, fitted)
    # one row of another norm, in the last shard: both lift
    X = X.copy()
    X[850] *= 1.5
    reference, fitted = fit_both(X)
    assert fitted.lift_height_ == pytest.approx(reference.lift_height_, rel=1e-12)
    assert reference.lift_height_ > 0
    compare(reference, fitted, atol=1e-5)


def test_cut_graph_orphans_are_uniform(client):
    """Two touching clusters, one labeled class in each, and a strong cut
    (beta=50): the cut graph leaves some rows without a labeled row in
    their part of it (the graph itself is connected); they get the uniform
    distribution, as on one machine."""
    X, y = touching_clusters()
    params = dict(n_neighbors=6, tol=1e-9, n_rounds=2, beta=50.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = HardNegativeLP(knn_backend="faiss", **params).fit(X, y)
        fitted = dist.fit_distributed(
            HardNegativeLP(**params), da.from_array(X, chunks=(250, -1)), y,
            client=client,
        )
    assert (reference.confidence_ == 0).sum() > 10  # the case is exercised
    compare(reference, fitted, atol=1e-5)


def test_string_labels_and_default_client(client, data):
    X, y_true, y = data
    names = np.array(list("abcdef"), dtype=object)
    y_text = np.where(y >= 0, names[np.clip(y, 0, None)], None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        reference = MixedLabelPropagation(n_neighbors=8).fit(X, y_text)
        fitted = dist.fit_distributed(  # the current client
            MixedLabelPropagation(n_neighbors=8), da.from_array(X, chunks=(500, -1)),
            y_text,
        )
    compare(reference, fitted, atol=1e-5)
    assert (fitted.transduction_ == names[y_true]).mean() > 0.9
    with pytest.raises(ValueError, match="fit_distributed"):
        fitted.predict(X[:3])


def test_processes(data):
    """Workers in their own processes: everything a task returns pickles."""
    X, _, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster, distributed.Client(cluster) as client:
            fitted = dist.fit_distributed(
                MixedLabelPropagation(n_neighbors=8, tol=1e-9),
                da.from_array(X, chunks=(600, -1)), y, client=client,
            )
        reference = MixedLabelPropagation(n_neighbors=8, tol=1e-9).fit(X, y)
    compare(reference, fitted)


@pytest.mark.parametrize("lift", [0.0, 1.0])  # with a lift: in the norm reduction
# the first shard holds the data's zero row, which warns before the last is read
@pytest.mark.filterwarnings("ignore:1 row\\(s\\) of X have zero norm:UserWarning")
def test_nan_in_the_last_row_is_refused_before_the_search(client, data, monkeypatch, lift):
    X, _, y = data
    X = X.copy()
    X[-1, -1] = np.nan

    def search(*args):
        raise AssertionError("the neighbour search started")

    monkeypatch.setattr(dist, "_shard_index", search)
    with pytest.raises(ValueError, match="NaN or infinity.*row 1199, column 11"):
        dist.fit_distributed(
            MixedLabelPropagation(lift=lift), da.from_array(X, chunks=(500, -1)), y,
            client=client,
        )


@pytest.mark.parametrize(
    "estimator, X, y, error, match",
    [
        (HardNegativeLP("hard"), "dask", "y", ValueError, "mining"),
        (HardNegativeLP(dissimilarity_loss="mixed"), "dask", "y", ValueError, "cut"),
        ("LabelSpreading", "dask", "y", TypeError, "LabelSpreading"),
        (MixedLabelPropagation("mom"), "dask", "y", ValueError, "negatives=None"),
        (MixedLabelPropagation(knn_backend="exact"), "dask", "y", ValueError, "faiss"),
        (MixedLabelPropagation(), "numpy", "y", TypeError, "dask.array"),
        (MixedLabelPropagation(), "dask", "short", ValueError, "one label per row"),
        (MixedLabelPropagation(n_neighbors=0), "dask", "y", ValueError, "n_neighbors"),
        (MixedLabelPropagation(), "empty-shard", "y", ValueError, "every chunk"),
        (MixedLabelPropagation(), "dask", "unlabeled", ValueError, "label"),
    ],
)
def test_bad_inputs_raise_clear_errors(client, data, estimator, X, y, error, match):
    X_, _, y_ = data
    if estimator == "LabelSpreading":
        from sklearn.semi_supervised import LabelSpreading

        estimator = LabelSpreading()
    if X == "empty-shard":
        X = da.from_array(X_, chunks=((600, 0, 600), (X_.shape[1],)))
    else:
        X = da.from_array(X_, chunks=(600, -1)) if X == "dask" else X_
    y = {"y": y_, "short": y_[:-1], "unlabeled": np.full_like(y_, -1)}[y]
    with pytest.raises(error, match=match):
        dist.fit_distributed(estimator, X, y, client=client)
