"""Memory-mapped features (``np.load(path, mmap_mode='r')``).

A float32 or float64 file is read in place: the fit sees the mapped rows
themselves, not a copy, and gives the same result as the same rows in
memory. A file that could not be read in place (another dtype), that holds
a NaN in its last row, or that is truncated is refused with a clear error
that names the problem, before the neighbour search starts.
"""

import numpy as np
import pytest

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp import _cli, _label_propagation
from sklearn_mixedlp._graph import LiftedRows
from sklearn_mixedlp._negatives import discriminant_features, linear_discriminant_proba
from sklearn_mixedlp.datasets import make_sphere_mixture, mask_labels

from .conftest import record_calls

ESTIMATORS = [
    pytest.param(MixedLabelPropagation, id="lp"),
    pytest.param(HardNegativeLP, id="hard"),
]


@pytest.fixture
def features(tmp_path):
    """600 rows of 4 classes (float32) saved to ``X.npy``, 5 labels per class."""
    X, y = make_sphere_mixture(600, n_classes=4, n_features=16, random_state=0)
    X = X.astype(np.float32)
    path = tmp_path / "X.npy"
    np.save(path, X)
    return path, X, mask_labels(y, 5, random_state=0)


def memory_mapped(a):
    """Whether ``a`` is a :class:`numpy.memmap` or a view of one."""
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return False


@pytest.fixture
def no_search(monkeypatch):
    """The neighbour search fails the test if it is reached."""

    def search(*args, **kwargs):
        raise AssertionError("the neighbour search started")

    monkeypatch.setattr(_label_propagation, "search_neighbors", search)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lift", [0.0, 0.5])  # lifted as they are read
