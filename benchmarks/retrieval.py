"""Class-disjoint retrieval benchmark of DeepMetricLearner (SPEC sections 7-8).

The retrieval protocol of Zhuang & Moulin (CVPR 2023, Sec. 4): per seed the
*classes* are split 40 % / 20 % / 40 % into train / validation / test
(:func:`~sklearn_mixedlp.model_selection.class_disjoint_split`).

- training rows: the rows of the train classes, ``--labels-per-class`` labels
  kept per class, the rest ``-1`` (optionally subsampled to
  ``--max-train-rows`` rows, stratified, for speed);
- validation rows: the rows of the validation classes, labeled, used to pick
  the best epoch by Precision@8 (optionally capped at ``--max-eval-rows``);
- test rows: the rows of the test classes (optionally capped at
  ``--max-eval-rows``), on which Recall@1/2/4/8, Precision@8, MAP@R and NMI
  are computed (cosine similarity, each query excluding itself).

Features: ``letter`` (KEEL, 16 features) standardised with a StandardScaler
fit on the training rows; Fashion-MNIST pixels in [0, 1] reduced to 64
dimensions with a PCA fit on the training rows.

Methods:

(a) input features: the standardised / PCA features, no training;
(b) labeled only: DeepMetricLearner with ``n_epochs=0`` (only the warm-up
    epochs on the labeled rows);
(c) DeepMetricLearner(estimator=MixedLabelPropagation()): plain-LP
    pseudolabels;
(d) DeepMetricLearner(estimator=HardNegativeLP()): the paper's method.

Run::

    python benchmarks/retrieval.py --datasets letter fashion_mnist --seeds 0 1 2 \\
        --n-epochs 5 --n-warmup-epochs 5 --max-train-rows 3000 --output-dir doc/benchmarks
"""

import argparse
import os
import shlex
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from sklearn_mixedlp import DeepMetricLearner, HardNegativeLP, MixedLabelPropagation
from sklearn_mixedlp.datasets import load_fashion_mnist, load_keel, mask_labels
from sklearn_mixedlp.metrics import map_at_r, nmi_score, precision_at_k, recall_at_k
from sklearn_mixedlp.model_selection import class_disjoint_split

METHODS = ["input features", "labeled only", "plain-LP pseudolabels", "HardNegativeLP pseudolabels"]
METRICS = ["R@1", "R@2", "R@4", "R@8", "P@8", "MAP@R", "NMI"]


def load(name):
    if name in ("letter", "penbased"):
        return load_keel(name, return_X_y=True)
    if name == "fashion_mnist":
        return load_fashion_mnist(return_X_y=True)
    if name == "wordnet":
        from text_embeddings import load_wordnet_embeddings

        X, y, _ = load_wordnet_embeddings()
        return X, y
    raise ValueError(f"unknown dataset {name!r}")


def stratified_cap(idx, y, cap, rng):
    """At most ``cap`` rows of ``idx``, the same fraction from every class."""
    if cap is None or idx.size <= cap:
        return idx
    frac = cap / idx.size
    keep = []
    for c in np.unique(y[idx]):
        rows = idx[y[idx] == c]
        n = max(1, int(round(frac * rows.size)))
        keep.append(rng.choice(rows, n, replace=False))
    return np.sort(np.concatenate(keep))


def features(name, X, train_idx, seed):
    X = np.asarray(X, dtype=np.float64)
    if name == "wordnet":  # sentence embeddings, used as they are
        return X.astype(np.float32)
    if name == "fashion_mnist":
        tf = PCA(n_components=64, random_state=seed).fit(X[train_idx])
    else:
        tf = StandardScaler().fit(X[train_idx])
    return tf.transform(X).astype(np.float32)


def prepare(name, X_raw, y, seed, max_train_rows, max_eval_rows, labels_per_class):
    """The class-disjoint split, features and masked labels of one seed."""
    rng = np.random.RandomState(seed)
    train_idx, val_idx, test_idx = class_disjoint_split(y, random_state=seed)
    train_idx = stratified_cap(train_idx, y, max_train_rows, rng)
    val_idx = stratified_cap(val_idx, y, max_eval_rows, rng)
    test_idx = stratified_cap(test_idx, y, max_eval_rows, rng)
    X = features(name, X_raw, train_idx, seed)
    return dict(
        X_tr=X[train_idx], X_val=X[val_idx], X_te=X[test_idx],
        y_tr=mask_labels(y[train_idx], labels_per_class, random_state=seed),
        y_val=y[val_idx], y_te=y[test_idx], train_idx=train_idx, val_idx=val_idx,
        test_idx=test_idx,
    )


