"""
=========================================
What mined hard negatives look like
=========================================

:class:`~sklearn_mixedlp.HardNegativeLP` gives every edge of the kNN graph
a dissimilarity weight (eqs. 18-22 of Zhuang & Moulin, CVPR 2023): large
when the neighbourhoods of the two endpoints, each without the other,
*confidently* predict different classes. This example fits it on the 64
pixel features of scikit-learn's digits with 5 labels per class, and draws
the edges with the largest weights over a 2-D embedding of the digits.
"""

# %%
# Data and a 2-D picture of it
# ----------------------------
# The estimator works on the original 64 features; the 2-D embedding is
# only for drawing. A full documentation build uses t-SNE, a quick one
# (``SKLEARN_MIXEDLP_DOCS_QUICK=1``) the much faster PCA.

import os

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from sklearn_mixedlp import HardNegativeLP
from sklearn_mixedlp.datasets import mask_labels

QUICK = os.environ.get("SKLEARN_MIXEDLP_DOCS_QUICK", "") not in ("", "0")

X, y = load_digits(return_X_y=True)
y_partial = mask_labels(y, 5, random_state=0)
labeled = y_partial != -1

if QUICK:
    embedding_name = "PCA"
    X_2d = PCA(n_components=2, random_state=0).fit_transform(X)
else:
    embedding_name = "t-SNE"
    X_2d = TSNE(n_components=2, init="pca", random_state=0).fit_transform(X)

# %%
# The default temperature gives tiny weights
# ------------------------------------------
# With the paper's default temperature :math:`\lambda = 4` the weights are
# of order :math:`10^{-6}`: the label propagation of eq. 16 from 50 labels
# and :math:`\mu = 1/99` leaves every unlabeled row with a nearly uniform
# distribution, the softmax of eq. 20 stays nearly uniform too, and its
# confidence :math:`\omega` (eq. 21), a factor of every weight (eq. 22), is
# nearly 0. (See the user guide, :ref:`low_label_rate_limitation`.)
# Multiplying :math:`\lambda` by 250 sharpens the softmax until the
# differences between classes show, and the weights spread over
# :math:`[0, 1]`.

temperatures = [4.0, 1000.0]
models = {t: HardNegativeLP(temperature=t).fit(X, y_partial) for t in temperatures}

for t, model in models.items():
    weights = sp.triu(model.dissimilarity_, k=1).data
    print(
        f"temperature {t:>6g}: {weights.size} weighted edges, largest weight "
        f"{weights.max():.2e}, median {np.median(weights):.2e}"
    )

fig, ax = plt.subplots(figsize=(7, 3.5))
for t, model in models.items():
    weights = sp.triu(model.dissimilarity_, k=1).data
    ax.hist(
        np.log10(weights),
        bins=60,
        alpha=0.6,
        label=rf"$\lambda$ = {t:g}",
    )
ax.set_xlabel(r"$\log_{10}\, W^{dis}_{ij}$")
ax.set_ylabel("number of edges")
ax.set_title("Dissimilarity weights of the graph edges")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# The strongest negative edges
# ----------------------------
# Take the edges with the largest weights at :math:`\lambda = 1000` and
# check them against the true classes, which the estimator never saw
# (except for the 50 labeled rows).

n_edges = 300
model = models[1000.0]
upper = sp.triu(model.dissimilarity_, k=1).tocoo()
top = np.argsort(-upper.data)[:n_edges]
rows, cols = upper.row[top], upper.col[top]
crosses = y[rows] != y[cols]

graph = sp.triu(model.affinity_, k=1).tocoo()
base_rate = np.mean(y[graph.row] != y[graph.col])
touches_label = labeled[rows] | labeled[cols]
print(
    f"{crosses.mean():.0%} of the {n_edges} strongest negative edges join two "
    f"different digits, against {base_rate:.0%} of all graph edges; "
    f"{touches_label.mean():.0%} of them touch a labeled sample."
)

# %%
# Draw them over the embedding: points are coloured by their true digit,
# the 50 labeled points are circled, red lines join different digits and
# black lines (wrong negatives) join two samples of the same digit.

fig, ax = plt.subplots(figsize=(8, 7))
segments = np.stack([X_2d[rows], X_2d[cols]], axis=1)
line_colors = [(0.84, 0.15, 0.16, 0.6) if c else (0.0, 0.0, 0.0, 0.9) for c in crosses]
ax.add_collection(LineCollection(segments, colors=line_colors, linewidths=0.8))
scatter = ax.scatter(X_2d[:, 0], X_2d[:, 1], c=y, cmap="tab10", s=8, alpha=0.7)
ax.scatter(
    X_2d[labeled, 0],
    X_2d[labeled, 1],
    s=60,
    facecolors="none",
    edgecolors="black",
    linewidths=1.2,
)
digit_legend = ax.legend(
    *scatter.legend_elements(), title="digit", loc="upper left", fontsize=8
)
ax.add_artist(digit_legend)
ax.legend(
    handles=[
        Line2D([], [], color="tab:red", label="different digits"),
        Line2D([], [], color="black", label="same digit"),
        Line2D(
            [],
            [],
            marker="o",
            markersize=8,
            color="black",
            fillstyle="none",
            linestyle="none",
            label="labeled sample",
        ),
    ],
    loc="lower right",
    fontsize=8,
)
ax.set_title(
    f"{n_edges} strongest mined negatives ($\\lambda$ = 1000) on a "
    f"{embedding_name} embedding"
)
ax.set_xticks([])
ax.set_yticks([])
fig.tight_layout()
plt.show()

# %%
# Almost all of the strongest negatives do join two different digits, the
# errors of the kNN graph of raw pixels that plain label propagation
# smooths over and that the mixed label propagation of eqs. 23-24 pushes
# apart. Two things stand out in the picture:
#
# * many of them (about 45 % here, against 5 % of all graph edges) touch a
#   labeled sample: the confidence factors :math:`\omega` of eq. 22 are
#   largest where the propagation is most certain, next to the labels;
# * their endpoints can lie far apart on the 2-D map: they are neighbours
#   in the 64-dimensional pixel space, which the embedding does not keep.
#
# How much pushing these pairs apart helps depends on the data and on
# :math:`\lambda`; choose it by cross-validation on the labeled rows (see
# the user guide's section on model selection).
