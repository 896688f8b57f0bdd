"""
=====================================================
Sensitivity of HardNegativeLP to beta and temperature
=====================================================

:class:`~sklearn_mixedlp.HardNegativeLP` has two parameters of its own:
the weight :math:`\\beta` of the dissimilarity loss (eq. 23 of Zhuang &
Moulin, CVPR 2023) and the temperature :math:`\\lambda` of the softmax that
mines the negatives (eq. 20). The paper's Fig. 5 reports accuracy "not very
sensitive to :math:`\\beta`" but sensitive to :math:`\\lambda`. This example
repeats the sweep on scikit-learn's hand-written digits, raw pixels, with 5
labels per class and the other parameters at the paper's defaults
(``n_neighbors=50``, ``gamma=3``, ``mu=1/99``), with plain label
propagation as the reference.
"""

# %%
# Setup
# -----
# Every fit sees the same label draws, made by
# :func:`~sklearn_mixedlp.datasets.mask_labels`; the accuracy is measured
# on the unlabeled rows. A full documentation build uses 10 draws, a quick
# one (``SKLEARN_MIXEDLP_DOCS_QUICK=1``) 3.

import os

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.linalg import spsolve
from sklearn.datasets import load_digits

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import mask_labels

QUICK = os.environ.get("SKLEARN_MIXEDLP_DOCS_QUICK", "") not in ("", "0")
n_draws = 3 if QUICK else 10
n_labeled_per_class = 5

X, y = load_digits(return_X_y=True)

# %%
# How large is what the temperature multiplies?
# ---------------------------------------------
# Eq. 20 takes the softmax of :math:`\lambda (D_{ii} F_i - w_{ij} F_j)`,
# where :math:`F` is the plain label propagation of eq. 16. Only the
# differences between the classes of that vector matter to a softmax, and
# their scale is not fixed: it depends on the graph (the degrees
# :math:`D_{ii}`) and on :math:`\mu`, which sets how much label mass enters
# the propagation. When :math:`\lambda` times that spread is much smaller
# than 1, every mined distribution is nearly uniform, its confidence
# :math:`\omega` (eq. 21) nearly 0, and so is every weight
# :math:`W^{dis}_{ij}` (eq. 22). We measure, on one label draw, the median
# over the unlabeled rows of :math:`\max_c D_{ii} F_{ic} - \min_c D_{ii}
# F_{ic}` (the term :math:`w_{ij} F_j` is much smaller, since
# :math:`w_{ij} \le 2` while :math:`D_{ii}` is in the tens), and the
# largest weight ``dissimilarity_.data.max()`` that ``HardNegativeLP()``
# mines at :math:`\lambda = 4`, for the default graph and two variants.


def propagation(model, labeled, y_partial):
    """Plain LP solution F of eq. 16 on a fitted model's graph, and D."""
    W = model.affinity_
    degree = np.asarray(W.sum(axis=1)).ravel()
    u = model.mu * labeled
    Y = np.zeros((W.shape[0], model.classes_.size))
    Y[np.flatnonzero(labeled), np.searchsorted(model.classes_, y_partial[labeled])] = 1
    F = spsolve((sp.diags(degree + u) - W).tocsc(), u[:, None] * Y)
    return F, degree


y_partial = mask_labels(y, n_labeled_per_class, random_state=0)
labeled = y_partial != -1
print("n_neighbors   mu      median D_ii   median spread of D_ii F_i   largest W_dis")
for n_neighbors, mu in [(50, 1 / 99), (10, 1 / 99), (50, 1.0)]:
    model = HardNegativeLP(n_neighbors=n_neighbors, mu=mu).fit(X, y_partial)
    F, degree = propagation(model, labeled, y_partial)
    spread = np.ptp(degree[:, None] * F, axis=1)[~labeled]
    print(
        f"{n_neighbors:>11d}   {mu:<6.3g}  {np.median(degree):>11.1f}   "
        f"{np.median(spread):>25.2e}   {model.dissimilarity_.data.max():>13.1e}"
    )

