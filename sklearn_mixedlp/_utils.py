"""Small shared helpers: optional imports and class-distribution utilities."""

import contextlib
import glob
import importlib
import importlib.util
import numbers
import os
import sys

import numpy as np

# Optional dependency -> the extra of ``pip install sklearn-mixedlp[extra]``
# that provides it.
_EXTRAS = {
    "faiss": "faiss",
    "pynndescent": "pynndescent",
    "torch": "torch",
    "matplotlib": "docs",
}


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
        If the module is not installed; the message names the extra to
        install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module, module)
        raise ImportError(
            f"{purpose} requires the optional dependency {module!r}, which is "
            f"not installed. Install it with: "
            f"pip install 'sklearn-mixedlp[{extra}]'"
        ) from exc


def is_installed(module):
    """Return whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def minus_one_mask(y):
    """Boolean mask of the entries of 1-d ``y`` that are the number -1.

    Numeric arrays compare with -1; in object arrays an entry counts when it
    is a number equal to -1 (``-1``, ``-1.0``, ``np.int64(-1)``), never a
    string; other arrays (strings, booleans) have none.
    """
    if y.dtype.kind == "O":
        return np.fromiter(
            (isinstance(v, numbers.Number) and v == -1 for v in y),
            dtype=bool,
            count=y.shape[0],
        )
    if y.dtype.kind in "iuf":
        return y == -1
    return np.zeros(y.shape[0], dtype=bool)


def normalize_distributions(G, uniform=None):
    """Clip negative scores to 0 and L1-normalise each row (SPEC section 4).

    An all-zero row becomes the uniform distribution.

    Parameters
    ----------
    G : ndarray of shape (n_samples, n_classes)
        Propagated label scores.
    uniform : ndarray of shape (n_classes,), default=None
        The distribution given to all-zero rows; default uniform over all
        classes.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        Row-stochastic class distributions.
    empty : ndarray of shape (n_samples,)
        Boolean mask of the all-zero rows.
    """
    P = np.clip(G, 0.0, None)
    mass = P.sum(axis=1, keepdims=True)
    empty = mass[:, 0] <= 0
    P = np.divide(P, mass, out=np.zeros_like(P), where=mass > 0)
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
    n_classes = P.shape[1]
    if n_classes == 1:
        return np.ones(P.shape[0], dtype=P.dtype)
    plogp = P * np.log(np.where(P > 0, P, 1.0))
    omega = 1.0 + plogp.sum(axis=1) / np.log(n_classes)
    return np.clip(omega, 0.0, 1.0)
