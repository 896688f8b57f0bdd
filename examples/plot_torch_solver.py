"""
==========================================
The torch solver, on a GPU or on the CPU
==========================================

The linear systems of label propagation (eqs. 16 and 24 of Zhuang &
Moulin, CVPR 2023) are solved by a Jacobi-preconditioned block conjugate
gradient. ``solver='scipy'`` runs it with numpy and scipy.sparse on the CPU;
``solver='torch'`` runs the same loop on ``torch.sparse_csr_tensor``, on a
CUDA GPU (``device='cuda'``) or on the CPU (``device='cpu'``).

This example fits :class:`~sklearn_mixedlp.HardNegativeLP` on Fashion-MNIST
with 5 labels per class with both backends, checks that they give the same
transduction, and compares their fit times. It uses the GPU when torch sees
one, and runs on a CPU-only machine too.

.. note::

    This example needs torch (the ``torch`` extra). A documentation build on
    a machine without torch shows its code without running it.
"""

# %%
# Data
# ----
# :func:`~sklearn_mixedlp.datasets.load_fashion_mnist` reads the 70,000
# images (28 x 28 pixels) from local files. A quick documentation build
# (``SKLEARN_MIXEDLP_DOCS_QUICK=1``) uses the 10,000 test images only. The
# 784 raw pixels (scaled to [0, 1]) are reduced to their first 64 principal
# components, which keeps the kNN search cheap; the graph is built on these
# 64 dimensions. If the Fashion-MNIST files are not installed, the example
# falls back to scikit-learn's digits (1,797 images, 64 pixels, no PCA).

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from sklearn_mixedlp import HardNegativeLP
from sklearn_mixedlp.datasets import load_fashion_mnist, mask_labels

QUICK = os.environ.get("SKLEARN_MIXEDLP_DOCS_QUICK", "") not in ("", "0")

try:
    X, y = load_fashion_mnist(subset="test" if QUICK else "all", return_X_y=True)
    dataset = "Fashion-MNIST"
except FileNotFoundError as exc:
    print(f"Note: {exc}\nFalling back to scikit-learn's digits.")
    X, y = load_digits(return_X_y=True)
    dataset = "digits"

if X.shape[1] > 64:
    X = PCA(n_components=64, random_state=0).fit_transform(X)
    features = "64 PCA components of the pixels"
else:
    features = f"{X.shape[1]} pixels"
y_partial = mask_labels(y, 5, random_state=0)
unlabeled = y_partial == -1
print(f"{dataset}: {X.shape[0]:,} rows, {features}, {np.sum(~unlabeled)} labeled")

# %%
# Backends
# --------
# The torch solver runs on the GPU when torch sees one, on the CPU
# otherwise. ``device='cuda'`` with ``solver='torch'`` is explicit; the
# default ``solver='auto'`` makes the same choice by itself.

if torch.cuda.is_available():
    device = "cuda"
    device_name = torch.cuda.get_device_name(0)
else:
    device = "cpu"
    device_name = f"CPU, {torch.get_num_threads()} torch threads"
print(f"torch {torch.__version__}, device {device!r}: {device_name}")

backends = {
    "scipy": {"solver": "scipy"},
    "torch": {"solver": "torch", "device": device},
}

# %%
# Fit with each backend
# ---------------------
# Each backend first fits a small slice of the data, untimed, so that
# one-off start-up costs (loading the CUDA kernels, creating the cuSPARSE
# handle) are not counted. ``verbose=1`` prints the time elapsed at the end
# of each stage: the kNN graph (built on the CPU by the same neighbour
# search for both backends), the label propagation of eq. 16, the mining
# of the negatives (2 rounds of the two-view mining, with a propagation on
# the cut graph between them; their iterations count in ``n_iter_``) and
# the final propagation on the cut graph (the stage ``mixed_solve``).
#
# Above 50,000 rows the neighbour search of ``knn_backend='auto'`` is
# approximate (faiss's inverted-file index, when faiss is installed), and
# its clustering is seeded by ``random_state``: with ``random_state=0`` both
# fits build the same graph, so that they differ by the solver alone.

models, fit_time = {}, {}
for name, params in backends.items():
    warm = slice(0, 1000)
    HardNegativeLP(**params).fit(X[warm], mask_labels(y[warm], 5, random_state=0))

    model = HardNegativeLP(verbose=1, random_state=0, **params)
    start = time.perf_counter()
    model.fit(X, y_partial)
    fit_time[name] = time.perf_counter() - start
    models[name] = model
    accuracy = np.mean(model.transduction_[unlabeled] == y[unlabeled])
    print(
        f"{name}: fit {fit_time[name]:.1f}s, {model.n_iter_} CG iterations, "
        f"accuracy on the unlabeled rows {accuracy:.4f}\n"
    )

# %%
# Same transduction
# -----------------
# Both backends run the same recurrence (with the default normalised
# Laplacian, float32 iterations whose residual is refreshed in float64) to
# the same tolerance (``tol=1e-6``, relative residual of each column), so
# they should agree to rounding: same number of iterations, same
# pseudolabels, and distributions that differ by far less than ``tol``.

scipy_model, torch_model = models["scipy"], models["torch"]
agreement = np.mean(scipy_model.transduction_ == torch_model.transduction_)
max_diff = np.abs(
    scipy_model.label_distributions_ - torch_model.label_distributions_
).max()
print(f"same pseudolabel on {agreement:.2%} of the rows")
print(f"max |difference| of label_distributions_: {max_diff:.1e}")
print(f"n_iter_: scipy {scipy_model.n_iter_}, torch {torch_model.n_iter_}")

# %%
# Fit time
# --------

labels = ["scipy\n(CPU)", f"torch\n({device_name})"]
times = [fit_time["scipy"], fit_time["torch"]]
iters = [scipy_model.n_iter_, torch_model.n_iter_]

fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
bars = ax.bar(labels, times, color=["C0", "C1"], width=0.55)
ax.bar_label(
    bars,
    labels=[f"{t:.1f} s\n{n} CG iterations" for t, n in zip(times, iters)],
    padding=3,
)
ax.set_ylabel("HardNegativeLP fit time (s)")
ax.set_ylim(0, 1.3 * max(times))
ax.set_title(
    f"{dataset}, {X.shape[0]:,} rows ({features}), 5 labels per class\n"
    f"same pseudolabel on {agreement:.2%} of the rows, "
    f"max |difference| {max_diff:.0e}",
    fontsize=10,
)
plt.show()

# %%
# What to read from it
# --------------------
#
# * **The backends agree.** Same iterations and same pseudolabels. On the
#   CPU the two backends share the vector updates of the iterations and
#   differ only in the sparse product, and the distributions come out
#   identical (a largest difference of 0 in a quick build on
#   Fashion-MNIST's 10,000 test images, and in a full one on all 70,000
#   images); on a GPU every step runs in torch, and they should differ by
#   rounding only, far below ``tol``. The choice of backend is a matter of
#   speed only.
# * **The fit time includes the kNN graph**, built on the CPU (by faiss when
#   it is installed) whatever the solver; the stage timings printed above
#   show how it splits. The solver only moves the conjugate-gradient
#   iterations, one sparse-matrix times dense-block product each.
# * **On a GPU** those iterations should cost little, leaving the kNN graph
#   to dominate the fit. **On a CPU**, the torch backend runs the same loop with
#   torch's CPU kernels and is usually no faster than scipy, and it can be
#   much slower on a busy machine, where torch's thread pool competes with
#   other processes for the cores (``torch.set_num_threads`` controls it).
#   ``solver='auto'``, the default, therefore uses torch only with a GPU.
