"""Accuracy pinned on small real data, so that a regression fails CI.

Digits (1,797 images) with 5 labels per class over a fixed seed list; the
margins are set from measurements with room for the noise of that seed
list (see doc/benchmarks/accuracy.rst for the full benchmark). The method
orderings checked are the paper's (HardNegativeLP >= Control ~ LP >> MoM in
its configuration), the gain of the defaults over the literal paper
configuration, and that negatives which carry information (oracle
negatives) help.
"""


import numpy as np
import scipy.sparse as sp
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import mask_labels

from .conftest import ignore_relabeled, ignore_unreached, requires_keel

SEEDS = range(5)


@pytest.fixture(scope="module")
def digits_graphs():
    X, y = load_digits(return_X_y=True)
    return {
        "y": y,
        "default": knn_graph(X, knn_backend="exact"),
        "paper": knn_graph(X, 50, kernel="power", gamma=3.0, lift=0.0, knn_backend="exact"),
    }


def mean_accuracy(make, graph, y, negatives=None, n_labeled=5):
    """Mean accuracy on the unlabeled rows over SEEDS; ``make()`` builds a
    precomputed-graph estimator, ``negatives(W)`` the pairs to pass."""
    scores = []
    for seed in SEEDS:
        y_train = mask_labels(y, n_labeled, random_state=seed)
        est = make()
        if negatives is None:
            est.fit(graph, y_train)
        else:
            est.fit(graph, y_train, negatives=negatives(graph + graph.T))
        unlabeled = y_train == -1
        scores.append(np.mean(est.transduction_[unlabeled] == y[unlabeled]))
    return float(np.mean(scores))


def test_defaults_beat_the_paper_configuration(digits_graphs):
    g, y = digits_graphs, digits_graphs["y"]
    default = mean_accuracy(
        lambda: MixedLabelPropagation(knn_backend="precomputed"), g["default"], y
    )
    paper = mean_accuracy(
        lambda: MixedLabelPropagation.paper(knn_backend="precomputed"), g["paper"], y
    )
    hard = mean_accuracy(
        lambda: HardNegativeLP(knn_backend="precomputed"), g["default"], y
    )
    # measured: 0.958, 0.905 and 0.958 (on a precomputed graph the mining
    # uses the propagation's view alone)
    assert default >= paper + 0.03
    assert hard >= 0.94
    assert hard >= default - 0.005


def test_paper_configuration_ordering(digits_graphs):
    """Table 3's ordering in the paper's configuration: MoM far below LP,
    Control ~ LP, HardNegativeLP not below LP."""
    g, y = digits_graphs["paper"], digits_graphs["y"]

    def paper(cls, *args):
        return mean_accuracy(lambda: cls.paper(*args, knn_backend="precomputed"), g, y)

    lp = paper(MixedLabelPropagation)
    mom = paper(MixedLabelPropagation, "mom")
    control = paper(HardNegativeLP, "control")
    hard = paper(HardNegativeLP)
    # measured: 0.905, 0.573, 0.905, 0.905
    assert mom <= lp - 0.2
    assert abs(control - lp) <= 0.01
    assert hard >= lp - 0.005


@pytest.mark.parametrize("paper", [False, True])
def test_oracle_negatives_help(digits_graphs, paper):
    """Negatives that carry information (every graph edge joining two true
    classes) lift the mixed LP above plain LP, in both configurations."""
    y = digits_graphs["y"]
    if paper:
        graph = knn_graph(load_digits().data, 10, kernel="power", knn_backend="exact")
        make = lambda: MixedLabelPropagation.paper(knn_backend="precomputed")
    else:
        graph = digits_graphs["default"]
        make = lambda: MixedLabelPropagation(knn_backend="precomputed")

    def oracle(W):
        i, j = W.nonzero()
        keep = (i < j) & (y[i] != y[j])
        return np.column_stack([i[keep], j[keep]])

    plain = mean_accuracy(make, graph, y)
    with_oracle = mean_accuracy(make, graph, y, negatives=oracle)
    # measured: default 0.958 -> 0.987; paper (k=10) 0.948 -> 0.990
    assert with_oracle >= plain + 0.015


