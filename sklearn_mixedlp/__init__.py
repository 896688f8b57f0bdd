"""Semi-supervised label propagation with mined hard negatives.

The public estimators are :class:`MixedLabelPropagation` (plain LP, Mining on
Manifolds or user-supplied negatives) and :class:`HardNegativeLP` (negatives
mined from two views of the data, the propagation and a linear discriminant,
and cut from the graph), both transductive scikit-learn classifiers on a kNN
affinity graph, and :class:`DeepMetricLearner`, a transformer that trains a
torch embedding network on their pseudolabels. :func:`knn_graph` builds
their affinity graph once, for reuse with ``knn_backend='precomputed'``.
"""

from ._deep import DeepMetricLearner
from ._graph import knn_graph
from ._label_propagation import HardNegativeLP, MixedLabelPropagation

__version__ = "0.1.0.dev0"

__all__ = [
    "DeepMetricLearner",
    "HardNegativeLP",
    "MixedLabelPropagation",
    "__version__",
    "knn_graph",
]
