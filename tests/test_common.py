"""scikit-learn's estimator checks over every public estimator, in several
configurations (negatives source, dissimilarity loss, solver, backend)."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation

from .conftest import has_module

# Known failures, one table: check name -> reason.
EXPECTED_FAILED_CHECKS = {
    "check_classifiers_classes": (
        "-1 marks unlabeled samples, so a class called -1 cannot be learned; "
        "scikit-learn exempts its own LabelSpreading from this check for the "
        "same reason."
    ),
}


EXPECTED_WARNINGS = (
    r".*row\(s\) of X have zero norm",
    r"n_neighbors=\d+ is not smaller than n_samples",
    r".*labeled rows get a class other than their given label",
    r".*rows lie in parts of the graph",
)


def _configurations():
    yield MixedLabelPropagation(n_neighbors=5, knn_backend="exact", solver="scipy")
    yield MixedLabelPropagation("mom", n_neighbors=5, knn_backend="exact")
    yield MixedLabelPropagation.paper(
        "mom", n_neighbors=5, dissimilarity_loss="lpdr", beta=0.1
    )
    yield HardNegativeLP()
    yield HardNegativeLP.paper()
    yield HardNegativeLP("control", n_neighbors=5, knn_backend="exact")
    if has_module("torch"):
        yield MixedLabelPropagation("mom", n_neighbors=5, solver="torch", device="cpu")
        yield HardNegativeLP(n_neighbors=5, solver="torch", device="cpu")
    if has_module("faiss"):
        yield HardNegativeLP(n_neighbors=5, knn_backend="faiss")
    # pynndescent is left out: numba compiles it for a minute in each test
    # process; test_graph.py and test_estimators.py fit, predict and pickle
    # it in a few tests.


@parametrize_with_checks(
    list(_configurations()), expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        # What the checks' tiny random data provoke by design (all-zero
        # rows, fewer rows than neighbours, labels the soft fit overrides,
        # graph parts without a label): expected here, so that a real
        # warning stands out.
        for message in EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=UserWarning)
        check(estimator)
