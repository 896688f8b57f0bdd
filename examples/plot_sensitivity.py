"""
======================================
Sensitivity of HardNegativeLP's mining
======================================

How much does the accuracy of :class:`~sklearn_mixedlp.HardNegativeLP`
depend on the parameters of its mining? On scikit-learn's hand-written
digits, raw pixels, with 5 labels per class, this example sweeps

* **the paper's mining**, edge removal (eqs. 18-22 of Zhuang & Moulin,
  CVPR 2023) in the paper's literal configuration,
  ``HardNegativeLP.paper()`` (``n_neighbors=50``, ``kernel='power'`` with
  ``gamma=3``, the combinatorial Laplacian of eq. 16, ``mu=1/99``, the
  mixed loss of eq. 24): the weight :math:`\\beta` of the dissimilarity
  loss (eq. 23) and the temperature :math:`\\lambda` of the softmax of eq.
  20, applied to the raw scores. This is the paper's Fig. 5, which reports
  accuracy "not very sensitive to :math:`\\beta`" but sensitive to
  :math:`\\lambda`; the paper's values are :math:`\\beta = 1` and
  :math:`\\lambda = 4`;
* **the default mining**, ``HardNegativeLP()`` (10 self-tuning
  neighbours, the normalised Laplacian, class-mass normalisation,
  ``mu='auto'``; negatives from two views in 2 rounds, cut from the
  graph): its ``temperature`` :math:`\\tau` (default 0.25), the
  disagreement across an edge at which the edge keeps :math:`e^{-1}` of
  its affinity, and its ``view_weight`` :math:`\\eta` (default 0.5), the
  scale :math:`1 + \\eta` of the geometric mean of the two views'
  disagreements (see :ref:`two_view_mining`);

with plain label propagation of the same configuration as the reference.
"""

# %%
# Setup
# -----
# Every fit sees the same label draws, made by
# :func:`~sklearn_mixedlp.datasets.mask_labels`; the accuracy is measured
# on the unlabeled rows. A full documentation build uses 10 draws, a quick
# one (``SKLEARN_MIXEDLP_DOCS_QUICK=1``) 2.
#
# The sweep of the paper's mining fits many models on one graph, so the
# graph is built once with :func:`~sklearn_mixedlp.knn_graph` and passed
# with ``knn_backend='precomputed'``. The default mining cannot take that
# path: its linear view is fitted on the features, and a precomputed graph
# comes without them, so on one it falls back to the propagation's view
# alone (``mining_`` then says ``'agreement'``). Its fits therefore take
# ``X``; the exact neighbour search gives every one of them the same
# graph, the one :func:`~sklearn_mixedlp.knn_graph` returns, as checked
# below.

import os

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp
from scipy import stats
from scipy.sparse.linalg import spsolve
from sklearn.datasets import load_digits

from sklearn_mixedlp import HardNegativeLP, MixedLabelPropagation, knn_graph
from sklearn_mixedlp.datasets import mask_labels

QUICK = os.environ.get("SKLEARN_MIXEDLP_DOCS_QUICK", "") not in ("", "0")
n_draws = 2 if QUICK else 10
n_labeled_per_class = 5

X, y = load_digits(return_X_y=True)
paper_graph = knn_graph(X, n_neighbors=50, kernel="power", gamma=3.0, lift=0.0)
default_graph = knn_graph(X)

y_partial = mask_labels(y, n_labeled_per_class, random_state=0)
labeled = y_partial != -1
on_features = HardNegativeLP().fit(X, y_partial)
on_graph = HardNegativeLP(knn_backend="precomputed").fit(default_graph, y_partial)
same_graph = abs(on_features.affinity_ - (default_graph + default_graph.T)).max() == 0
print(f"HardNegativeLP().fit(X, y): mining_={on_features.mining_!r}")
print(f"its graph is knn_graph(X) + knn_graph(X).T: {same_graph}")
print(
    "HardNegativeLP(knn_backend='precomputed').fit(knn_graph(X), y): "
    f"mining_={on_graph.mining_!r}"
)

