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

from retrieval import IMAGE_SETS, input_embedding, load, prepare, scores  # noqa: E402

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
    # Proxies started at the class means of the labeled rows and moved 10x
    # faster than the network; a distillation term towards the untrained
    # cosine similarities; no warm-up epochs.
    "w0": (True, {"n_warmup_epochs": 0}),
    "w0_d1": (True, {"n_warmup_epochs": 0, "distillation": 1.0}),
    "means_w0_d1": (True, {"n_warmup_epochs": 0, "distillation": 1.0,
                           "proxy_init": "class_means"}),
    "means": (True, {"proxy_init": "class_means"}),
    "means_noval": (False, {"proxy_init": "class_means"}),
    "means_plr": (True, {"proxy_init": "class_means", "proxy_lr": "10x"}),
    "means_plr_w0": (True, {"proxy_init": "class_means", "proxy_lr": "10x",
                            "n_warmup_epochs": 0}),
    "means_plr_w0_d1": (True, {"proxy_init": "class_means", "proxy_lr": "10x",
                               "n_warmup_epochs": 0, "distillation": 1.0}),
    "means_plr_w0_d1_s16": (True, {"proxy_init": "class_means", "proxy_lr": "10x",
                                   "n_warmup_epochs": 0, "distillation": 1.0,
                                   "scale": 16.0}),
    "means_plr_w0_d1_noval": (False, {"proxy_init": "class_means", "proxy_lr": "10x",
                                      "n_warmup_epochs": 0, "distillation": 1.0}),
    "means_plr_w0_d1_nosel": (False, {"proxy_init": "class_means", "proxy_lr": "10x",
                                      "n_warmup_epochs": 0, "distillation": 1.0,
                                      "validation_fraction": 0.0}),
    "means_plr_w0_nosel": (False, {"proxy_init": "class_means", "proxy_lr": "10x",
                                   "n_warmup_epochs": 0, "validation_fraction": 0.0}),
    "no_bonferroni_noval": (False, {}),
}
# Configurations that change the selection rule: one-sided 97.5 % bound per
# epoch, without the correction for the number of epochs compared.
NO_BONFERRONI = {"no_bonferroni", "no_bonferroni_noval"}


def _traced_epochs(trace, X_te, y_te, X_val, y_val):
    """Wrap DeepMetricLearner._train_epoch so that the state before the
    first epoch and after every epoch are recorded, for research: the test
    classes' R@1 and MAP@R and the validation classes' per-query
    Precision@8 and MAP@R."""
    original = _deep.DeepMetricLearner._train_epoch

    def record(self):
        Z = self.transform(X_te)
        s = scores(Z, y_te, 0, nmi=False)
        Zv = self.transform(X_val)
        q = np.arange(Zv.shape[0])
        trace.append({
            "R@1": s["R@1"], "MAP@R": s["MAP@R"],
            "val_p8": np.round(_deep._per_query_scores(Zv, y_val, q, "precision", k=8),
                               4).tolist(),
            "val_mapr": np.round(_deep._per_query_scores(Zv, y_val, q, "map_at_r"),
                                 4).tolist(),
        })

    def train_epoch(self, *a, **kw):
        if not trace:
            record(self)
        out = original(self, *a, **kw)
        record(self)
        return out

    return train_epoch


def run(args):
    out = open(args.output, "a")
    for name in args.datasets:
        X_raw, y = load(name)
        for seed in args.seeds:
            d = prepare(name, X_raw, y, seed, args.max_train_rows, args.max_eval_rows,
                        args.labels_per_class)
            base = scores(input_embedding(name, d["X_te"], args), d["y_te"], seed,
                          nmi=False)
            line = dict(dataset=name, seed=seed, config="input", **base)
            out.write(json.dumps(line) + "\n")
            out.flush()
            for config in args.configs:
                use_val, kw = CONFIGS[config]
                kw = dict(kw)
                est = kw.pop("estimator", HardNegativeLP())
                if name in IMAGE_SETS:
                    from sklearn_mixedlp.nets import efficientnet_lite0

                    kw.setdefault("module", efficientnet_lite0)
                    kw.setdefault("module_kwargs", {"image_size": args.image_size})
                for key in ("n_epochs", "lr"):
                    if getattr(args, key) is not None:
                        kw.setdefault(key, getattr(args, key))
                if kw.get("proxy_lr") == "10x":
                    lr = kw.get("lr") or (1e-3 if "module" not in kw else 1e-4)
                    kw["proxy_lr"] = 10 * lr
                dml = DeepMetricLearner(
                    estimator=est, device="cpu", random_state=seed,
                    validation_data=(d["X_val"], d["y_val"]) if use_val else None, **kw,
                )
                t0 = time.perf_counter()
                trace = []
                original_epoch = _deep.DeepMetricLearner._train_epoch
                if args.trace:
                    _deep.DeepMetricLearner._train_epoch = _traced_epochs(
                        trace, d["X_te"], d["y_te"], d["X_val"], d["y_val"])
                original = _deep._gain_lower_bound
                if config in NO_BONFERRONI:
                    _deep._gain_lower_bound = lambda diff, n: original(diff, 1)
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        dml.fit(d["X_tr"], d["y_tr"])
                finally:
                    _deep._gain_lower_bound = original
                    _deep.DeepMetricLearner._train_epoch = original_epoch
                fit_s = time.perf_counter() - t0
                s = scores(dml.transform(d["X_te"]), d["y_te"], seed, nmi=False)
                line = dict(
                    dataset=name, seed=seed, config=config, **s, best_epoch=dml.best_epoch_,
                    fit_s=fit_s,
                    valid=[h["valid_score"] for h in dml.history_],
                )
                if trace:
                    line["trace"] = trace
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


