"""Class-disjoint retrieval benchmark of DeepMetricLearner.

The retrieval protocol of Zhuang & Moulin (CVPR 2023, Sec. 4): per seed the
*classes* are split 40 % / 20 % / 40 % into train / validation / test
(:func:`~sklearn_mixedlp.model_selection.class_disjoint_split`).

- training rows: the rows of the train classes, ``--labels-per-class`` labels
  kept per class, the rest ``-1`` (optionally subsampled to
  ``--max-train-rows`` rows, stratified, for speed);
- validation rows: the rows of the validation classes, labeled, passed as
  ``validation_data`` (Precision@8 selects the epoch; the untrained state is
  a candidate), optionally capped at ``--max-eval-rows``;
- test rows: the rows of the test classes (optionally capped at
  ``--max-eval-rows``), on which Recall@1/2/4/8, Precision@8, MAP@R and NMI
  are computed (cosine similarity, each query excluding itself).

Feature sets: ``letter`` and ``penbased`` (KEEL) standardised with a
StandardScaler fit on the training rows; ``fashion_mnist``: pixels in
[0, 1] reduced to 64 dimensions with a PCA fit on the training rows;
``wordnet``: 384-d all-MiniLM-L6-v2 sentence embeddings of WordNet noun
glosses, 24 classes (``benchmarks/text_embeddings.py`` builds them).
Image sets, fine-tuning a pretrained EfficientNet-Lite0 end to end
(:func:`sklearn_mixedlp.nets.efficientnet_lite0`, images resized to
``--image-size``): ``digits_effnet`` (scikit-learn's 8 x 8 digits) and
``fashion_effnet`` (Fashion-MNIST 28 x 28); their "input features" are the
pretrained network's pooled 1280-d features.

Methods, all ``DeepMetricLearner`` at its defaults unless said:

(a) input features: no training;
(b) labeled only: as many epochs as the others, on the labeled rows alone
    (``n_warmup_epochs=n_epochs``, ``n_epochs=0``);
(c) plain-LP pseudolabels: ``estimator=MixedLabelPropagation()``;
(d) HardNegativeLP pseudolabels: ``estimator=HardNegativeLP()``;
(e) HardNegativeLP, no validation_data: (d) without the validation
    classes, as a user without them would run it (the learner then holds
    out some labeled classes itself).

Run::

    python benchmarks/retrieval.py --datasets letter penbased fashion_mnist wordnet \
        --seeds 0 1 2 --output-dir doc/benchmarks
"""

import argparse
import json
import os
import shlex
import sys
import time
import warnings

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from sklearn_mixedlp import DeepMetricLearner, HardNegativeLP, MixedLabelPropagation  # noqa: E402
from sklearn_mixedlp.datasets import load_fashion_mnist, load_keel, mask_labels  # noqa: E402
from sklearn_mixedlp.metrics import map_at_r, nmi_score, precision_at_k, recall_at_k  # noqa: E402
from sklearn_mixedlp.model_selection import class_disjoint_split  # noqa: E402

METHODS = [
    "input features",
    "labeled only",
    "plain-LP pseudolabels",
    "HardNegativeLP pseudolabels",
    "HardNegativeLP, no validation_data",
]
METRICS = ["R@1", "R@2", "R@4", "R@8", "P@8", "MAP@R", "NMI"]
IMAGE_SETS = ("digits_effnet", "fashion_effnet")


def load(name):
    if name in ("letter", "penbased"):
        return load_keel(name, return_X_y=True)
    if name == "fashion_mnist":
        return load_fashion_mnist(return_X_y=True)
    if name == "wordnet":
        from text_embeddings import load_wordnet_embeddings

        X, y, _ = load_wordnet_embeddings()
        return X, y
    if name == "digits_effnet":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return (X / 16.0).reshape(-1, 1, 8, 8).astype(np.float32), y
    if name == "fashion_effnet":
        data = load_fashion_mnist()
        images = np.asarray(data.images, dtype=np.float32)
        if images.max() > 1:
            images /= 255.0
        return images[:, None], data.target
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
    if name in IMAGE_SETS:  # images in [0, 1], (n, 1, H, W)
        return np.asarray(X, dtype=np.float32)
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
    if nmi:  # k-means on the unit vectors that the cosine retrieval ranks
        Zn = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-30)
        out["NMI"] = nmi_score(Zn, y, random_state=seed)
    return out


