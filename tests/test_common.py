"""scikit-learn's estimator checks over every public estimator, in several
configurations (negatives source, dissimilarity loss, solver, backend)."""

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
    if has_module("pynndescent"):
        yield HardNegativeLP(n_neighbors=5, knn_backend="pynndescent", random_state=0)


@parametrize_with_checks(
    list(_configurations()), expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