# %%
# Sweep beta and the temperature
# ------------------------------
# :math:`\beta` takes the values 0, 0.1, 0.5, 1, 2 and 5, at the paper's
# :math:`\lambda = 4` and at :math:`\lambda = 400`; :math:`\lambda` takes
# the values 4, 40, 400, 4000 and 40000 at the default :math:`\beta = 1`.
# For each fit we keep the accuracy and the largest mined weight.

betas = [0, 0.1, 0.5, 1, 2, 5]
temperatures = [4, 40, 400, 4000, 40000]
beta_temperatures = [4, 400]
settings = {(b, t) for b in betas for t in beta_temperatures}
settings |= {(1, t) for t in temperatures}

lp_accuracy = np.zeros(n_draws)
accuracy = {s: np.zeros(n_draws) for s in sorted(settings)}
largest_weight = {s: np.zeros(n_draws) for s in sorted(settings)}
for seed in range(n_draws):
    y_partial = mask_labels(y, n_labeled_per_class, random_state=seed)
    unlabeled = y_partial == -1
    lp = MixedLabelPropagation().fit(X, y_partial)
    lp_accuracy[seed] = np.mean(lp.transduction_[unlabeled] == y[unlabeled])
    for (beta, temperature), acc in accuracy.items():
        model = HardNegativeLP(beta=beta, temperature=temperature).fit(X, y_partial)
        acc[seed] = np.mean(model.transduction_[unlabeled] == y[unlabeled])
        largest_weight[beta, temperature][seed] = model.dissimilarity_.data.max()


def mean_and_ci(values):
    """Mean and half-width of the 95% Student-t confidence interval."""
    values = np.asarray(values)
    half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
    return values.mean(), half


lp_mean, lp_half = mean_and_ci(lp_accuracy)
print(f"plain LP: {lp_mean:.3f} +/- {lp_half:.3f}")
for t in beta_temperatures:
    print(
        f"lambda={t:<5d} beta "
        + "  ".join(f"{b:g}: {mean_and_ci(accuracy[b, t])[0]:.3f}" for b in betas)
    )
print(
    "beta=1   lambda "
    + "  ".join(f"{t}: {mean_and_ci(accuracy[1, t])[0]:.3f}" for t in temperatures)
)
for t in beta_temperatures:
    print(
        f"lambda={t:<5d} draws where HardNegativeLP beats LP, by beta: "
        + "  ".join(f"{b:g}: {(accuracy[b, t] > lp_accuracy).sum()}" for b in betas)
    )
print(
    "beta=1   largest W_dis (median over draws) "
    + "  ".join(f"{t}: {np.median(largest_weight[1, t]):.1e}" for t in temperatures)
)

# %%
# Two panels
# ----------
# Mean and 95% confidence interval over the draws; the dotted band is plain
# label propagation (its mean and confidence interval). On the right, the
# numbers under the curve are the largest mined weight at each temperature
# (median over the draws).

fig, (ax_beta, ax_temp) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)

positions = np.arange(len(betas))
for t, shift, color, marker in zip(
    beta_temperatures, [-0.06, 0.06], ["C2", "C4"], "os"
):
    stats_ = [mean_and_ci(accuracy[b, t]) for b in betas]
    ax_beta.errorbar(
        positions + shift,
        [m for m, _ in stats_],
        yerr=[h for _, h in stats_],
        capsize=4,
        color=color,
        marker=marker,
        label=rf"HardNegativeLP, $\lambda$ = {t}",
    )
ax_beta.set_xticks(positions, [f"{b:g}" for b in betas])
ax_beta.set_xlabel(r"$\beta$ (evenly spaced)")
ax_beta.set_ylabel("accuracy on the unlabeled rows")
ax_beta.set_title(r"Sensitivity to $\beta$")