def scores(Z, y, seed, nmi=True):
    r = recall_at_k(Z, y, k=[1, 2, 4, 8])
    out = {
        "R@1": r[1], "R@2": r[2], "R@4": r[4], "R@8": r[8],
        "P@8": precision_at_k(Z, y, k=8),
        "MAP@R": map_at_r(Z, y),
    }
    if nmi:
        out["NMI"] = nmi_score(Z, y, random_state=seed)
    return out


def run_seed(name, X_raw, y, seed, args, sizes, epoch_times):
    rng = np.random.RandomState(seed)
    train_idx, val_idx, test_idx = class_disjoint_split(y, random_state=seed)
    train_idx = stratified_cap(train_idx, y, args.max_train_rows, rng)
    val_idx = stratified_cap(val_idx, y, args.max_eval_rows, rng)
    test_idx = stratified_cap(test_idx, y, args.max_eval_rows, rng)
    X = features(name, X_raw, train_idx, seed)
    X_tr, X_val, X_te = X[train_idx], X[val_idx], X[test_idx]
    y_tr = mask_labels(y[train_idx], args.labels_per_class, random_state=seed)
    y_val, y_te = y[val_idx], y[test_idx]
    sizes.append(
        dict(
            n_train=train_idx.size, n_labeled=int(np.sum(y_tr != -1)),
            n_val=val_idx.size, n_test=test_idx.size,
            c_train=np.unique(y[train_idx]).size, c_val=np.unique(y_val).size,
            c_test=np.unique(y_te).size,
        )
    )
    out = {"input features": scores(X_te, y_te, seed)}
    common = dict(
        module_kwargs={"hidden_dim": 256}, n_warmup_epochs=args.n_warmup_epochs,
        lr=args.lr, batch_size=args.batch_size, validation_data=(X_val, y_val),
        device="cpu", random_state=seed,
    )
    def make(cls):
        return cls.paper() if args.config == "paper" else cls()

    learners = {
        # n_epochs=0: only the warm-up epochs on the labeled rows.
        "labeled only": DeepMetricLearner(make(MixedLabelPropagation), n_epochs=0, **common),
        "plain-LP pseudolabels": DeepMetricLearner(
            make(MixedLabelPropagation), n_epochs=args.n_epochs, **common
        ),
        "HardNegativeLP pseudolabels": DeepMetricLearner(
            make(HardNegativeLP), n_epochs=args.n_epochs, **common
        ),
    }
    for method, dml in learners.items():
        t0 = time.perf_counter()
        dml.fit(X_tr, y_tr)
        fit_s = time.perf_counter() - t0
        for h in dml.history_:
            epoch_times.setdefault((method, h["phase"]), []).append(h["time_s"])
        out[method] = scores(dml.transform(X_te), y_te, seed)
        print(
            f"  [{name} seed {seed}] {method}: fit {fit_s:.1f}s, best epoch "
            f"{dml.best_epoch_}, val P@8 "
            f"{[round(h['valid_precision_at_8'], 3) for h in dml.history_]}, "
            f"test R@1 {out[method]['R@1']:.3f} MAP@R {out[method]['MAP@R']:.3f}",
            flush=True,
        )
    return out


def fmt(values):
    values = np.asarray(values)
    return f"{values.mean():.3f} ± {values.std(ddof=1) if values.size > 1 else 0.0:.3f}"