def learner_params(name, args, seed):
    """DeepMetricLearner keyword arguments shared by the trained methods."""
    params = dict(device="cpu", random_state=seed)
    for key in ("n_epochs", "n_warmup_epochs", "lr", "batch_size"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if name in IMAGE_SETS:
        from sklearn_mixedlp.nets import efficientnet_lite0

        params.update(module=efficientnet_lite0,
                      module_kwargs={"image_size": args.image_size})
    return params


def input_embedding(name, X, args):
    """The 'input features' of a set: X itself, or the pretrained network's."""
    if name not in IMAGE_SETS:
        return X
    import torch

    from sklearn_mixedlp.nets import efficientnet_lite0

    net = efficientnet_lite0(input_shape=X.shape[1:], image_size=args.image_size).eval()
    with torch.no_grad():
        return torch.cat([net(b) for b in torch.tensor(X).split(256)]).numpy()


def run_seed(name, X_raw, y, seed, args, log):
    d = prepare(name, X_raw, y, seed, args.max_train_rows, args.max_eval_rows,
                args.labels_per_class)
    size = dict(
        n_train=d["train_idx"].size, n_labeled=int(np.sum(d["y_tr"] != -1)),
        n_val=d["val_idx"].size, n_test=d["test_idx"].size,
        c_train=np.unique(y[d["train_idx"]]).size, c_val=np.unique(d["y_val"]).size,
        c_test=np.unique(d["y_te"]).size,
    )
    out = {"input features": scores(input_embedding(name, d["X_te"], args), d["y_te"], seed)}
    params = learner_params(name, args, seed)
    val = (d["X_val"], d["y_val"])
    learners = {
        # The same number of epochs, on the labeled rows alone (as warm-up
        # epochs, with no pseudolabel epoch).
        "labeled only": DeepMetricLearner(
            MixedLabelPropagation(),
            **{**params, "n_epochs": 0,
               "n_warmup_epochs": params.get("n_epochs", DeepMetricLearner().n_epochs)},
            validation_data=val,
        ),
        "plain-LP pseudolabels": DeepMetricLearner(
            MixedLabelPropagation(), **params, validation_data=val
        ),
        "HardNegativeLP pseudolabels": DeepMetricLearner(
            HardNegativeLP(), **params, validation_data=val
        ),
        "HardNegativeLP, no validation_data": DeepMetricLearner(HardNegativeLP(), **params),
    }
    epochs = {}
    for method, dml in learners.items():
        if method not in args.methods:
            continue
        t0 = time.perf_counter()
        dml.fit(d["X_tr"], d["y_tr"])
        fit_s = time.perf_counter() - t0
        out[method] = scores(dml.transform(d["X_te"]), d["y_te"], seed)
        epochs[method] = dict(
            fit_s=fit_s, best_epoch=dml.best_epoch_, reason=dml.best_epoch_reason_,
            n_states=len(dml.history_),
            time_s={ph: [h["time_s"] for h in dml.history_ if h["phase"] == ph]
                    for ph in ("initial", "warmup", "train")},
            valid=[h["valid_score"] for h in dml.history_],
        )
        print(
            f"  [{name} seed {seed}] {method}: fit {fit_s:.1f}s, kept epoch "
            f"{dml.best_epoch_}/{len(dml.history_) - 1}, test R@1 "
            f"{out[method]['R@1']:.4f} (input {out['input features']['R@1']:.4f}) "
            f"MAP@R {out[method]['MAP@R']:.4f} "
            f"(input {out['input features']['MAP@R']:.4f})",
            flush=True,
        )
    log.write(json.dumps(dict(dataset=name, seed=seed, size=size, scores=out,
                              epochs=epochs)) + "\n")
    log.flush()
    return out


def merge_records(records):
    """One record per (set, seed): a later record's methods replace the
    same methods of an earlier one and keep the others (so that a run of
    a few ``--methods`` updates those rows of the tables alone)."""
    merged = {}
    for r in records:
        key = r["dataset"], r["seed"]
        if key not in merged:
            merged[key] = r
            continue
        old = merged[key]
        merged[key] = dict(r, scores={**old["scores"], **r["scores"]},
                           epochs={**old["epochs"], **r["epochs"]})
    return list(merged.values())


def interval(values):
    """Mean and half-width of the 95 % Student-t interval, in points."""
    v = 100 * np.asarray(values, dtype=float)
    if v.size < 2:
        return v.mean(), 0.0
    return v.mean(), stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)


