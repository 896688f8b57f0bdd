"""Small shared helpers: optional imports and class-distribution utilities."""

import contextlib
import contextvars
import glob
import importlib
import importlib.util
import numbers
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Optional dependency -> (the pip requirement that provides it, the extra
# of this package that lists it).
_EXTRAS = {
    "faiss": ("faiss-cpu", "faiss"),
    "pynndescent": ("pynndescent", "pynndescent"),
    "torch": ("torch", "torch"),
    "numba": ("numba", "numba"),
    "dask": ("dask[distributed]", "distributed"),
    "distributed": ("dask[distributed]", "distributed"),
    "matplotlib": ("matplotlib", "docs"),
}
_CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


_PROGRESS = contextvars.ContextVar("sklearn_mixedlp_progress", default=False)


@contextlib.contextmanager
def progress_bars(enabled=True):
    """Show a progress bar (tqdm, on stderr) for each long stage of the fits
    run inside the block: the neighbour search (by chunks of query rows)
    and every conjugate-gradient solve (by iterations), whatever their
    ``verbose``. The command line turns them on for a terminal."""
    token = _PROGRESS.set(bool(enabled))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def progress_bar(total, desc, verbose=False):
    """A tqdm bar of ``total`` steps, shown when ``verbose`` or inside
    :func:`progress_bars` (and a disabled, free one otherwise)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, leave=False, disable=not (verbose or _PROGRESS.get())
    )


@contextlib.contextmanager
def thread_count(get, set_, n_threads):
    """Run the block with ``set_(n_threads)``, then restore ``get()``'s
    value (a library's global thread count, e.g. faiss's or torch's)."""
    before = get()
    set_(n_threads)
    try:
        yield
    finally:
        set_(before)


def available_cores():
    """Cores this process may run on (its CPU affinity where the platform
    reports one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def map_threads(fn, items, n_threads=None, min_items=1):
    """``fn(item)`` for every item, on ``n_threads`` threads (None: all
    available cores; never more than there are items), or on the calling
    thread when one thread would do or there are fewer than ``min_items``
    items (a pool costs more to start than they take). For work that
    releases the GIL (numpy, BLAS, the compiled kernels); each item writes
    its own part of the output."""
    items = list(items)
    n_threads = min(len(items), available_cores() if n_threads is None else n_threads)
    if n_threads <= 1 or len(items) < min_items:
        for item in items:
            fn(item)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        for _ in pool.map(fn, items):
            pass


def map_blocks(fn, blocks):
    """``[fn(block) for block in blocks]``, on all cores (each thread's
    BLAS held to one thread) when there are enough blocks to repay a
    thread pool (:data:`_MIN_THREADED_CHUNKS`). The results come back in
    block order, so sums of them taken in that order do not depend on the
    thread count."""
    blocks = list(blocks)
    out = [None] * len(blocks)

    def run(i):
        out[i] = fn(blocks[i])

    if len(blocks) < _MIN_THREADED_CHUNKS or available_cores() == 1:
        for i in range(len(blocks)):
            run(i)
        return out
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        map_threads(run, range(len(blocks)))
    return out


def row_spans(indptr, entries):
    """Consecutive row ranges (slices) of about ``entries`` stored entries
    each, for the CSR row pointer ``indptr``."""
    n_rows, nnz = indptr.size - 1, int(indptr[-1])
    cuts = np.searchsorted(indptr, np.arange(0, nnz, max(1, entries)), side="right") - 1
    cuts = np.unique(np.r_[0, np.clip(cuts, 0, n_rows), n_rows])
    return [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


# Fewer row ranges than this run on the calling thread: a thread pool costs
# more to start than they take.
_MIN_THREADED_CHUNKS = 4


def map_rows(fn, indptr, entries):
    """``fn(rows)`` over the row ranges of :func:`row_spans`, on all
    cores; each range writes its own part of the output."""
    map_threads(fn, row_spans(indptr, entries), min_items=_MIN_THREADED_CHUNKS)


def gpu_device_nodes():
    """The GPU device nodes of a Linux machine (NVIDIA, ROCm, WSL2)."""
    return glob.glob("/dev/nvidia[0-9]*") + glob.glob("/dev/kfd") + glob.glob(
        "/dev/dxg"
    )


def cuda_available():
    """Whether torch is installed and sees a CUDA (or ROCm) device.

    On Linux, a machine without any GPU device node answers False without
    importing torch, whose import alone takes about a second.
    """
    if "torch" not in sys.modules:
        if importlib.util.find_spec("torch") is None:
            return False
        if sys.platform.startswith("linux") and not gpu_device_nodes():
            return False
    import torch

    return torch.cuda.is_available()


def is_cuda(device):
    """Whether the device string names a CUDA device."""
    return isinstance(device, str) and device.startswith("cuda")


def check_device(device):
    """Raise ValueError unless ``device`` is 'auto', 'cpu', 'cuda' or
    'cuda:N'."""
    if not (device in ("auto", "cpu") or is_cuda(device)):
        raise ValueError(
            f"Unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )


def check_cuda_device(torch, device):
    """Raise ValueError unless the CUDA ``device`` exists here."""
    if not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available "
            "(no GPU, or torch was built without CUDA); use device='cpu' "
            "or 'auto'."
        )
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        raise ValueError(
            f"device={device!r} does not exist: only "
            f"{torch.cuda.device_count()} CUDA device(s) are visible."
        )


def import_optional(module, purpose):
    """Import an optional dependency or explain which extra provides it.

    Parameters
    ----------
    module : str
        Top-level module name, e.g. ``"faiss"``.
    purpose : str
        What the caller needs it for, used in the error message.

    Returns
    -------
    module : module
        The imported module.

    Raises
    ------
    ImportError
        If the module is not installed; the message names the package and
        the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_dependency(module, purpose) from exc


def missing_dependency(module, purpose):
    """The ImportError of :func:`import_optional` for a missing ``module``."""
    requirement, extra = _EXTRAS.get(module, (module, module))
    hint = (
        f" (on a machine without an NVIDIA GPU, the CPU-only build: {_CPU_TORCH})"
        if module == "torch"
        else ""
    )
    return ImportError(
        f"{purpose} requires the optional dependency {module!r}, which is "
        f"not installed. Install it with: pip install {requirement}{hint} "
        f"(it is the extra sklearn-mixedlp[{extra}]: from a source checkout, "
        f"pip install -e '.[{extra}]')"
    )


def is_installed(module):
    """Return whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# Entries of a text label file (compared case-insensitively, after
# stripping) that mean "no label": the command line maps them to -1.
UNLABELED_TEXT = frozenset(
    {"", "-1", "nan", "na", "n/a", "<na>", "none", "null", "unlabeled", "unlabelled", "?"}
)


def _is_unlabeled_value(v):
    """Whether one label value is the unlabeled marker (see
    :func:`unlabeled_mask`)."""
    if v is None:
        return True
    if isinstance(v, (str, bytes)):
        return v in ("-1", b"-1")
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, numbers.Number):
        return v == -1 or v != v  # -1, or NaN
    # pandas.NA and pandas.NaT, without importing pandas
    return type(v).__name__ in ("NAType", "NaTType")


def unlabeled_mask(y):
    """Boolean mask of the unlabeled entries of a 1-d label array.

    The one definition of an unlabeled row used by the estimators, the
    model-selection tools, the retrieval scorer, :func:`mask_labels
    <sklearn_mixedlp.datasets.mask_labels>` and the command line. An entry
    is unlabeled when it is

    - the number -1 (integer or float, Python or NumPy);
    - the string ``"-1"`` (in a string, bytes or object array), so that
      string classes can mark unlabeled rows with ``"-1"`` or ``-1``;
    - missing: ``None``, NaN, ``pandas.NA`` or ``pandas.NaT``.

    Booleans are never unlabeled (``False`` and ``True`` are classes).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.

    Returns
    -------
    mask : ndarray of bool of shape (n_samples,)
        True where the row is unlabeled.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_mixedlp.datasets import unlabeled_mask
    >>> unlabeled_mask(np.array([0, -1, 2])).tolist()
    [False, True, False]
    >>> unlabeled_mask(np.array(["cat", "-1", "dog"], dtype=object)).tolist()
    [False, True, False]
    >>> unlabeled_mask(np.array([1.0, np.nan, -1.0])).tolist()
    [False, True, True]
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        y = y.reshape(-1)
    kind = y.dtype.kind
    if kind in "iu":
        return y == -1
    if kind == "f":
        return (y == -1) | np.isnan(y)
    if kind == "U":
        return y == "-1"
    if kind == "S":
        return y == b"-1"
    if kind == "O":
        return np.fromiter(
            (_is_unlabeled_value(v) for v in y), dtype=bool, count=y.shape[0]
        )
    return np.zeros(y.shape[0], dtype=bool)


def fill_unlabeled(y):
    """``y`` with every unlabeled entry (see :func:`unlabeled_mask`) set to
    -1: float NaN becomes -1.0, ``None``, NaN and ``pandas.NA`` in an
    object array become the integer -1. Other inputs (None, arrays with no
    missing entry, arrays of more than one column) are returned unchanged,
    for the estimators' own validation to report."""
    if y is None:
        return y
    arr = np.asarray(y)
    if arr.dtype.kind not in "fO" or arr.ndim not in (1, 2):
        return y
    if arr.ndim == 2 and arr.shape[1] != 1:
        return y
    flat = arr.reshape(-1)
    missing = unlabeled_mask(flat)
    if arr.dtype.kind == "f":
        missing &= np.isnan(flat)
    if not missing.any():
        return y
    flat = flat.copy()
    flat[missing] = -1
    return flat.reshape(arr.shape)


# Rows whose largest |x| has a binary exponent beyond these bounds are
# rescaled before their norm is taken: below them every square, and the sum
# of up to 2**28 squares, is a normal number of the dtype.
_SAFE_EXPONENT = {np.dtype(np.float64): 400, np.dtype(np.float32): 50}
_NORM_CHUNK_ENTRIES = 2**22


def check_memory_mapped(X, input_name="X"):
    """Reject a memory-mapped feature matrix that could not be read in place.

    ``validate_data`` keeps a float32 or float64 array as it is (a
    memory-mapped file, e.g. ``np.load(path, mmap_mode='r')``, is then
    read where it lies, and only by chunks of rows), but converts any other
    dtype to float64: for a memory-mapped file that would be a full copy in
    memory, eight bytes a value, of data that was memory-mapped precisely
    because it is large. Such a file is rejected before any work starts.

    Parameters
    ----------
    X : object
        The input of ``fit``; anything but a :class:`numpy.memmap` (or an
        array viewing one) passes unchanged.
    input_name : str, default="X"
        Name of the input in the error message.

    Raises
    ------
    ValueError
        If ``X`` is memory-mapped and its dtype is not float32 or float64.
    """
    base = X
    while isinstance(base, np.ndarray) and not isinstance(base, np.memmap):
        base = base.base
    if not isinstance(base, np.memmap):
        return
    if X.dtype in (np.float32, np.float64):
        return
    where = f" ({base.filename})" if getattr(base, "filename", None) else ""
    raise ValueError(
        f"{input_name} is a memory-mapped array{where} of dtype {X.dtype}; "
        "memory-mapped features are read in place only when they are float32 "
        "or float64 (another dtype would be converted to a float64 copy of "
        f"{X.size * 8 / 2**30:.2f} GiB in memory). Convert the file once, by "
        "chunks of rows, to float32."
    )


def _row_abs_max(X):
    """Largest absolute value of each row (float64), in row chunks."""
    if hasattr(X, "tocsr"):  # scipy sparse
        X = X.tocsr()
        return np.asarray(abs(X).max(axis=1).todense(), dtype=np.float64).ravel()
    n, d = X.shape
    out = np.zeros(n)
    if d == 0:
        return out
    step = max(1, _NORM_CHUNK_ENTRIES // d)
    for start in range(0, n, step):
        out[start : start + step] = np.abs(X[start : start + step]).max(axis=1)
    return out


def safe_row_norms(X):
    """Euclidean norms of the rows of ``X`` without overflow or underflow.

    The norm of a row whose entries are huge (about 1e154 and above in
    float64, 1e19 in float32) overflows, and that of a row of tiny entries
    (1e-162, 1e-23 in float32) underflows to 0, when computed directly.
    Such rows are first multiplied by a power of two ``scale`` (an exact
    operation) that brings their largest entry into [0.5, 1) (at least
    2**-74 for subnormal rows); all other
    rows have ``scale`` 1 and their norms are computed as usual, bit for
    bit. Cosine geometry does not depend on the scale of a row.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Finite float32 or float64 rows.

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        Norm of each row of ``scale[:, None] * X`` (float64 for the
        rescaled rows, else the dtype of ``X``); 0 only for all-zero rows.
    scale : ndarray of shape (n_samples,)
        float64 powers of two, 1 for the rows that needed no rescaling.
    """
    sparse = hasattr(X, "tocsr")
    # overflowing and underflowing rows are recomputed below
    with np.errstate(over="ignore", under="ignore"):
        if sparse:
            X = X.tocsr()
            norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        else:
            # in row chunks: no temporary of the size of X (a memory-mapped
            # X is read once, in order)
            norms = np.empty(X.shape[0], dtype=np.result_type(X.dtype, np.float32))
            step = max(1, _NORM_CHUNK_ENTRIES // max(X.shape[1], 1))
            for start in range(0, X.shape[0], step):
                norms[start : start + step] = np.linalg.norm(
                    X[start : start + step], axis=1
                )
    scale = np.ones(X.shape[0])
    if X.dtype not in _SAFE_EXPONENT or X.shape[0] == 0:
        return norms, scale
    amax = _row_abs_max(X)
    _, exponent = np.frexp(amax)
    limit = _SAFE_EXPONENT[X.dtype]
    rescale = (amax > 0) & ((exponent > limit) | (exponent < -limit))
    if not rescale.any():
        return norms, scale
    rows = np.flatnonzero(rescale)
    # at most 2**1000 (float64): subnormal rows end up above 2**-74
    scale[rows] = np.ldexp(1.0, np.minimum(-exponent[rows], 1000))
    block = X[rows].astype(np.float64)
    if sparse:
        block = block.multiply(scale[rows][:, None]).tocsr()
        scaled = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
    else:
        scaled = np.linalg.norm(block * scale[rows][:, None], axis=1)
    norms = norms.astype(np.float64)
    norms[rows] = scaled
    return norms, scale


# rows per chunk of the row-wise passes over n x C blocks
_ROW_CHUNK = 2**14


def normalize_distributions(G, uniform=None, *, overwrite=False):
    """Clip negative scores to 0 and L1-normalise each row .

    An all-zero row becomes the uniform distribution.

    Parameters
    ----------
    G : ndarray of shape (n_samples, n_classes)
        Propagated label scores.
    uniform : ndarray of shape (n_classes,), default=None
        The distribution given to all-zero rows; default uniform over all
        classes.
    overwrite : bool, default=False
        Write the distributions into ``G`` (a float array), without an
        ``n_samples x n_classes`` copy.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        Row-stochastic class distributions (``G`` itself with
        ``overwrite``).
    empty : ndarray of shape (n_samples,)
        Boolean mask of the all-zero rows.
    """
    P = np.clip(G, 0.0, None, out=G if overwrite else None)
    mass = P.sum(axis=1, keepdims=True)
    empty = mass[:, 0] <= 0
    # an empty row is all zeros: dividing it by 1 leaves it so
    mass[empty] = 1.0
    P /= mass
    P[empty] = 1.0 / P.shape[1] if uniform is None else uniform
    return P, empty


def entropy_confidence(P):
    """Confidence ``omega(p) = 1 - H(p) / log(C)`` of each row (eq. 21).

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
        Row-stochastic distributions.

    Returns
    -------
    omega : ndarray of shape (n_samples,)
        Values in ``[0, 1]``: 0 for the uniform distribution, 1 for a
        one-hot one. With a single class every row is certain (1).
    """
    n_samples, n_classes = P.shape
    if n_classes == 1:
        return np.ones(n_samples, dtype=P.dtype)
    omega = np.empty(n_samples, dtype=np.result_type(P.dtype, np.float32))
    # by chunks of rows: the temporaries stay small
    for start in range(0, n_samples, _ROW_CHUNK):
        p = P[start : start + _ROW_CHUNK]
        plogp = np.log(np.where(p > 0, p, 1.0))
        plogp *= p
        omega[start : start + _ROW_CHUNK] = plogp.sum(axis=1)
    omega /= np.log(n_classes)
    omega += 1.0
    return np.clip(omega, 0.0, 1.0, out=omega)