def rst_table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    sep = "  ".join("=" * w for w in widths)
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([sep, line(header), sep, *map(line, rows), sep])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["letter", "fashion_mnist"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--n-epochs", type=int, default=5)
    p.add_argument("--n-warmup-epochs", type=int, default=5)
    p.add_argument("--max-train-rows", type=int, default=None,
                   help="stratified subsample of the train classes' rows")
    p.add_argument("--max-eval-rows", type=int, default=None,
                   help="stratified subsample of the validation and of the test rows")
    p.add_argument("--labels-per-class", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--config", choices=["defaults", "paper"], default="defaults",
                   help="the estimators' defaults or their .paper() configuration")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--output-dir", default="doc/benchmarks")
    args = p.parse_args(argv)
    command = "python benchmarks/retrieval.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )

    results, info, times = {}, {}, {}
    t_start = time.perf_counter()
    for name in args.datasets:
        X_raw, y = load(name)
        per_seed, sizes, epoch_times = [], [], {}
        for seed in args.seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                per_seed.append(run_seed(name, X_raw, y, seed, args, sizes, epoch_times))
        results[name] = {
            m: {k: [s[m][k] for s in per_seed] for k in METRICS} for m in METHODS
        }
        info[name] = (X_raw.shape, sizes)
        times[name] = {k: float(np.mean(v)) for k, v in epoch_times.items()}
    total_s = time.perf_counter() - t_start

    header = ["Dataset", "Method", *METRICS]
    rows = []
    for name in args.datasets:
        for m in METHODS:
            rows.append([name, m, *(fmt(results[name][m][k]) for k in METRICS)])
    table = rst_table(rows, header)

    epoch_rows = []
    for name in args.datasets:
        for (m, phase), t in sorted(times[name].items()):
            epoch_rows.append([name, m, phase, f"{t:.2f}"])
    epoch_table = rst_table(epoch_rows, ["Dataset", "Method", "Epoch phase", "Seconds / epoch"])

    size_lines = []
    for name in args.datasets:
        shape, sizes = info[name]
        s = sizes[0]
        size_lines.append(
            f"``{name}`` ({shape[0]} rows x {shape[1]} features): per seed "
            f"{s['c_train']} / {s['c_val']} / {s['c_test']} train / validation / test "
            f"classes; training rows "
            f"{', '.join(str(z['n_train']) for z in sizes)} "
            f"({', '.join(str(z['n_labeled']) for z in sizes)} labeled), validation rows "
            f"{', '.join(str(z['n_val']) for z in sizes)}, test rows "
            f"{', '.join(str(z['n_test']) for z in sizes)} (seeds "
            f"{', '.join(map(str, args.seeds))})."
        )
    capped = []
    if args.max_train_rows:
        capped.append(
            f"the train classes' rows are subsampled (stratified) to at most "
            f"{args.max_train_rows} rows for speed"
        )
    if args.max_eval_rows:
        capped.append(
            f"the validation and the test rows are each subsampled (stratified) "
            f"to at most {args.max_eval_rows} rows"
        )
    cap_text = ("; ".join(capped).capitalize() + ".") if capped else "No rows are subsampled."

    header_par = f"""\
Class-disjoint retrieval (SPEC section 8): per seed the classes are split
40 % / 20 % / 40 % into train / validation / test classes; the training rows
keep {args.labels_per_class} labels per train class (the rest unlabeled), the
labeled validation rows pick the best epoch by Precision@8, and the metrics
are computed on the test classes' rows (cosine, query excluded), mean ± std
(ddof=1) over seeds {', '.join(map(str, args.seeds))}. {cap_text}
Features: ``letter`` standardised (StandardScaler fit on the training rows);
Fashion-MNIST pixels reduced to 64 dimensions by a PCA fit on the training
rows. DeepMetricLearner: MLP ``Linear(d, 256) -> ReLU -> Linear(256, 64)``,
AdamW lr={args.lr:g} (not the paper's 1e-4, which barely moves this small MLP in a
few epochs), weight decay 1e-4, batch {args.batch_size},
{args.n_warmup_epochs} warm-up epochs on the labeled rows, then
{args.n_epochs} pseudolabel epochs; "labeled only" is the warm-up alone
(``n_epochs=0``). Estimators at their defaults. CPU (2 shared cores), total
{total_s / 60:.1f} min.

Command::

    {command}

""" + "\n\n".join(size_lines) + "\n"

    text = header_par + "\n" + table + "\n\nTime per epoch (mean over seeds and epochs):\n\n" + epoch_table + "\n"
    print()
    print(text)

    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "retrieval.rst"), "w") as f:
        f.write(text)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.datasets), figsize=(5.5 * len(args.datasets), 4), squeeze=False)
    for ax, name in zip(axes[0], args.datasets):
        x = np.arange(len(METHODS))
        for j, (metric, off) in enumerate([("R@1", -0.2), ("MAP@R", 0.2)]):
            vals = [results[name][m][metric] for m in METHODS]
            ax.bar(x + off, [np.mean(v) for v in vals], 0.4,
                   yerr=[np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals],
                   label=metric, capsize=3)
        ax.set_xticks(x)
        ax.set_xticklabels([m.replace(" pseudolabels", "\npseudolabels") for m in METHODS], fontsize=8)
        ax.set_title(f"{name} (test classes)")
        ax.set_ylim(0, 1)
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.output_dir, "retrieval.png"), dpi=120)
    print(f"wrote {args.output_dir}/retrieval.rst and retrieval.png")


if __name__ == "__main__":
    main()