def fmt(values):
    m, h = interval(values)
    return f"{m:.1f} ± {h:.1f}"


def rst_table(rows, header):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    sep = "  ".join("=" * w for w in widths)
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([sep, line(header), sep, *map(line, rows), sep])


def report(records, args, command):
    """The rst text and figure of the records (one per set and seed)."""
    sets = list(dict.fromkeys(r["dataset"] for r in records))
    methods = [m for m in METHODS if any(m in r["scores"] for r in records)]
    by = {(r["dataset"], r["seed"]): r for r in records}
    seeds = {s: sorted(r["seed"] for r in records if r["dataset"] == s) for s in sets}

    rows = []
    for s in sets:
        for m in methods:
            vals = [by[s, k]["scores"][m] for k in seeds[s] if m in by[s, k]["scores"]]
            rows.append([s, m, *(fmt([v[k] for v in vals]) for k in METRICS)])
    table = rst_table(rows, ["Set", "Method", *METRICS])

    drows = []
    for s in sets:
        for m in methods[1:]:
            ks = [k for k in seeds[s] if m in by[s, k]["scores"]]
            cells = []
            for metric in ("R@1", "MAP@R"):
                diff = [by[s, k]["scores"][m][metric] - by[s, k]["scores"]["input features"][metric]
                        for k in ks]
                mean, half = interval(diff)
                cells += [f"{mean:+.2f} ± {half:.2f}", f"{100 * min(diff):+.2f}"]
            kept = [by[s, k]["epochs"][m]["best_epoch"] for k in ks]
            cells.append(", ".join(map(str, kept)))
            drows.append([s, m, *cells])
    diff_table = rst_table(drows, ["Set", "Method", "ΔR@1", "worst ΔR@1", "ΔMAP@R",
                                   "worst ΔMAP@R", "kept epochs"])

    trows = []
    for s in sets:
        for m in methods[1:]:
            t = {ph: [] for ph in ("initial", "warmup", "train")}
            fits = []
            for k in seeds[s]:
                e = by[s, k]["epochs"].get(m)
                if e is None:
                    continue
                fits.append(e["fit_s"])
                for ph in t:
                    t[ph] += e["time_s"][ph]
            cell = lambda v: f"{np.mean(v):.2f}" if v else "-"  # noqa: E731
            trows.append([s, m, cell(t["warmup"]), cell(t["train"]), f"{np.mean(fits):.0f}"])
    time_table = rst_table(trows, ["Set", "Method", "s / warm-up epoch",
                                   "s / pseudolabel epoch", "s / fit"])

    size_lines = []
    for s in sets:
        z = [by[s, k]["size"] for k in seeds[s]]
        size_lines.append(
            f"- ``{s}``: {z[0]['c_train']} / {z[0]['c_val']} / {z[0]['c_test']} train / "
            f"validation / test classes; per seed {z[0]['n_train']} training rows "
            f"({z[0]['n_labeled']} labeled), {z[0]['n_val']} validation rows, "
            f"{z[0]['n_test']} test rows (seeds {', '.join(map(str, seeds[s]))})."
        )
    return table, diff_table, time_table, "\n".join(size_lines)


