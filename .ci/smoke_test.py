"""Smoke test of an installed wheel or sdist (run by .ci/run outside the
source tree): the package is the installed one and fits the digits."""

import sys
import warnings

from sklearn.datasets import load_digits

import sklearn_mixedlp
from sklearn_mixedlp import HardNegativeLP
from sklearn_mixedlp.datasets import mask_labels

assert sklearn_mixedlp.__file__.startswith(sys.prefix), sklearn_mixedlp.__file__
X, y = load_digits(return_X_y=True)
y_train = mask_labels(y, 5, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    est = HardNegativeLP(knn_backend="exact").fit(X, y_train)
unlabeled = y_train == -1
accuracy = (est.transduction_[unlabeled] == y[unlabeled]).mean()
assert accuracy > 0.9, accuracy
print(
    f"smoke test of {sys.argv[1].rsplit('/', 1)[-1]}: sklearn_mixedlp "
    f"{sklearn_mixedlp.__version__} from {sklearn_mixedlp.__file__}, digits "
    f"accuracy {accuracy:.3f}"
)
