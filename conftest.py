"""Collection rules of the doctests of the package (``--doctest-modules``
on ``sklearn_mixedlp``): without torch (or dask and faiss), the examples
that need it are skipped rather than failed, as the tests that need it
are."""

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_DASK = all(
    importlib.util.find_spec(name) is not None for name in ("dask", "distributed", "faiss")
)

# sklearn_mixedlp.losses imports torch at import time
collect_ignore = [] if HAS_TORCH else ["sklearn_mixedlp/losses.py"]

# doctests that train or build torch modules
_TORCH_DOCTESTS = ("sklearn_mixedlp._deep.",)
# doctests that start a dask cluster
_DASK_DOCTESTS = ("sklearn_mixedlp.distributed.",)


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="torch not installed")
    skip_dask = pytest.mark.skip(reason="dask[distributed] or faiss not installed")
    # the learner's inner estimator relabels a few pseudolabels by design
    relabeled = pytest.mark.filterwarnings(
        "ignore:.*labeled rows get a class other than:UserWarning"
    )
    for item in items:
        is_doctest = type(item).__name__ == "DoctestItem"
        if is_doctest and item.name.startswith(_TORCH_DOCTESTS):
            item.add_marker(relabeled if HAS_TORCH else skip)
        if is_doctest and item.name.startswith(_DASK_DOCTESTS) and not HAS_DASK:
            item.add_marker(skip_dask)