def _kept_state(trace, metric, bonferroni):
    """The state a selection on the per-query validation ``metric`` keeps:
    the largest mean gain over the untrained state among the epochs whose
    one-sided 97.5 % Student lower bound is above zero (Bonferroni over
    the epochs when asked), else the untrained state."""
    ref = np.asarray(trace[0][metric])
    kept, best = 0, 0.0
    for epoch in range(1, len(trace)):
        diff = np.asarray(trace[epoch][metric]) - ref
        gain, lower = _deep._gain_lower_bound(diff, len(trace) - 1 if bonferroni else 1)
        if lower > 0 and gain > best:
            kept, best = epoch, gain
    return kept


def simulate_selection(path, rst=None):
    """Replay selection rules on traced runs (``--trace``): test R@1 and
    MAP@R of the state each rule keeps, minus the untrained state's."""
    rows = [json.loads(line) for line in open(path)]
    rows = [r for r in rows if r.get("trace")]
    rules = {
        "last epoch": lambda tr: len(tr) - 1,
        "P@8, Bonferroni (the learner's)": lambda tr: _kept_state(tr, "val_p8", True),
        "P@8, no correction": lambda tr: _kept_state(tr, "val_p8", False),
        "MAP@R, Bonferroni": lambda tr: _kept_state(tr, "val_mapr", True),
        "best test R@1 (oracle)": lambda tr: int(np.argmax([s["R@1"] for s in tr])),
    }
    header = ["set", "configuration", "rule", "ΔR@1 mean [worst]", "ΔMAP@R mean [worst]",
              "kept"]
    table = []
    for (name, config) in dict.fromkeys((r["dataset"], r["config"]) for r in rows):
        group = [r for r in rows if r["dataset"] == name and r["config"] == config]
        for rule, pick in rules.items():
            kept = [pick(r["trace"]) for r in group]
            d1 = [100 * (r["trace"][k]["R@1"] - r["trace"][0]["R@1"]) for r, k in zip(group, kept)]
            dm = [100 * (r["trace"][k]["MAP@R"] - r["trace"][0]["MAP@R"])
                  for r, k in zip(group, kept)]
            table.append([name, config, rule, f"{np.mean(d1):+.2f} [{min(d1):+.2f}]",
                          f"{np.mean(dm):+.2f} [{min(dm):+.2f}]",
                          "/".join(map(str, kept))])
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    sep = "  ".join("=" * w for w in widths)
    fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    text = "\n".join([sep, fmt(header), sep, *map(fmt, table), sep, ""])
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
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--n-epochs", type=int, default=None, help="default: the learner's")
    p.add_argument("--lr", type=float, default=None, help="default: the learner's")
    p.add_argument("--output", default="doc/benchmarks/dml_levers.jsonl")
    p.add_argument("--trace", action="store_true",
                   help="record test scores and per-query validation scores of "
                   "every state (research)")
    p.add_argument("--summarise", default=None, help="a JSON-lines file to summarise")
    p.add_argument("--selection", action="store_true",
                   help="with --summarise on a traced file: replay selection rules")
    p.add_argument("--rst", default=None, help="write the summary tables here")
    args = p.parse_args(argv)
    if args.summarise and args.selection:
        simulate_selection(args.summarise, args.rst)
    elif args.summarise:
        summarise(args.summarise, args.rst)
    else:
        run(args)


if __name__ == "__main__":
    main()
