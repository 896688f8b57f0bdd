"""``fit_distributed`` on a local Dask cluster against the single-machine fit.

The distributed fit searches the neighbours shard by shard and solves on
row blocks; on the same rows it must give the single-machine
``MixedLabelPropagation.fit`` (the same exact neighbours and graph, the
solution to the solver's tolerance).
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("faiss")

import dask.array as da  # noqa: E402

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation  # noqa: E402
from sklearn_mixedlp import distributed as dist  # noqa: E402
from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False,
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    """1,200 rows of 6 classes, one zero row, 4 labels per class."""
    X, y = make_sphere_mixture(1200, n_classes=6, n_features=12, random_state=0)
    X[17] = 0.0  # an isolated row: no neighbours, uniform output
    return X, y, mask_labels(y, 4, random_state=0)


def compare(reference, fitted, atol=1e-6):
    np.testing.assert_array_equal(fitted.classes_, reference.classes_)
    np.testing.assert_allclose(
        fitted.label_distributions_, reference.label_distributions_, atol=atol
    )
    np.testing.assert_array_equal(fitted.transduction_, reference.transduction_)
    np.testing.assert_allclose(fitted.confidence_, reference.confidence_, atol=1e-4)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"laplacian": "combinatorial"},
        {"kernel": "power", "gamma": 3.0, "source": "poisson"},
        {"class_mass_normalization": False, "mu": 0.1},
    ],
    ids=["default", "combinatorial", "power-poisson", "no-cmn"],
)
@pytest.mark.parametrize("chunks", [400, (600, 5, 595)], ids=["even", "tiny-shard"])
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
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, distributed.Client(cluster) as client:
            fitted = dist.fit_distributed(
                MixedLabelPropagation(n_neighbors=8, tol=1e-9),
                da.from_array(X, chunks=(600, -1)), y, client=client,
            )
        reference = MixedLabelPropagation(n_neighbors=8, tol=1e-9).fit(X, y)
    compare(reference, fitted)


def test_nan_in_the_last_row_is_refused_before_the_search(client, data, monkeypatch):
    X, _, y = data
    X = X.copy()
    X[-1, -1] = np.nan

    def search(*args):
        raise AssertionError("the neighbour search started")

    monkeypatch.setattr(dist, "_shard_index", search)
    with pytest.raises(ValueError, match="NaN or infinity.*row 1199, column 11"):
        dist.fit_distributed(
            MixedLabelPropagation(), da.from_array(X, chunks=(500, -1)), y,
            client=client,
        )


@pytest.mark.parametrize(
    "estimator, X, y, error, match",
    [
        (HardNegativeLP(), "dask", "y", TypeError, "HardNegativeLP"),
        (MixedLabelPropagation("mom"), "dask", "y", ValueError, "negatives=None"),
        (MixedLabelPropagation(knn_backend="exact"), "dask", "y", ValueError, "faiss"),
        (MixedLabelPropagation(), "numpy", "y", TypeError, "dask.array"),
        (MixedLabelPropagation(), "dask", "short", ValueError, "one label per row"),
        (MixedLabelPropagation(n_neighbors=0), "dask", "y", ValueError, "n_neighbors"),
    ],
)
def test_bad_inputs_raise_clear_errors(client, data, estimator, X, y, error, match):
    X_, _, y_ = data
    X = da.from_array(X_, chunks=(600, -1)) if X == "dask" else X_
    y = y_ if y == "y" else y_[:-1]
    with pytest.raises(error, match=match):
        dist.fit_distributed(estimator, X, y, client=client)