def test_float_memmap_is_read_in_place(features, tmp_path, monkeypatch, Est, dtype, lift):
    path, X, y = features
    X = X.astype(dtype)
    if lift:
        # rows of several norms (rows of one norm are not lifted)
        X *= np.random.default_rng(0).uniform(0.5, 2.0, size=(len(X), 1)).astype(dtype)
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    calls = record_calls(monkeypatch, _label_propagation._BaseMixedLP, "_build_graph")
    mapped = Est(n_neighbors=10, lift=lift, random_state=0).fit(Xm, y)
    # the graph is built from the mapped rows themselves, not from a copy
    rows = calls[0][1]
    if lift:
        assert isinstance(rows, LiftedRows)
        rows = rows.X
    assert rows.dtype == dtype and memory_mapped(rows)
    assert np.shares_memory(rows, Xm)
    in_memory = Est(n_neighbors=10, lift=lift, random_state=0).fit(np.array(X), y)
    np.testing.assert_array_equal(mapped.transduction_, in_memory.transduction_)
    np.testing.assert_allclose(
        mapped.label_distributions_, in_memory.label_distributions_, atol=1e-12
    )


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.uint8])
def test_memmap_that_is_not_float32_or_float64_is_refused(
    features, no_search, Est, dtype
):
    path, X, y = features
    np.save(path, (X * 100).astype(dtype))
    Xm = np.load(path, mmap_mode="r")
    with pytest.raises(ValueError, match=f"memory-mapped.*{np.dtype(dtype).name}"):
        Est(n_neighbors=10).fit(Xm, y)
    with pytest.raises(ValueError, match="X.npy"):
        Est(n_neighbors=10).fit(Xm, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_nan_in_the_last_row_is_refused_before_the_search(
    features, no_search, Est
):
    path, X, y = features
    X[-1, -1] = np.nan
    np.save(path, X)
    with pytest.raises(ValueError, match="NaN"):
        Est(n_neighbors=10).fit(np.load(path, mmap_mode="r"), y)


def test_discriminant_features_keep_float32_rows():
    """The second view of the mining reads float32 rows without a float64
    copy and gives the float64 probabilities."""
    rng = np.random.default_rng(0)
    V = rng.normal(size=(500, 12)).astype(np.float32)
    labels = rng.integers(0, 3, 500)
    weights = rng.uniform(0, 1, 500)
    D = discriminant_features(V, 3)
    assert D.dtype == np.float32 and np.shares_memory(D, V)
    Q32 = linear_discriminant_proba(D, labels, weights, 3)
    Q64 = linear_discriminant_proba(V.astype(np.float64), labels, weights, 3)
    np.testing.assert_allclose(Q32, Q64, rtol=1e-10, atol=1e-12)
    assert discriminant_features(V.astype(np.int64), 3).dtype == np.float64


# -- the command line --------------------------------------------------------


def write_labels(tmp_path, y):
    path = tmp_path / "labels.npy"
    np.save(path, y)
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cli_maps_a_npy_file(features, tmp_path, capsys, dtype):
    path, X, y = features
    X = X.astype(dtype)
    np.save(path, X)
    loaded, _ = _cli.load_features(str(path))
    assert loaded.dtype == dtype and memory_mapped(loaded)
    np.testing.assert_array_equal(loaded, X)
    out = tmp_path / "pred.npy"
    code = _cli.main(
        [str(path), "--labels", str(write_labels(tmp_path, y)), "-o", str(out),
         "--n-neighbors", "10", "--progress"]
    )
    assert code == 0
    err = capsys.readouterr().err
    # a bar for the neighbour search and one for each solve
    assert "neighbours" in err and "conjugate gradient" in err
    expected = HardNegativeLP(n_neighbors=10).fit(X, y).transduction_
    np.testing.assert_array_equal(np.load(out), expected)


def test_cli_no_progress_bar_unless_asked(features, tmp_path, capsys):
    path, X, y = features
    out = tmp_path / "pred.npy"
    args = [str(path), "--labels", str(write_labels(tmp_path, y)), "-o", str(out),
            "--n-neighbors", "10"]
    assert _cli.main(args) == 0  # stderr is not a terminal here
    assert "conjugate gradient" not in capsys.readouterr().err
    assert _cli.main([*args, "--progress", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("cut", [1, 64, 2399])
def test_cli_truncated_npy_is_a_clear_error(features, tmp_path, capsys, cut):
    path, X, y = features
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    with pytest.raises(ValueError, match=r"X\.npy.*truncated.*600 x 16"):
        _cli.load_features(str(path))
    out = tmp_path / "pred.csv"
    code = _cli.main([str(path), "--labels", str(write_labels(tmp_path, y)), "-o", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "X.npy" in err and "truncated" in err
    assert not out.exists()


def test_cli_nan_in_the_last_row_names_it(features, tmp_path, capsys):
    path, X, y = features
    X[-1, 3] = np.nan
    np.save(path, X)
    with pytest.raises(ValueError, match="row index 599, column index 3"):
        _cli.load_features(str(path))


def test_cli_integer_npy_is_converted_in_memory(features, tmp_path):
    """An integer file is not read in place by the estimators (see above):
    the command line converts it to float64 in memory, as before."""
    path, X, y = features
    np.save(path, np.round(X * 1000).astype(np.int32))
    loaded, _ = _cli.load_features(str(path))
    assert loaded.dtype == np.float64 and not memory_mapped(loaded)
    np.testing.assert_array_equal(loaded, np.round(X * 1000))


# -- the memory of the outputs -------------------------------------------------


def test_row_hashes_read_float32_rows_without_a_float64_copy():
    """The training rows' hashes (which let predict find them again) widen
    float32 rows chunk by chunk: equal to the hashes of the float64 rows,
    with a traced peak far below a float64 copy of X."""
    import tracemalloc

    from sklearn_mixedlp._label_propagation import _row_hashes

    X = np.random.default_rng(0).normal(size=(200_000, 64)).astype(np.float32)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        hashes = _row_hashes(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < X.size * 8 / 2  # a float64 copy would be X.size * 8 bytes
    np.testing.assert_array_equal(hashes, _row_hashes(X.astype(np.float64)))
    assert np.unique(hashes).size == X.shape[0]


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_float32_features_give_float32_distributions(features, Est):
    """The distributions keep the precision of the features (a 10M x 100
    float64 block would take 8 GB): float32 rows give float32
    label_distributions_ and predict_proba, equal to those of the same rows
    in float64 up to float32 rounding."""
    _, X, y = features
    est32 = Est(n_neighbors=10, random_state=0).fit(X, y)
    est64 = Est(n_neighbors=10, random_state=0).fit(X.astype(np.float64), y)
    assert est32.label_distributions_.dtype == np.float32
    assert est64.label_distributions_.dtype == np.float64
    np.testing.assert_allclose(
        est32.label_distributions_, est64.label_distributions_, atol=1e-5
    )
    np.testing.assert_array_equal(est32.transduction_, est64.transduction_)
    new = X[:20] + 0.01
    assert est32.predict_proba(new).dtype == np.float32
    np.testing.assert_allclose(
        est32.predict_proba(new), est64.predict_proba(new.astype(np.float64)), atol=1e-5
    )