# %%
# How large is what the paper's temperature multiplies?
# -----------------------------------------------------
# In the paper, eq. 20 takes the softmax of
# :math:`\lambda (D_{ii} F_i - w_{ij} F_j)`, where :math:`F` is the plain
# label propagation of eq. 16. Only the differences between the classes of
# that vector matter to a softmax, and their scale is not fixed: it
# depends on the graph (the degrees :math:`D_{ii}`) and on :math:`\mu`,
# which sets how much label mass enters the propagation. When
# :math:`\lambda` times that spread is much smaller than 1, every mined
# distribution is nearly uniform, its confidence :math:`\omega` (eq. 21)
# nearly 0, and so is every weight :math:`W^{dis}_{ij}` (eq. 22). We
# measure, on one label draw, the median over the unlabeled rows of
# :math:`\max_c D_{ii} F_{ic} - \min_c D_{ii} F_{ic}` (the term
# :math:`w_{ij} F_j` is much smaller, since :math:`w_{ij} \le 2` while
# :math:`D_{ii}` is in the tens), and the largest weight
# ``dissimilarity_.data.max()`` that ``HardNegativeLP.paper()`` mines at
# :math:`\lambda = 4`, for the paper's graph and two variants. The last
# column is the largest weight that the scale-free edge removal,
# ``HardNegativeLP('hard')`` (:math:`\lambda = 16` in units of the spread
# of the scores, each weight times its edge's affinity), finds with the
# same number of neighbours and :math:`\mu`.


def propagation(model, labeled, y_partial):
    """Plain LP solution F of eq. 16 on a fitted model's graph, and D."""
    W = model.affinity_
    degree = np.asarray(W.sum(axis=1)).ravel()
    u = model.mu_ * labeled  # mu_: the label weight the fit used
    Y = np.zeros((W.shape[0], model.classes_.size))
    Y[np.flatnonzero(labeled), np.searchsorted(model.classes_, y_partial[labeled])] = 1
    F = spsolve((sp.diags(degree + u) - W).tocsc(), u[:, None] * Y)
    return F, degree


print(
    "n_neighbors   mu      median D_ii   median spread of D_ii F_i   "
    "largest W_dis, paper   largest W_dis, scale-free"
)
for n_neighbors, mu in [(50, 1 / 99), (10, 1 / 99), (50, 1.0)]:
    model = HardNegativeLP.paper(n_neighbors=n_neighbors, mu=mu).fit(X, y_partial)
    F, degree = propagation(model, labeled, y_partial)
    spread = np.ptp(degree[:, None] * F, axis=1)[~labeled]
    scale_free = HardNegativeLP("hard", n_neighbors=n_neighbors, mu=mu)
    scale_free.fit(X, y_partial)
    print(
        f"{n_neighbors:>11d}   {mu:<6.3g}  {np.median(degree):>11.1f}   "
        f"{np.median(spread):>25.2e}   {model.dissimilarity_.data.max():>20.1e}   "
        f"{scale_free.dissimilarity_.data.max():>25.2f}"
    )

# %%
# The sweeps
# ----------
# **The paper's mining**: :math:`\beta` takes the values 0, 0.1, 0.3, 1, 2
# and 5 (0 is plain label propagation on the same graph), at the paper's
# :math:`\lambda = 4` and at :math:`\lambda = 400`; :math:`\lambda` takes
# the values 4, 40, 400 and 4000 at the paper's :math:`\beta = 1`. For
# each fit we keep the accuracy and the largest mined weight.
#
# **The default mining**: :math:`\tau` takes the values 0.05 to 2, with the
# linear view (the default :math:`\eta = 0.5`) and without it
# (``mining='agreement'``, marked :math:`\eta = 0` below); :math:`\eta`
# takes the values 0.25 to 4 at the default :math:`\tau = 0.25`. A larger
# :math:`\tau` cuts less of every edge; a larger :math:`\eta` scales up
# the geometric mean of the views' disagreements, and cuts more. Each weight stays below its edge's affinity,
# so for each fit we keep the accuracy and the share of the graph's
# affinity that the last round cuts, ``dissimilarity_.sum() /
# affinity_.sum()``.

betas = [0, 0.1, 0.3, 1, 2, 5]
paper_beta_temperatures = [4, 400]
paper_temperatures = [4, 40, 400, 4000]
taus = [0.05, 0.1, 0.25, 0.5, 1, 2]
etas = [0.25, 0.5, 1, 2, 4]


def default_mining(tau, eta):
    """The default mining at ``tau`` and ``eta``; ``eta=0`` marks the
    propagation's view alone."""
    if eta == 0:
        return HardNegativeLP("agreement", temperature=tau)
    return HardNegativeLP(temperature=tau, view_weight=eta)