@ignore_relabeled
@ignore_unreached
@requires_keel
def test_defaults_beat_the_paper_configuration_on_penbased():
    from sklearn_mixedlp.datasets import load_keel

    X, y = load_keel("penbased", return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = np.unique(y, return_inverse=True)[1]
    default = mean_accuracy(
        lambda: HardNegativeLP(knn_backend="precomputed"), knn_graph(X), y
    )
    paper_graph = knn_graph(X, 50, kernel="power", gamma=3.0, lift=0.0)
    paper = mean_accuracy(
        lambda: HardNegativeLP.paper(knn_backend="precomputed"), paper_graph, y
    )
    # measured (seeds 0-2): 0.916 vs 0.877
    assert default >= paper + 0.02


# -- the mined negatives of HardNegativeLP() ----------------------------------
def _paired_gain(X, y, n_labeled, seeds=SEEDS):
    """Per draw: accuracy of HardNegativeLP() minus MixedLabelPropagation()
    on the unlabeled rows (same graph), and the mining diagnostics: the
    precision of the mined mass on the edges whose ends plain LP labels
    alike, and the base rate of those edges' affinity mass."""
    gains, precision, base = [], [], []
    for seed in seeds:
        y_train = mask_labels(y, n_labeled, random_state=seed)
        unlabeled = y_train == -1
        plain = MixedLabelPropagation(knn_backend="exact").fit(X, y_train)
        mined = HardNegativeLP(knn_backend="exact").fit(X, y_train)
        assert mined.mining_ == "two_view"
        gains.append(
            np.mean(mined.transduction_[unlabeled] == y[unlabeled])
            - np.mean(plain.transduction_[unlabeled] == y[unlabeled])
        )
        W = sp.triu(mined.affinity_, k=1).tocoo()
        mass = np.asarray(sp.csr_matrix(mined.dissimilarity_)[W.row, W.col]).ravel()
        agree = plain.transduction_[W.row] == plain.transduction_[W.col]
        cross = y[W.row] != y[W.col]
        precision.append(mass[agree & cross].sum() / mass[agree].sum())
        base.append(W.data[agree & cross].sum() / W.data[agree].sum())
    return np.array(gains), np.mean(precision), np.mean(base)


@ignore_relabeled
@ignore_unreached
def test_mined_negatives_on_digits():
    X, y = load_digits(return_X_y=True)
    gain_1, precision, base = _paired_gain(X, y, 1)
    # measured (seeds 0-4): +0.73 points at 1 label per class; the mined
    # mass on agree edges 12.6 % cross-class against a base rate of 1.2 %
    assert gain_1.mean() >= 0.002
    assert precision >= 4 * base
    gain_5, precision, base = _paired_gain(X, y, 5)
    # measured: -0.10 points at 5 labels (plain LP is at 0.96); 10.2 % vs 0.8 %
    assert gain_5.mean() >= -0.003
    assert precision >= 4 * base


@ignore_relabeled
@ignore_unreached
@requires_keel
def test_mined_negatives_on_splice():
    """KEEL splice (DNA, 3 classes): the linear view sees what the graph of
    the standardised codes misses."""
    from sklearn_mixedlp.datasets import load_keel

    X, y = load_keel("splice", return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = np.unique(y, return_inverse=True)[1]
    gain, precision, base = _paired_gain(X, y, 5)
    # measured (seeds 0-4): +5.8 points (+2.7 to +9.5 per draw); 33.5 %
    # cross-class mined mass on agree edges against a base rate of 12.0 %
    assert gain.mean() >= 0.02
    assert np.all(gain > 0)
    assert precision >= 2 * base