stats_ = [mean_and_ci(accuracy[1, t]) for t in temperatures]
means = [m for m, _ in stats_]
ax_temp.errorbar(
    temperatures,
    means,
    yerr=[h for _, h in stats_],
    capsize=4,
    color="C3",
    marker="o",
    label=r"HardNegativeLP, $\beta$ = 1",
)
for t in temperatures:
    ax_temp.annotate(
        f"{np.median(largest_weight[1, t]):.1e}",
        (t, 0.35),
        xycoords=("data", "axes fraction"),
        ha="center",
        va="center",
        fontsize=8,
        color="C3",
    )
ax_temp.set_xscale("log")
ax_temp.set_xlim(2.5, 64000)
ax_temp.set_xticks(temperatures, [str(t) for t in temperatures])
ax_temp.minorticks_off()
ax_temp.set_xlabel(r"temperature $\lambda$ (log scale)")
ax_temp.set_title(r"Sensitivity to $\lambda$ (numbers: largest $W^{dis}$)")

for ax in (ax_beta, ax_temp):
    ax.axhline(lp_mean, color="C0", linestyle=":", label="plain LP")
    ax.axhspan(lp_mean - lp_half, lp_mean + lp_half, color="C0", alpha=0.1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=9)
fig.suptitle(
    f"Digits, {n_labeled_per_class} labels per class, mean and 95% CI over "
    f"{n_draws} draws"
)
fig.tight_layout()
plt.show()

# %%
# What the figure shows
# ---------------------
#
# The numbers are those of a full build (10 draws); a quick build prints
# its own above.
#
# * **At the paper's** :math:`\lambda = 4` **nothing happens.** On the
#   default 50-neighbour graph with :math:`\mu = 1/99`, the classes of
#   :math:`D_{ii} F_i` differ by about 0.008 (median), so
#   :math:`\lambda` times that spread is about 0.03: the softmax of eq. 20
#   is nearly uniform and the largest mined weight is
#   :math:`1.0 \times 10^{-6}`, against affinities of order 1. Accuracy
#   then stays at plain LP's 0.898 for every :math:`\beta`, up to 0.900 at
#   :math:`\beta = 5` (a gain in 9 of the 10 draws, but of 0.002: the
#   propagated scores are so close to a tie that even such weights move a
#   few arg-maxes). The table at the top shows that this is a matter
#   of scale, not of the method: with 10 neighbours the spread is about 5
#   times larger and the largest weight :math:`6 \times 10^{-3}`; with
#   :math:`\mu = 1` it is about 100 times larger and the weights reach
#   0.9 at the same :math:`\lambda = 4`. A fixed :math:`\lambda` does not
#   carry over between graphs, values of :math:`\mu`, or data sets.
# * **The temperature decides whether the negatives exist at all.** At
#   :math:`\beta = 1`, the largest weight goes from :math:`10^{-6}`
#   (:math:`\lambda = 4`) to 0.035 (40) and 0.9 to 1 (400 and above). The
#   accuracy does not follow a simple trend: it *drops* to 0.877 at
#   :math:`\lambda = 40`, is slightly above LP at 400 (0.906) and 4000
#   (0.903), and back to 0.894 at 40000, all within about 2 points of LP.
# * **Once the weights are real, beta matters.** At :math:`\lambda = 400`
#   small values help a little: 0.913 at :math:`\beta = 0.1` and 0.5,
#   above LP in 9 of the 10 draws; :math:`\beta = 1` gives 0.906,
#   :math:`\beta = 2` falls below LP (0.892), and :math:`\beta = 5`
#   collapses to 0.711. On raw digits we therefore do not see the paper's
#   "not very sensitive to :math:`\beta`": that holds here only while
#   :math:`\lambda` is too small for the negatives to count.
#
# These curves were drawn by looking at the labels of the unlabeled rows,
# so the best point of each is an optimistic estimate. To choose
# ``temperature`` and ``beta`` in practice, cross-validate them on the
# labeled rows, for example with
# :class:`~sklearn_mixedlp.model_selection.SemiSupervisedKFold`.
