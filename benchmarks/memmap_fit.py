"""The command line on a memory-mapped ``.npy`` file: time per stage and peak memory.

Writes ``--rows`` rows of the sphere mixture (``--classes`` classes, 64
dimensions, concentration 30, float32, the model of
:func:`~sklearn_mixedlp.datasets.make_sphere_mixture`) to ``FEATURES.npy``
chunk by chunk (``np.lib.format.open_memmap``: the matrix is never in
memory whole), 10 labels per class to ``LABELS.npy``, then runs
``sklearn-mixedlp FEATURES.npy --labels LABELS.npy --output PRED.npy
--n-neighbors K`` in a fresh process and reports its stage lines, each
with the largest resident memory sampled during the stage (``VmRSS`` of
the child every 0.2 s, and its anonymous part ``RssAnon``: without the
pages of the mapped features, which the kernel can drop and read again),
its wall time, its peak resident memory
(``ru_maxrss`` of the child: data, libraries and the pages of the mapped
file that are mapped in) and the accuracy on the unlabeled rows.

Run::

    python benchmarks/memmap_fit.py --rows 2000000 --workdir /tmp/memmap_fit
    python benchmarks/memmap_fit.py --rows 10000000 --workdir /tmp/memmap_fit
"""

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def write_data(workdir, n_rows, n_classes, seed, chunk=2**18):
    """Features, labels (10 per class, -1 elsewhere) and the true classes."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, 64))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    X = np.lib.format.open_memmap(
        workdir / "features.npy", mode="w+", dtype=np.float32, shape=(n_rows, 64)
    )
    y = rng.integers(0, n_classes, n_rows)
    for start in range(0, n_rows, chunk):
        rows = slice(start, min(start + chunk, n_rows))
        block = means[y[rows]] + rng.normal(size=(rows.stop - rows.start, 64)) / np.sqrt(30.0)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[rows] = block
    X.flush()
    del X
    labels = np.full(n_rows, -1)
    for c in range(n_classes):
        labels[rng.choice(np.flatnonzero(y == c), 10, replace=False)] = c
    np.save(workdir / "labels.npy", labels)
    np.save(workdir / "classes.npy", y)


def _rss_gib(pid):
    """Resident memory of process ``pid`` in GiB, all of it and its
    anonymous part (without the pages of mapped files, such as the
    features), or zeros once it has exited."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(":")[0]
                if key in ("VmRSS", "RssAnon"):
                    found[key] = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return found.get("VmRSS", 0.0), found.get("RssAnon", 0.0)


def run_sampled(command, interval=0.2):
    """Run ``command``; its stdout, and its stderr lines each followed by
    the largest resident memory sampled since the previous line."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [(0.0, 0.0)]
    lines = []

    def highest(a, b):
        return max(a[0], b[0]), max(a[1], b[1])

    def sample():
        while proc.poll() is None:
            peak[0] = highest(peak[0], _rss_gib(proc.pid))
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for line in proc.stderr:
        line = line.rstrip("\n")
        if line.startswith("[") and "in all)" in line:
            rss, anon = highest(peak[0], _rss_gib(proc.pid))
            line = f"{line} [RSS <= {rss:.2f} GiB, anonymous <= {anon:.2f} GiB]"
            peak[0] = (0.0, 0.0)
        lines.append(line)
    stdout = proc.stdout.read()
    proc.wait()
    sampler.join()
    return proc.returncode, lines, stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--n-neighbors", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default="/tmp/memmap_fit")
    parser.add_argument("--output", default=None, help="also write the report here")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    write_data(workdir, args.rows, args.classes, args.seed)
    written = time.perf_counter() - start
    command = [
        sys.executable, "-m", "sklearn_mixedlp", str(workdir / "features.npy"),
        "--labels", str(workdir / "labels.npy"), "--output", str(workdir / "pred.npy"),
        "--n-neighbors", str(args.n_neighbors), "--no-progress",
    ]
    start = time.perf_counter()
    returncode, stderr, stdout = run_sampled(command)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    lines = [
        f"{args.rows:,} rows x 64 float32 ({args.rows * 256 / 2**30:.2f} GiB file, "
        f"written in {written:.0f} s), {args.classes} classes, k = {args.n_neighbors}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
        "$ sklearn-mixedlp features.npy --labels labels.npy --output pred.npy "
        f"--n-neighbors {args.n_neighbors}",
        *[ln for ln in stderr if ln.startswith("[")],
        *stdout.splitlines(),
    ]
    if returncode == 0:
        y = np.load(workdir / "classes.npy")
        labels = np.load(workdir / "labels.npy")
        pred = np.load(workdir / "pred.npy")
        unlabeled = labels == -1
        accuracy = float((pred[unlabeled] == y[unlabeled]).mean())
        lines.append(
            f"wall time {wall:.1f} s, peak RSS {peak:.2f} GiB, accuracy on the "
            f"unlabeled rows {accuracy:.3f}"
        )
    else:
        lines += [f"failed with status {returncode}", *stderr[-5:]]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        Path(args.output).write_text(report)


if __name__ == "__main__":
    main()
