"""
=======================================================================
Semi-supervised metric learning for image retrieval: Fashion-MNIST
=======================================================================

:class:`~sklearn_mixedlp.DeepMetricLearner` trains a small network whose
L2-normalised embeddings should put images of the same kind close together.
It sees only 5 labels per class: every epoch, a
:class:`~sklearn_mixedlp.HardNegativeLP` fitted on the current embeddings
propagates them to the unlabeled rows, and the network is trained on these
confidence-weighted pseudolabels (the deep setting of Zhuang & Moulin,
CVPR 2023).

The retrieval protocol is *class-disjoint*: the network is evaluated on
classes it never saw during training, so it has to learn a similarity that
transfers, not a classifier. We compare Recall@1, Precision@8 and MAP@R of
the PCA features it starts from with those of the learned embedding, and
look at the retrieved neighbours of a few query images.

.. note::

    This example needs torch (the ``torch`` extra) and the Fashion-MNIST
    files (Debian's ``dataset-fashion-mnist`` package, or the four files of
    the dataset in a folder named by ``SKLEARN_MIXEDLP_FASHION_MNIST``). A
    documentation build on a machine without them shows its code without
    running it.
"""

# %%
# Data: Fashion-MNIST, reduced with PCA
# -------------------------------------
# :func:`~sklearn_mixedlp.datasets.load_fashion_mnist` reads the images from
# local files. We take a random subset of rows (2,500 in a quick
# documentation build, ``SKLEARN_MIXEDLP_DOCS_QUICK=1``; 20,000 otherwise).
#
# The 10 classes are split into *train classes* and *unseen test classes*
# with :func:`~sklearn_mixedlp.model_selection.class_disjoint_split`. It
# makes three class-disjoint groups (train / validation / test); we ask for
# 50 % / 10 % / 40 % of the classes and merge the validation class into the
# training set, which gives a 60 / 40 split: 6 training classes, 4 test
# classes. The seed of the split is chosen so that the test classes include
# look-alike garments (coats and shirts), a harder retrieval task than, e.g.,
# sandals against dresses. (This example does not use a validation set: with only 5 labels
# per class, holding out a fully labelled class for early stopping would be
# a much larger label budget than the one we train with.)
#
# The 784 pixels are reduced to 64 principal components; the PCA is fitted
# on the training rows only and then applied to the test rows.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from sklearn.decomposition import PCA

from sklearn_mixedlp import DeepMetricLearner, HardNegativeLP
from sklearn_mixedlp.datasets import load_fashion_mnist, mask_labels
from sklearn_mixedlp.metrics import map_at_r, precision_at_k, recall_at_k
from sklearn_mixedlp.model_selection import class_disjoint_split

QUICK = os.environ.get("SKLEARN_MIXEDLP_DOCS_QUICK", "") not in ("", "0")
n_rows = 2_500 if QUICK else 20_000
n_epochs = 5 if QUICK else 15

fashion = load_fashion_mnist()
rng = np.random.default_rng(0)
rows = np.sort(rng.choice(fashion.target.shape[0], size=n_rows, replace=False))
images = fashion.images[rows]
pixels = fashion.data[rows]
y = fashion.target[rows]
names = fashion.target_names

train_idx, val_idx, test_idx = class_disjoint_split(
    y, train_size=0.5, val_size=0.1, test_size=0.4, random_state=7
)
train_idx = np.sort(np.concatenate([train_idx, val_idx]))

pca = PCA(n_components=64, random_state=0).fit(pixels[train_idx])
X_train = pca.transform(pixels[train_idx]).astype(np.float32)
X_test = pca.transform(pixels[test_idx]).astype(np.float32)
y_train, y_test = y[train_idx], y[test_idx]

print(f"{n_rows:,} images: {train_idx.size:,} train rows, {test_idx.size:,} test rows")
print("train classes:", ", ".join(names[np.unique(y_train)]))
print("test classes: ", ", ".join(names[np.unique(y_test)]))

# %%
# Train the network with 5 labels per training class
# --------------------------------------------------
# :func:`~sklearn_mixedlp.datasets.mask_labels` keeps 5 random labels per
# training class and marks every other row ``-1`` (unlabeled). The
# learner warms up for 5 epochs on these 30 labeled rows, then trains for
# a few epochs on the pseudolabels of all training rows. The network is the
# default two-layer perceptron (64 -> 256 -> 64).

y_partial = mask_labels(y_train, 5, random_state=0)
print(f"{np.sum(y_partial != -1)} labeled rows out of {y_partial.size:,}")

learner = DeepMetricLearner(
    estimator=HardNegativeLP(),
    n_epochs=n_epochs,
    n_warmup_epochs=5,
    batch_size=64,
    lr=1e-3,
    module_kwargs={"hidden_dim": 256},
    device="cpu",
    random_state=0,
)
start = time.perf_counter()
learner.fit(X_train, y_partial)
print(f"fit in {time.perf_counter() - start:.1f} s")

pseudo_acc = np.mean(learner.pseudolabels_[y_partial == -1] == y_train[y_partial == -1])
print(
    f"accuracy of the final pseudolabels on the unlabeled training rows: {pseudo_acc:.3f}"
)

# %%
# Training history
# ----------------
# ``history_`` holds one record per epoch. The loss is the proxy loss of the
# epoch (on the 30 labeled rows during warm-up, on all rows with their
# pseudolabels afterwards, so the two phases are not on the same scale). The
# pseudolabel agreement is the accuracy of the label propagation's
# ``transduction_`` on the labeled rows, recomputed on the embeddings at the
# start of every training epoch; it is undefined during warm-up.