paper_settings = sorted(
    {(b, t) for b in betas for t in paper_beta_temperatures}
    | {(1, t) for t in paper_temperatures}
)
default_settings = sorted({(t, e) for t in taus for e in (0, 0.5)} | {(0.25, e) for e in etas})
results = {
    "paper": {s: {"accuracy": [], "weight": []} for s in paper_settings},
    "defaults": {s: {"accuracy": [], "weight": []} for s in default_settings},
}
lp_accuracy = {"paper": [], "defaults": []}

for seed in range(n_draws):
    y_partial = mask_labels(y, n_labeled_per_class, random_state=seed)
    unlabeled = y_partial == -1

    def score(model):
        return np.mean(model.transduction_[unlabeled] == y[unlabeled])

    lp = MixedLabelPropagation.paper(knn_backend="precomputed").fit(paper_graph, y_partial)
    lp_accuracy["paper"].append(score(lp))
    lp_accuracy["defaults"].append(score(MixedLabelPropagation().fit(X, y_partial)))
    for (beta, temperature), result in results["paper"].items():
        model = HardNegativeLP.paper(
            knn_backend="precomputed", beta=beta, temperature=temperature
        ).fit(paper_graph, y_partial)
        result["accuracy"].append(score(model))
        weights = model.dissimilarity_.data
        result["weight"].append(weights.max() if weights.size else 0.0)
    for (tau, eta), result in results["defaults"].items():
        model = default_mining(tau, eta).fit(X, y_partial)
        result["accuracy"].append(score(model))
        result["weight"].append(model.dissimilarity_.sum() / model.affinity_.sum())

for sweep in results.values():
    for result in sweep.values():
        result["accuracy"] = np.array(result["accuracy"])
        result["weight"] = np.array(result["weight"])
lp_accuracy = {config: np.array(acc) for config, acc in lp_accuracy.items()}


def mean_and_ci(values):
    """Mean and half-width of the 95% Student-t confidence interval."""
    values = np.asarray(values)
    half = stats.t.ppf(0.975, len(values) - 1) * stats.sem(values)
    return values.mean(), half


def above_below(acc, reference):
    return f"{(acc > reference).sum()}/{(acc < reference).sum()}"


paper, defaults = results["paper"], results["defaults"]
lp_paper, lp_defaults = lp_accuracy["paper"], lp_accuracy["defaults"]
print(f"--- paper's mining: plain LP {lp_paper.mean():.3f} +/- {mean_and_ci(lp_paper)[1]:.3f}")
for t in paper_beta_temperatures:
    print(
        f"lambda={t:<5d} beta "
        + "  ".join(f"{b:g}: {paper[b, t]['accuracy'].mean():.3f}" for b in betas)
    )
    print(
        f"lambda={t:<5d} draws above / below LP, by beta: "
        + "  ".join(f"{b:g}: {above_below(paper[b, t]['accuracy'], lp_paper)}" for b in betas)
    )
print(
    "beta=1       lambda "
    + "  ".join(f"{t}: {paper[1, t]['accuracy'].mean():.3f}" for t in paper_temperatures)
)
print(
    "beta=1       largest W_dis (median over draws) "
    + "  ".join(f"{t}: {np.median(paper[1, t]['weight']):.1e}" for t in paper_temperatures)
)
print(
    f"--- default mining: plain LP {lp_defaults.mean():.4f} +/- "
    f"{mean_and_ci(lp_defaults)[1]:.4f}"
)
for eta in (0.5, 0):
    print(
        f"eta={eta:<4g} tau "
        + "  ".join(f"{t:g}: {defaults[t, eta]['accuracy'].mean():.4f}" for t in taus)
    )
    print(
        f"eta={eta:<4g} draws above / below LP, by tau: "
        + "  ".join(f"{t:g}: {above_below(defaults[t, eta]['accuracy'], lp_defaults)}" for t in taus)
    )
    print(
        f"eta={eta:<4g} share of the affinity cut "
        + "  ".join(f"{t:g}: {defaults[t, eta]['weight'].mean():.1%}" for t in taus)
    )
print(
    "tau=0.25 eta "
    + "  ".join(f"{e:g}: {defaults[0.25, e]['accuracy'].mean():.4f}" for e in etas)
)
print(
    "tau=0.25 draws above / below LP, by eta: "
    + "  ".join(f"{e:g}: {above_below(defaults[0.25, e]['accuracy'], lp_defaults)}" for e in etas)
)
print(
    "tau=0.25 share of the affinity cut "
    + "  ".join(f"{e:g}: {defaults[0.25, e]['weight'].mean():.1%}" for e in etas)
)

