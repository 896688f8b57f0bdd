"""Levers of DeepMetricLearner's defaults, measured one at a time.

The class-disjoint protocol of ``benchmarks/retrieval.py`` (40 / 20 / 40 %
of the classes, 5 labels per training class), on the feature sets of that
benchmark, at a smaller size (``--max-train-rows``, ``--max-eval-rows``)
so that many configurations fit. Every configuration runs on the same
splits, label draws and seeds, so differences are paired. Each line of the
output file (JSON) is one (set, seed, configuration): test R@1 and MAP@R,
the kept epoch and the fit time.

Run::

    python benchmarks/dml_levers.py --datasets letter penbased fashion_mnist wordnet \\
        --seeds 0 1 2 --configs default default_noval ... --output doc/benchmarks/dml_levers.jsonl
    python benchmarks/dml_levers.py --summarise doc/benchmarks/dml_levers.jsonl
"""

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from retrieval import load, prepare, scores  # noqa: E402

from sklearn_mixedlp import DeepMetricLearner, HardNegativeLP, MixedLabelPropagation  # noqa: E402
from sklearn_mixedlp import _deep  # noqa: E402
from sklearn_mixedlp._deep import mlp_head  # noqa: E402


def _residual(**kw):
    return dict(module_kwargs={"hidden_dim": 256}, **kw)


# name -> (uses validation_data, DeepMetricLearner keyword arguments)
CONFIGS = {
    "default": (True, {}),
    "default_noval": (False, {}),
    "no_selection": (False, {"validation_fraction": 0.0}),
    "plain_lp": (True, {"estimator": MixedLabelPropagation()}),
    "residual": (True, _residual()),
    "residual_noval": (False, _residual()),
    "lr1e-3": (True, {"lr": 1e-3}),
    "lr1e-3_noval": (False, {"lr": 1e-3}),
    "lr3e-5": (True, {"lr": 3e-5}),
    "holdout0.3_noval": (False, {"validation_fraction": 0.3}),
    "old_mlp64_noval": (False, {"module": mlp_head, "embedding_dim": 64,
                                "validation_fraction": 0.0}),
    "old_mlp64_val": (True, {"module": mlp_head, "embedding_dim": 64}),
    "epochs5": (True, {"n_epochs": 5}),
    "lr1e-4": (True, {"lr": 1e-4}),
    "no_bonferroni": (True, {}),
    "no_bonferroni_noval": (False, {}),
}
# Configurations that change the selection rule: one-sided 97.5 % bound per
# epoch, without the correction for the number of epochs compared.
NO_BONFERRONI = {"no_bonferroni", "no_bonferroni_noval"}


def run(args):
    out = open(args.output, "a")
    for name in args.datasets:
        X_raw, y = load(name)
        for seed in args.seeds:
            d = prepare(name, X_raw, y, seed, args.max_train_rows, args.max_eval_rows,
                        args.labels_per_class)
            base = scores(d["X_te"], d["y_te"], seed, nmi=False)
            line = dict(dataset=name, seed=seed, config="input", **base)
            out.write(json.dumps(line) + "\n")
            out.flush()
            for config in args.configs:
                use_val, kw = CONFIGS[config]
                kw = dict(kw)
                est = kw.pop("estimator", HardNegativeLP())
                dml = DeepMetricLearner(
                    estimator=est, device="cpu", random_state=seed,
                    validation_data=(d["X_val"], d["y_val"]) if use_val else None, **kw,
                )
                t0 = time.perf_counter()
                original = _deep._gain_lower_bound
                if config in NO_BONFERRONI:
                    _deep._gain_lower_bound = lambda diff, n: original(diff, 1)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        dml.fit(d["X_tr"], d["y_tr"])
                finally:
                    _deep._gain_lower_bound = original
                fit_s = time.perf_counter() - t0
                s = scores(dml.transform(d["X_te"]), d["y_te"], seed, nmi=False)
                line = dict(
                    dataset=name, seed=seed, config=config, **s, best_epoch=dml.best_epoch_,
                    fit_s=fit_s,
                    valid=[h["valid_score"] for h in dml.history_],
                )
                out.write(json.dumps(line) + "\n")
                out.flush()
                print(f"{name} seed {seed} {config}: R@1 {s['R@1']:.4f} "
                      f"(input {base['R@1']:.4f}) MAP@R {s['MAP@R']:.4f} "
                      f"(input {base['MAP@R']:.4f}) best {dml.best_epoch_} "
                      f"{fit_s:.0f}s", flush=True)


def summarise(path, rst=None):
    """Paired differences to the input features, per configuration and set."""
    rows = [json.loads(line) for line in open(path)]
    # The latest line of every (set, seed, configuration).
    rows = list({(r["dataset"], r["seed"], r["config"]): r for r in rows}.values())
    sets = sorted({r["dataset"] for r in rows})
    configs = [c for c in dict.fromkeys(r["config"] for r in rows) if c != "input"]
    lines = []
    for metric in ("R@1", "MAP@R"):
        header = ["configuration", *sets]
        table = []
        for c in configs:
            cells = [c]
            for s in sets:
                base = {r["seed"]: r[metric] for r in rows
                        if r["dataset"] == s and r["config"] == "input"}
                diff = [100 * (r[metric] - base[r["seed"]]) for r in rows
                        if r["dataset"] == s and r["config"] == c and r["seed"] in base]
                kept = [r["best_epoch"] for r in rows
                        if r["dataset"] == s and r["config"] == c and r["seed"] in base]
                cells.append(
                    f"{np.mean(diff):+.2f} [{min(diff):+.2f}, {max(diff):+.2f}] "
                    f"({'/'.join(map(str, kept))})" if diff else "-"
                )
            table.append(cells)
        widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
        sep = "  ".join("=" * w for w in widths)
        fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
        lines += [f"Test {metric} minus the input features' (points): mean [worst, best] "
                  "over the seeds (kept epoch per seed)", "", sep, fmt(header), sep,
                  *map(fmt, table), sep, ""]
    text = "\n".join(lines)
    print(text)
    if rst:
        with open(rst, "w") as f:
            f.write(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["letter", "penbased"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--configs", nargs="+", default=["default", "default_noval"])
    p.add_argument("--max-train-rows", type=int, default=3000)
    p.add_argument("--max-eval-rows", type=int, default=2000)
    p.add_argument("--labels-per-class", type=int, default=5)
    p.add_argument("--output", default="doc/benchmarks/dml_levers.jsonl")
    p.add_argument("--summarise", default=None, help="a JSON-lines file to summarise")
    p.add_argument("--rst", default=None, help="write the summary tables here")
    args = p.parse_args(argv)
    if args.summarise:
        summarise(args.summarise, args.rst)
    else:
        run(args)


if __name__ == "__main__":
    main()