def figure(records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(r["dataset"] for r in records))
    methods = [m for m in METHODS if any(m in r["scores"] for r in records)]
    fig, axes = plt.subplots(2, len(sets), figsize=(3.2 * len(sets), 6.2), squeeze=False)
    for j, s in enumerate(sets):
        recs = [r for r in records if r["dataset"] == s]
        for i, metric in enumerate(("R@1", "MAP@R")):
            ax = axes[i, j]
            for x, m in enumerate(methods):
                diff = [100 * (r["scores"][m][metric] - r["scores"]["input features"][metric])
                        for r in recs if m in r["scores"]]
                mean, half = interval(np.asarray(diff) / 100)
                ax.bar(x, mean, 0.7, yerr=half, capsize=3, color=f"C{x}")
                ax.plot([x] * len(diff), diff, "k.", ms=4)
            ax.axhline(0, color="k", lw=0.8)
            lo, hi = ax.get_ylim()  # at least +-1 point, so that float noise
            ax.set_ylim(min(lo, -1.0), max(hi, 1.0))  # does not look like a bar
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels([m.split(" ")[0].replace(",", "") + ("\n(no val)" if "no val" in m else "")
                                for m in methods], fontsize=7, rotation=30)
            ax.set_title(f"{s}: {metric}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"test {metric} − input features (points)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+",
                   default=["letter", "penbased", "fashion_mnist", "wordnet"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", default=METHODS[1:])
    p.add_argument("--n-epochs", type=int, default=None, help="default: the learner's")
    p.add_argument("--n-warmup-epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--max-train-rows", type=int, default=None,
                   help="stratified subsample of the train classes' rows")
    p.add_argument("--max-eval-rows", type=int, default=None,
                   help="stratified subsample of the validation and of the test rows")
    p.add_argument("--labels-per-class", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--log", default=None, help="JSON lines, appended (default: "
                   "OUTPUT_DIR/retrieval.jsonl)")
    p.add_argument("--report-only", action="store_true",
                   help="write the tables and figure from the log, run nothing")
    p.add_argument("--output-dir", default="doc/benchmarks")
    p.add_argument("--prefix", default="retrieval",
                   help="names of the outputs: PREFIX_tables.rst, PREFIX.png")
    args = p.parse_args(argv)
    command = "python benchmarks/retrieval.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    log_path = args.log or os.path.join(args.output_dir, f"{args.prefix}.jsonl")
    os.makedirs(args.output_dir, exist_ok=True)
    if not args.report_only:
        import torch

        torch.set_num_threads(args.threads)
        with open(log_path, "a") as log:
            for name in args.datasets:
                X_raw, y = load(name)
                for seed in args.seeds:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", category=UserWarning)
                        run_seed(name, X_raw, y, seed, args, log)
    records = merge_records(json.loads(line) for line in open(log_path))
    table, diff_table, time_table, sizes = report(records, args, command)
    text = "\n\n".join([
        "Sizes:\n\n" + sizes,
        "Mean ± 95 % t-interval over seeds, in percent:\n\n" + table,
        "Paired difference to the input features on the same seed (points; "
        "``kept epochs``: the epoch the learner kept per seed, 0 = untrained):\n\n"
        + diff_table,
        "Time per epoch and per fit (CPU, one thread):\n\n" + time_table,
    ]) + "\n"
    print(text)
    with open(os.path.join(args.output_dir, f"{args.prefix}_tables.rst"), "w") as f:
        f.write(text)
    figure(records, os.path.join(args.output_dir, f"{args.prefix}.png"))
    print(f"wrote {args.output_dir}/{args.prefix}_tables.rst and {args.prefix}.png "
          f"({command})")


if __name__ == "__main__":
    main()