# %%
# Four panels
# -----------
# Top row: the paper's mining in its configuration, accuracy (mean and 95%
# confidence interval over the draws; the dotted band is plain label
# propagation of the same configuration, its mean and confidence
# interval). Bottom row: the default mining. Its effects are smaller than
# the differences between label draws, so the bottom row shows the gain
# over plain LP *in the same draw*, in accuracy points, with the 95%
# confidence interval of that paired gain. The numbers under the curves
# are the largest mined weight at each temperature (top right, median over
# the draws) and the share of the graph's affinity cut (bottom, with the
# linear view; mean over the draws).


def curve(ax, x, settings, sweep, reference=None, **style):
    """Mean and CI of the accuracy, or of the gain in points over reference."""
    if reference is None:
        values = [sweep[s]["accuracy"] for s in settings]
    else:
        values = [100 * (sweep[s]["accuracy"] - reference) for s in settings]
    stats_ = [mean_and_ci(v) for v in values]
    ax.errorbar(
        x, [m for m, _ in stats_], yerr=[h for _, h in stats_], capsize=4, **style
    )


def annotate(ax, x, values, fmt, color):
    for xi, value in zip(x, values):
        ax.annotate(
            fmt.format(value),
            (xi, 0.04),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="center",
            fontsize=8,
            color=color,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )


def log_axis(ax, values):
    ax.set_xscale("log")
    ax.set_xlim(values[0] / 1.6, values[-1] * 1.6)
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()


fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
ax = axes[0, 0]
positions = np.arange(len(betas))
for t, shift, color, marker in zip(paper_beta_temperatures, [-0.06, 0.06], ["C2", "C4"], "os"):
    curve(
        ax, positions + shift, [(b, t) for b in betas], paper,
        color=color, marker=marker, label=rf"$\lambda$ = {t}",
    )
ax.set_xticks(positions, [f"{b:g}" for b in betas])
ax.set_xlabel(r"$\beta$ (evenly spaced)")
ax.set_title(r"paper's mining: sensitivity to $\beta$")

ax = axes[0, 1]
curve(
    ax, paper_temperatures, [(1, t) for t in paper_temperatures], paper,
    color="C3", marker="o", label=r"$\beta$ = 1",
)
annotate(
    ax, paper_temperatures,
    [np.median(paper[1, t]["weight"]) for t in paper_temperatures], "{:.1g}", "C3",
)
log_axis(ax, paper_temperatures)
ax.set_xlabel(r"raw temperature $\lambda$ (log scale)")
ax.set_title(r"paper's mining: sensitivity to $\lambda$ (numbers: largest $W^{dis}$)")

ax = axes[1, 0]
for eta, shift, color, marker in [(0.5, 1.03, "C3", "o"), (0, 0.97, "C1", "s")]:
    curve(
        ax, np.array(taus) * shift, [(t, eta) for t in taus], defaults, lp_defaults,
        color=color, marker=marker,
        label=r"two views, $\eta$ = 0.5" if eta else r"propagation alone, $\eta$ = 0",
    )
annotate(
    ax, taus, [defaults[t, 0.5]["weight"].mean() for t in taus], "{:.1%}", "C3"
)
log_axis(ax, taus)
ax.set_xlabel(r"temperature $\tau$ (log scale)")
ax.set_title(r"default mining: sensitivity to $\tau$ (numbers: share cut)")

ax = axes[1, 1]
eta_positions = np.arange(len(etas))
curve(
    ax, eta_positions, [(0.25, e) for e in etas], defaults, lp_defaults,
    color="C3", marker="o", label=r"$\tau$ = 0.25",
)
annotate(
    ax, eta_positions, [defaults[0.25, e]["weight"].mean() for e in etas], "{:.1%}", "C3"
)
ax.set_xticks(eta_positions, [f"{e:g}" for e in etas])
ax.set_xlabel(r"view weight $\eta$ (evenly spaced)")
ax.set_title(r"default mining: sensitivity to $\eta$ (numbers: share cut)")

lp_mean, lp_half = mean_and_ci(lp_paper)
for ax in axes[0]:
    ax.axhline(lp_mean, color="C0", linestyle=":", label="plain LP")
    ax.axhspan(lp_mean - lp_half, lp_mean + lp_half, color="C0", alpha=0.1)
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 1.005))  # accuracies lie in [0, 1]
    ax.set_ylabel("accuracy on the unlabeled rows")
for ax in axes[1]:
    ax.axhline(0, color="C0", linestyle=":", label="plain LP")
    ax.set_ylabel("gain over plain LP, same draw (points)")