history = learner.history_
epochs = np.array([h["epoch"] for h in history])
loss = np.array([h["loss"] for h in history])
warmup = np.array([h["phase"] == "warmup" for h in history])
agreement = np.array(
    [
        np.nan if h["pseudolabel_agreement"] is None else h["pseudolabel_agreement"]
        for h in history
    ]
)

fig, (ax_loss, ax_agree) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_loss.plot(epochs[warmup], loss[warmup], "o-", color="C1", label="warm-up")
ax_loss.plot(epochs[~warmup], loss[~warmup], "o-", color="C0", label="pseudolabels")
ax_loss.set_xlabel("epoch")
ax_loss.set_yscale("log")
ax_loss.set_ylabel("mean batch loss (log scale)")
ax_loss.set_title("Proxy loss")
ax_loss.legend()
ax_agree.plot(epochs[~warmup], agreement[~warmup], "o-", color="C2")
ax_agree.set_xlim(ax_loss.get_xlim())
ax_agree.set_ylim(0, 1.05)
ax_agree.set_xlabel("epoch")
ax_agree.set_ylabel("accuracy on the labeled rows")
ax_agree.set_title("Pseudolabel agreement")
fig.tight_layout()
plt.show()

# %%
# Retrieval on the unseen classes
# -------------------------------
# Every test image is used as a query against all other test images, with
# the cosine similarity. Recall@1 is the fraction of queries whose nearest
# neighbour has the same class, Precision@8 the fraction of same-class
# images among the 8 nearest neighbours, and MAP@R the mean average
# precision over the first R neighbours (R = number of other images of the
# query's class).

Z_test = learner.transform(X_test)
features = {"PCA (64 dims)": X_test, "learned embedding": Z_test}
scores = {
    name: (
        recall_at_k(F, y_test, k=1),
        precision_at_k(F, y_test, k=8),
        map_at_r(F, y_test),
    )
    for name, F in features.items()
}
print(f"{'features':<20} {'Recall@1':>9} {'P@8':>7} {'MAP@R':>7}")
for name, (r1, p8, mapr) in scores.items():
    print(f"{name:<20} {r1:>9.3f} {p8:>7.3f} {mapr:>7.3f}")

# %%
# Retrieved neighbours, before and after training
# -----------------------------------------------
# For a few test queries (left column), the 5 nearest test images with the
# PCA features (before training) and with the learned embedding (after
# training). A green frame marks a neighbour of the query's class, a red
# frame one of another class.


def top_neighbours(F, queries, k):
    """Indices of the k nearest rows of F (cosine) to each query, itself excluded."""
    F = F / np.linalg.norm(F, axis=1, keepdims=True)
    sim = F[queries] @ F.T
    sim[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-sim, axis=1)[:, :k]


n_show = 5
query_rng = np.random.default_rng(1)
queries = np.array(
    [query_rng.choice(np.flatnonzero(y_test == c)) for c in np.unique(y_test)]
    + [query_rng.choice(test_idx.size)]
)
test_images = images[test_idx]
neighbours = {
    "before (PCA)": top_neighbours(X_test, queries, n_show),
    "after (embedding)": top_neighbours(Z_test, queries, n_show),
}

n_cols = 1 + 2 * n_show
fig, axes = plt.subplots(
    len(queries), n_cols, figsize=(n_cols * 0.95, len(queries) * 1.1 + 0.5)
)
for row, q in enumerate(queries):
    ax = axes[row, 0]
    ax.imshow(test_images[q], cmap="gray_r")
    ax.set_ylabel(names[y_test[q]], fontsize=8)
    for col, (label, nn) in enumerate(neighbours.items()):
        for j, idx in enumerate(nn[row]):
            ax = axes[row, 1 + col * n_show + j]
            ax.imshow(test_images[idx], cmap="gray_r")
            color = "tab:green" if y_test[idx] == y_test[q] else "tab:red"
            ax.add_patch(
                Rectangle(
                    (-0.5, -0.5), 28, 28, fill=False, edgecolor=color, linewidth=3
                )
            )
            if row == 0 and j == n_show // 2:
                ax.set_title(label, fontsize=10)
axes[0, 0].set_title("query", fontsize=10)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
fig.tight_layout()
plt.show()

# %%
# What to read from it
# --------------------
#
# * **Label propagation works on the training classes.** From 30 labels,
#   the final pseudolabels of the unlabeled training rows are right more
#   than 90 % of the time (0.94 with 20,000 images, 0.93 in the quick
#   build), and the agreement on the labeled rows stays at 1.
# * **It does not transfer to the unseen classes here.** On the 4 test
#   classes, the learned embedding retrieves no better than the PCA
#   features it starts from: with 20,000 images, Recall@1 0.852 vs 0.880,
#   Precision@8 0.821 vs 0.858 and MAP@R 0.467 vs 0.501, worse on all
#   three (the quick build is closer: slightly worse on the first two,
#   slightly better on the last). The neighbour figure says the same: most
#   neighbours are already right before training, and the coat query is
#   confused with shirts both before and after.
# * **Why.** The pseudolabel loss keeps falling, to about 0.2 at the end
#   of a full build: the network separates the 6 training classes well,
#   but nothing in that objective asks it to keep the within-class detail
#   that tells coats from shirts, classes it has never seen. PCA on pixels is a
#   strong baseline on Fashion-MNIST, and a small perceptron on 64 PCA
#   components trained for a few epochs on CPU is not expected to beat it
#   on unseen classes; the paper's gains come from convolutional networks
#   trained much longer, on datasets with many more training classes.