for ax in axes.ravel():
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
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
# The paper's mining, in the paper's configuration:
#
# * **At the paper's** :math:`\lambda = 4` **nothing happens.** On the
#   50-neighbour graph with :math:`\mu = 1/99`, the classes of
#   :math:`D_{ii} F_i` differ by about 0.008 (median), so :math:`\lambda`
#   times that spread is about 0.03: the softmax of eq. 20 is nearly
#   uniform and the largest mined weight is :math:`1.0 \times 10^{-6}`,
#   against affinities of order 1. Accuracy then stays at plain LP's 0.898
#   for every :math:`\beta`, up to 0.900 at :math:`\beta = 5` (a gain in 9
#   of the 10 draws, but of 0.002: the propagated scores are so close to a
#   tie that even such weights move a few arg-maxes). The table at the top
#   shows that this is a matter of scale, not of the method: with 10
#   neighbours the spread is about 5 times larger and the largest weight
#   :math:`6 \times 10^{-3}`; with :math:`\mu = 1` it is about 100 times
#   larger and the weights reach 0.9 at the same :math:`\lambda = 4`. A
#   fixed raw :math:`\lambda` does not carry over between graphs, values
#   of :math:`\mu`, or data sets; the scale-free edge removal of
#   ``HardNegativeLP('hard')`` finds weights of the same order (0.74 to
#   1.20) in all three cases.
# * **The temperature decides whether the negatives exist at all.** At
#   :math:`\beta = 1`, the largest weight goes from :math:`10^{-6}`
#   (:math:`\lambda = 4`) to 0.035 (40) and 0.9 to 1 (400 and 4000). The
#   accuracy does not follow a simple trend: it *drops* to 0.877 at
#   :math:`\lambda = 40`, and is slightly above LP at 400 (0.906) and 4000
#   (0.903).
# * **Once the weights are real, beta matters.** At :math:`\lambda = 400`
#   small values help a little: 0.913 at :math:`\beta = 0.1` and 0.916 at
#   0.3, above LP in 9 of the 10 draws; :math:`\beta = 1` gives 0.906,
#   :math:`\beta = 2` falls below LP (0.892), and :math:`\beta = 5`
#   collapses to 0.711. We therefore do not see the paper's "not very
#   sensitive to :math:`\beta`" on raw digits in its configuration: it
#   holds only while :math:`\lambda` is too small for the negatives to
#   count.
#
# The default mining (plain LP with the defaults: 0.958):
#
# * **Its scale is stable.** The share of the graph's affinity that the
#   last round cuts moves smoothly with :math:`\tau`, from 3.6 % at 0.05 to
#   0.7 % at 2 with the linear view, and the accuracy stays within 0.7
#   points of plain LP over the whole sweep, a 40-fold range of the
#   temperature; the raw :math:`\lambda` above moves the weights over six
#   orders of magnitude.
# * **On the digits the linear view does not help.** The propagation's
#   view alone (``mining='agreement'``, marked :math:`\eta = 0`) gains
#   over plain LP at every :math:`\tau`, in every draw:
#   +0.6 points at the default :math:`\tau = 0.25` (0.964) and at 0.1.
#   Requiring the linear view to agree too gives less here: +0.2 points at
#   the default :math:`\eta = 0.5` (0.960, above LP in 6 draws, below in
#   3), +0.3 at :math:`\eta = 0.25`, and a little less as :math:`\eta`
#   scales the cut up (-0.2 points at 4, the share cut growing from 2.4 %
#   to 3.4 %). With the linear view a larger :math:`\tau` is better here:
#   +0.4 and +0.3 points at 0.5 and at 1, above LP in 9 of the 10 draws. The
#   discriminant, fitted on 64 raw pixels from 50 labels and the
#   pseudolabels, is the weaker of the two views on the digits (see
#   :ref:`sphx_glr_auto_examples_plot_hard_negatives_2d.py`).
#
# The defaults :math:`\tau = 0.25` and :math:`\eta = 0.5` come from the
# package's measurements on the nine data sets of :ref:`benchmark_accuracy`,
# not from the digits alone, where they leave the accuracy near plain LP's.
# These curves were drawn by looking at the
# labels of the unlabeled rows, so the best point of each is an optimistic
# estimate. To choose ``temperature``, ``view_weight`` (or ``mining``) for
# one data set, cross-validate them on the labeled rows, for example with
# :class:`~sklearn_mixedlp.model_selection.SemiSupervisedKFold` (see
# :ref:`sphx_glr_auto_examples_plot_grid_search.py`).
