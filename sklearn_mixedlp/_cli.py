"""Command line interface: label a feature file from a few labels.

``sklearn-mixedlp FEATURES --labels LABELS --output OUT`` reads a feature
matrix (``.npy``, ``.npz``, ``.csv`` or ``.parquet``) and one label per row
(empty or ``-1`` for the unlabeled rows), fits one of the transductive
estimators of this package and writes, for every input row, the predicted
label, its confidence and the class probabilities. ``python -m
sklearn_mixedlp`` runs the same program.

Example session (``digits.npy``: the 1797 x 64 digits features;
``labels.csv``: a ``label`` header, then one line per row, empty for the
1747 unlabeled rows)::

    $ sklearn-mixedlp digits.npy --labels labels.csv --output pred.csv --n-neighbors 10
    [sklearn-mixedlp] features: digits.npy, 1797 rows x 64 columns
    [sklearn-mixedlp] labels: labels.csv, 50 labeled rows, 10 classes
    [sklearn-mixedlp] fitting HardNegativeLP(n_neighbors=10)
    [HardNegativeLP] neighbors: 10 neighbours with 'faiss' (0.12s, 0.12s in all)
    [HardNegativeLP] graph: 25070 stored entries (0.00s, 0.12s in all)
    [HardNegativeLP] label_propagation: 81 iterations (0.04s, 0.16s in all)
    [HardNegativeLP] mining: 5022 negative edges (0.01s, 0.16s in all)
    [HardNegativeLP] mixed_solve: 70 iterations (0.03s, 0.20s in all)
    [HardNegativeLP] output: distributions, confidences (0.00s, 0.20s in all)
    [sklearn-mixedlp] writing pred.csv
    sklearn-mixedlp: wrote pred.csv: 1797 rows, 50 labeled, 10 classes, method hard, 0.24s
    $ head -2 pred.csv | cut -c 1-64
    label,confidence,proba_0,proba_1,proba_2,proba_3,proba_4,proba_5
    0,0.9186398667032514,0.9691656637049283,0.000559696047857417,0.0

Progress goes to stderr (``--quiet`` silences it; on a terminal, or with
``--progress``, a progress bar follows each long stage), the summary to
stdout. A ``.npy`` feature file is memory-mapped: float32 and float64 files
are read in place, and a truncated file is reported before any work.
Errors (a missing file, a wrong shape, non-numeric features, a label count
that does not match the rows, no labeled row, ...) are reported on stderr as
``sklearn-mixedlp: error: ...`` with exit status 2, and no output is written;
the output file is written atomically (to a temporary file in the same
directory, then renamed).
"""

import argparse
import contextlib
import csv
import inspect
import math
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings

import numpy as np

from ._label_propagation import HardNegativeLP, MixedLabelPropagation
from ._utils import UNLABELED_TEXT, progress_bars, unlabeled_mask
from ._solvers import resolve_solver

PROG = "sklearn-mixedlp"

FEATURE_EXTENSIONS = (".npy", ".npz", ".csv", ".parquet")
LABEL_EXTENSIONS = (".npy", ".csv", ".txt")
OUTPUT_EXTENSIONS = (".csv", ".npy", ".npz")

# --method -> (estimator class, positional argument, description)
METHODS = {
    "lp": (MixedLabelPropagation, None, "plain label propagation"),
    "mom": (MixedLabelPropagation, "mom", "LP with Mining-on-Manifolds negatives"),
    "control": (HardNegativeLP, "control", "LP with the 'Control' negatives"),
    "hard": (HardNegativeLP, None, "LP with mined hard negatives"),
    "edge-removal": (
        HardNegativeLP,
        "hard",
        "LP with the paper's edge-removal negatives",
    ),
}
_MINED = ("hard", "edge-removal")
DEFAULT_METHOD = "hard"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + 15  # SIGTERM, as a shell reports it

_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(HardNegativeLP).parameters.items()
}

EPILOG = f"""\
methods:
  lp       {METHODS["lp"][2]} (MixedLabelPropagation())
  mom      {METHODS["mom"][2]} (MixedLabelPropagation('mom'))
  control  {METHODS["control"][2]} (HardNegativeLP('control'))
  hard     {METHODS["hard"][2]} (HardNegativeLP(), the default)
  edge-removal
           {METHODS["edge-removal"][2]} (HardNegativeLP('hard'))
  --paper  the same methods in the paper's literal configuration
           (e.g. HardNegativeLP.paper(): k=50, gamma=3, combinatorial
           Laplacian, temperature 4 on the raw scores, beta=1)

labels:
  One label per feature row: integers or text. An unlabeled row is an empty
  entry, -1, or a missing-value mark: NaN, NA, N/A, <NA>, None, null, ?,
  unlabeled (any case). Numeric labels must be whole numbers. A header line in a
  label file (e.g. 'label') is skipped when the file has one line more than
  there are rows.

output:
  .csv  columns label, confidence, proba_<class> (one per class)
  .npz  arrays label, confidence, proba (rows x classes) and classes
  .npy  the predicted labels only

example:
  # digits.npy: 1797 x 64 features; labels.csv: one label per row, most empty
  {PROG} digits.npy --labels labels.csv --output pred.csv

  # labels in the 'digit' column of a CSV file, probabilities as arrays
  {PROG} digits.csv --label-column digit --output pred.npz --method lp
"""


class CLIError(ValueError):
    """A usage or data error: reported on stderr, exit status 2 (a
    :class:`ValueError`, for the callers of :func:`load_features`)."""


class _Terminated(BaseException):
    """Raised by the SIGTERM handler, so that a temporary output file is
    removed on the way out, as for Ctrl-C."""


def _raise_terminated(signum, frame):
    raise _Terminated


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`_Terminated` inside the block (main thread
    only; elsewhere signals cannot be handled)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- argument parsing ----------------------------------------------------


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _neighbors_type(text):
    return "auto" if text == "auto" else _positive_int(text)


def _float_type(*, allow_zero):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
            bound = "non-negative" if allow_zero else "positive"
            raise argparse.ArgumentTypeError(f"{text!r} must be a {bound} number")
        return value

    return parse


def _class_prior_type(text):
    """``LABEL=WEIGHT[,LABEL=WEIGHT...]`` -> list of (label text, weight)."""
    pairs = []
    for item in text.split(","):
        label, sep, weight = item.rpartition("=")
        label = label.strip()
        if not sep or not label:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not LABEL=WEIGHT (e.g. --class-prior cat=6,dog=3,bird=1)"
            )
        pairs.append((label, _float_type(allow_zero=True)(weight.strip())))
    labels = [label for label, _ in pairs]
    repeated = sorted({t for t in labels if labels.count(t) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"labels given twice: {', '.join(repeated)}")
    return pairs


def _class_prior(pairs, classes):
    """The weights of ``pairs`` (from :func:`_class_prior_type`) in the
    order of ``classes`` (the sorted labels of the fit); every class needs
    one and every label must be a class."""
    def key(text):
        if classes.dtype.kind not in "iu":
            return text
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if math.isfinite(number) and number == round(number) else text

    given = {key(label): weight for label, weight in pairs}
    known = set(classes.tolist())
    unknown = [label for label, _ in pairs if key(label) not in known]
    if unknown:
        raise CLIError(
            f"--class-prior names {', '.join(map(repr, unknown))}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not a labeled class "
            f"({', '.join(map(str, classes.tolist()))})"
        )
    missing = [c for c in classes.tolist() if c not in given]
    if missing:
        raise CLIError(
            f"--class-prior gives no weight to class(es) "
            f"{', '.join(map(str, missing))}: every labeled class needs one"
        )
    return [given[c] for c in classes.tolist()]


def build_parser():
    """Build the argument parser of the ``sklearn-mixedlp`` command.

    Returns
    -------
    parser : argparse.ArgumentParser
        The parser; its epilog shows a usage example.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Semi-supervised labeling of a feature file from a few labels:\n"
            "kNN-graph label propagation with mined negatives. Writes the\n"
            "predicted label, its confidence and the class probabilities of\n"
            "every row."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "features",
        metavar="FEATURES",
        help="feature matrix, one row per sample: .npy, .npz, .csv (numeric, "
        "optional header) or .parquet (needs pyarrow)",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--labels",
        metavar="FILE",
        help="labels, one per feature row (.npy, .csv or .txt); empty, -1, "
        "NA, None, null, ... mark an unlabeled row (see 'labels' below)",
    )
    source.add_argument(
        "--label-column",
        metavar="NAME_OR_INDEX",
        help="take the labels from this column of FEATURES (a header name, "
        "or a 0-based index, negative from the end); the column is removed "
        "from the features",
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file: .csv, .npz or .npy (see 'output' below)",
    )
    parser.add_argument(
        "--features-key",
        metavar="KEY",
        help="name of the feature array in a .npz file holding several arrays",
    )
    header = parser.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        default=None,
        help="the first line of CSV/TXT files is a header (default: detected)",
    )
    header.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        help="the first line of CSV/TXT files is data, not a header",
    )

    model = parser.add_argument_group("model options")
    model.add_argument(
        "--method",
        choices=tuple(METHODS),
        default=DEFAULT_METHOD,
        help=f"estimator (default: {DEFAULT_METHOD}; see 'methods' below)",
    )
    model.add_argument(
        "--paper",
        action="store_true",
        help="the paper's literal configuration instead of the defaults "
        "(see 'methods' below)",
    )
    model.add_argument(
        "--n-neighbors",
        type=_neighbors_type,
        metavar="K",
        help="neighbours of the kNN graph, or 'auto' (the square root of the "
        f"rows per label, within [10, 50]; default: {_DEFAULTS['n_neighbors']})",
    )
    model.add_argument(
        "--lift",
        type=_float_type(allow_zero=True),
        metavar="C",
        help="height of a constant coordinate appended to every row, in units "
        "of the root-mean-square row norm: 0 builds the graph on the rows' "
        "directions (cosine), more keeps part of their norms "
        f"(default: {_DEFAULTS['lift']:g})",
    )
    model.add_argument(
        "--class-prior",
        type=_class_prior_type,
        metavar="LABEL=W,...",
        help="the class proportions of the data when known and unlike the "
        "labels' (e.g. cat=6,dog=3,bird=1; normalised): the masses class-mass "
        "normalisation aims at (default: the labels' proportions)",
    )
    model.add_argument(
        "--temperature",
        type=_float_type(allow_zero=False),
        metavar="T",
        help="temperature of the mining, --method hard and edge-removal only "
        "(default: 0.25 for hard, 16 for edge-removal)",
    )
    model.add_argument(
        "--beta",
        type=_float_type(allow_zero=True),
        metavar="B",
        help="weight of the negative edges, all methods but lp "
        f"(default: {_DEFAULTS['beta']:g})",
    )
    model.add_argument(
        "--solver",
        choices=("auto", "scipy", "torch"),
        help=f"conjugate-gradient backend (default: {_DEFAULTS['solver']})",
    )
    model.add_argument(
        "--device",
        metavar="DEVICE",
        help="auto, cpu, cuda or cuda:N, for the torch solver "
        f"(default: {_DEFAULTS['device']})",
    )
    model.add_argument(
        "--max-iter",
        type=_positive_int,
        metavar="N",
        help=f"maximum iterations of each solve (default: {_DEFAULTS['max_iter']})",
    )
    model.add_argument(
        "--tol",
        type=_float_type(allow_zero=False),
        metavar="TOL",
        help=f"relative residual tolerance (default: {_DEFAULTS['tol']:g})",
    )
    model.add_argument(
        "--seed",
        type=int,
        metavar="SEED",
        help="random seed of the approximate neighbour search",
    )

    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress bar for each long stage of the fit (the neighbour "
        "search, each conjugate-gradient solve) on stderr (default: when "
        "stderr is a terminal; never with --quiet)",
    )
    display = parser.add_mutually_exclusive_group()
    display.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress messages and no summary (warnings and errors only)",
    )
    display.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more progress detail: solver summaries (-v), iterations (-vv)",
    )
    return parser


# -- small helpers ---------------------------------------------------------


def _extension(path):
    return os.path.splitext(path)[1].lower()


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _show(value, limit=40):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_input_file(path, what):
    if not os.path.exists(path):
        raise CLIError(f"{what} file {path!r} does not exist")
    if os.path.isdir(path):
        raise CLIError(f"{what} file {path!r} is a directory")
    if not os.access(path, os.R_OK):
        raise CLIError(f"{what} file {path!r} is not readable")


def _open_text(path, what):
    try:
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CLIError(f"cannot read {what} file {path!r}: {exc.strerror}") from None


def _decode_error(path, what, exc):
    return CLIError(
        f"{what} file {path!r} is not UTF-8 text (undecodable byte at offset "
        f"{exc.start}); its entries cannot be parsed"
    )


def _read_text_lines(path, what):
    """Lines of a text file (any line ends), without the empty string after
    a final line end."""
    try:
        with _open_text(path, what) as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise _decode_error(path, what, exc) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _read_csv_rows(path, what, *, drop_blank_tail=True):
    """Rows of a CSV file, cells stripped; trailing blank lines dropped
    unless ``drop_blank_tail`` is False."""
    try:
        with _open_text(path, what) as fh:
            rows = [[cell.strip() for cell in row] for row in csv.reader(fh)]
    except UnicodeDecodeError as exc:
        raise _decode_error(path, what, exc) from None
    except csv.Error as exc:
        raise CLIError(f"cannot parse {what} file {path!r} as CSV: {exc}") from None
    while drop_blank_tail and rows and not rows[-1]:
        rows.pop()
    return rows


def _looks_like_header(rows):
    """Whether the first CSV row is a header: some column is non-numeric in
    the first row and numeric (or empty) in the next rows."""
    first, sample = rows[0], rows[1:51]
    if all(_is_number(cell) for cell in first):
        return False
    if not sample:
        return True
    for j, cell in enumerate(first):
        if cell and not _is_number(cell):
            column = [row[j] for row in sample if j < len(row)]
            if column and all(c == "" or _is_number(c) for c in column):
                return True
    return False


def _resolve_column(spec, names, n_columns, path):
    """Index of the column named or numbered by ``spec`` (name first)."""
    if names is not None and spec in names:
        return names.index(spec)
    try:
        index = int(spec)
    except ValueError:
        if names is None and _extension(path) == ".csv":
            raise CLIError(
                f"--label-column {spec!r} is not a column index and {path!r} "
                "has no header row to look a name up in (pass a 0-based index, "
                "or --header if the first line holds the column names)"
            ) from None
        if names is None:
            raise CLIError(
                f"--label-column {spec!r} is not a column index, and the array "
                f"in {path!r} has no column names: pass a 0-based index"
            ) from None
        shown = ", ".join(map(repr, names[:20])) + (" ..." if len(names) > 20 else "")
        raise CLIError(
            f"--label-column {spec!r}: no such column in {path!r} (columns: {shown})"
        ) from None
    if not -n_columns <= index < n_columns:
        raise CLIError(
            f"--label-column {spec!r} is out of range: {path!r} has {n_columns} "
            f"column(s), indices 0 to {n_columns - 1}"
        )
    return index % n_columns


# -- reading the features ----------------------------------------------------


def _check_matrix(X, path):
    """Validate a numeric 2-D feature array and return it as float."""
    if X.dtype.names is not None or X.dtype.kind not in "biuf":
        raise CLIError(
            f"features in {path!r} are not numeric (array dtype {X.dtype}); "
            "expected a 2-D array of numbers"
        )
    if X.ndim != 2:
        raise CLIError(
            f"features in {path!r} must be a 2-D array (rows x features); got "
            f"an array of shape {X.shape}"
        )
    if X.dtype != np.float32:
        # float64 (a memory-mapped file included) is kept as it is
        X = X.astype(np.float64, copy=False)
    return X


# Values checked per chunk of rows by _check_finite.
_FINITE_CHUNK_ENTRIES = 2**22


def _check_finite(X, path, first_line=None, columns=None):
    """Reject NaN and infinite features; ``first_line``: the CSV line number
    of row 0, ``columns``: the CSV column names. Reads ``X`` once, by
    chunks of rows (a memory-mapped file is not loaded whole)."""
    step = max(1, _FINITE_CHUNK_ENTRIES // max(X.shape[1], 1))
    n_bad, first = 0, None
    for start in range(0, X.shape[0], step):
        bad = ~np.isfinite(X[start : start + step])
        count = int(np.count_nonzero(bad))
        if count and first is None:
            i, j = (int(v) for v in np.argwhere(bad)[0])
            first = (i + start, j)
        n_bad += count
    if n_bad:
        i, j = first
        row = f"row index {i}" if first_line is None else f"line {i + first_line}"
        column = f"column index {j}" if columns is None else f"column {columns[j]!r}"
        raise CLIError(
            f"features in {path!r} contain {n_bad} NaN or infinite "
            f"value(s); the first is at {row}, {column}"
        )


def _open_npy(path):
    """A ``.npy`` file memory-mapped read-only (``np.load(path,
    mmap_mode='r')``): the features are read from the file as the fit
    needs them, not copied into memory. Its header is checked against the
    file size first, so that a truncated file is reported as such."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise CLIError(f"cannot read {path!r} as .npy: {exc}") from None
    if dtype.hasobject:
        raise CLIError(
            f"{path!r} is not a NumPy .npy file of numbers (it holds pickled "
            "Python objects, which are not loaded for safety)"
        )
    expected = math.prod(shape) * dtype.itemsize
    found = os.path.getsize(path) - offset
    if found < expected:
        shown = " x ".join(map(str, shape))
        raise CLIError(
            f"{path!r} is truncated: its header announces a {shown} array of "
            f"{dtype} ({expected} bytes of data) but the file holds only "
            f"{found} bytes after the header"
        )
    if expected == 0:
        return np.load(path, allow_pickle=False)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CLIError(f"cannot read {path!r} as .npy: {exc}") from None


def _load_array(path, features_key):
    ext = _extension(path)
    if ext == ".npy":
        if features_key is not None:
            raise CLIError("--features-key only applies to .npz feature files")
        return _open_npy(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CLIError(
                f"{path!r} is not a NumPy {ext} file of numbers (it holds "
                "pickled Python objects, which are not loaded for safety, or "
                "is not a NumPy file at all)"
            ) from None
        raise CLIError(f"cannot read {path!r} as {ext}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise CLIError(f"cannot read {path!r} as {ext}: {exc}") from None
    with loaded:
        keys = list(loaded.files)
        if features_key is not None:
            if features_key not in keys:
                raise CLIError(
                    f"--features-key {features_key!r}: no such array in {path!r} "
                    f"(arrays: {', '.join(keys) or 'none'})"
                )
            key = features_key
        elif len(keys) == 1:
            key = keys[0]
        else:
            raise CLIError(
                f"{path!r} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); "
                "choose the features with --features-key"
            )
        try:
            return loaded[key]
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise CLIError(
                    f"array {key!r} of {path!r} holds Python objects, not numbers"
                ) from None
            raise CLIError(f"cannot read array {key!r} of {path!r}: {exc}") from None


def _features_from_array(path, features_key, label_column):
    X = np.asarray(_load_array(path, features_key))
    X = _check_matrix(X, path)
    labels = None
    if label_column is not None:
        j = _resolve_column(label_column, None, X.shape[1], path)
        labels = X[:, j]
        X = np.delete(X, j, axis=1)
    _check_finite(X, path)
    return X, labels


def _features_from_csv(path, header, label_column):
    rows = _read_csv_rows(path, "features")
    if not rows:
        raise CLIError(f"features file {path!r} is empty")
    if header is None:
        header = _looks_like_header(rows)
    names = None
    if header:
        names, rows = rows[0], rows[1:]
        if not rows:
            raise CLIError(f"features file {path!r} has a header but no data row")
    n_columns = len(names) if names is not None else len(rows[0])
    offset = 1 + bool(header)  # file line number of data row 0
    for i, row in enumerate(rows):
        if len(row) != n_columns:
            what = "is empty" if not row else f"has {len(row)} field(s)"
            raise CLIError(
                f"line {i + offset} of {path!r} {what}, expected {n_columns} "
                "(comma-separated values)"
            )
    label_index = None
    if label_column is not None:
        label_index = _resolve_column(label_column, names, n_columns, path)
    feature_columns = [j for j in range(n_columns) if j != label_index]
    if not feature_columns:
        raise CLIError(f"{path!r} has no feature column besides the labels")
    cells = [[row[j] for j in feature_columns] for row in rows]
    try:
        X = np.array(cells, dtype=np.float64).reshape(len(rows), len(feature_columns))
    except ValueError:
        for i, row in enumerate(cells):
            for k, cell in enumerate(row):
                if not _is_number(cell):
                    j = feature_columns[k]
                    column = repr(names[j]) if names is not None else str(j)
                    value = "an empty cell" if cell == "" else _show(cell)
                    hint = "" if label_column else "; see --label-column for labels"
                    raise CLIError(
                        f"non-numeric feature value: {value} on line {i + offset}, "
                        f"column {column} of {path!r} (features must be numbers"
                        f"{hint})"
                    ) from None
        raise CLIError(  # pragma: no cover - numpy and float() disagree
            f"cannot read the features of {path!r} as numbers"
        ) from None
    columns = [names[j] for j in feature_columns] if names is not None else None
    _check_finite(X, path, first_line=offset, columns=columns)
    labels = [row[label_index] for row in rows] if label_index is not None else None
    return X, labels


def _features_from_parquet(path, label_column):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(
            f"reading .parquet files needs pyarrow, which is not installed: "
            f"pip install pyarrow (or convert {path!r} to .npy or .csv)"
        ) from None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise CLIError(f"cannot read {path!r} as parquet: {exc}") from None
    names = list(table.column_names)
    label_index = None
    if label_column is not None:
        label_index = _resolve_column(label_column, names, len(names), path)
    blocks = []
    for j, name in enumerate(names):
        if j == label_index:
            continue
        column = table.column(j)
        kind = column.type
        scalar = (
            pa.types.is_integer(kind)
            or pa.types.is_floating(kind)
            or pa.types.is_boolean(kind)
        )
        # an embedding may be stored as one list column
        nested = (
            pa.types.is_list(kind)
            or pa.types.is_fixed_size_list(kind)
            or pa.types.is_large_list(kind)
        )
        if not (scalar or nested):
            raise CLIError(
                f"feature column {name!r} of {path!r} is not numeric (type "
                f"{kind}); use --label-column for a label column"
            )
        if column.null_count:
            raise CLIError(f"feature column {name!r} of {path!r} has missing values")
        try:
            values = column.to_numpy() if scalar else column.to_pylist()
            block = np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise CLIError(
                f"list column {name!r} of {path!r} is not a numeric matrix "
                "(lists of unequal length, missing or non-numeric items)"
            ) from None
        blocks.append(block.reshape(len(table), -1))
    if not blocks:
        raise CLIError(f"{path!r} has no feature column besides the labels")
    X = np.hstack(blocks)
    _check_finite(X, path)
    labels = None
    if label_index is not None:
        labels = table.column(label_index).to_pylist()
    return X, labels


def load_features(path, *, features_key=None, header=None, label_column=None):
    """Read a feature matrix, and optionally a label column, from a file.

    Parameters
    ----------
    path : str
        A ``.npy``, ``.npz``, ``.csv`` or ``.parquet`` file.
    features_key : str, default=None
        Array of a ``.npz`` file holding several arrays.
    header : bool, default=None
        Whether the first line of a CSV file is a header; detected when
        None.
    label_column : str, default=None
        Name or 0-based index of a column holding the labels, removed from
        the features.

    Returns
    -------
    X : ndarray of shape (n_rows, n_features)
        Finite float64 (or float32) features.
    labels : ndarray, list or None
        The raw entries of the label column, or None.

    Raises
    ------
    CLIError
        On a missing or unreadable file, an unknown extension, an array that
        is not 2-D, non-numeric or missing values.
    """
    ext = _extension(path)
    if ext not in FEATURE_EXTENSIONS:
        raise CLIError(
            f"unknown features file extension {ext or '(none)'!r} of {path!r}; "
            f"expected one of {', '.join(FEATURE_EXTENSIONS)}"
        )
    _check_input_file(path, "features")
    if features_key is not None and ext != ".npz":
        raise CLIError("--features-key only applies to .npz feature files")
    if ext == ".csv":
        X, labels = _features_from_csv(path, header, label_column)
    elif ext == ".parquet":
        X, labels = _features_from_parquet(path, label_column)
    else:
        X, labels = _features_from_array(path, features_key, label_column)
    if X.shape[0] < 2:
        raise CLIError(f"{path!r} has {X.shape[0]} row(s); at least 2 are needed")
    if X.shape[1] < 1:
        raise CLIError(f"{path!r} has no feature column")
    return X, labels


# -- reading and parsing the labels ----------------------------------------


def _label_entries(path, n_rows, header):
    ext = _extension(path)
    if ext not in LABEL_EXTENSIONS:
        raise CLIError(
            f"unknown labels file extension {ext or '(none)'!r} of {path!r}; "
            f"expected one of {', '.join(LABEL_EXTENSIONS)}"
        )
    _check_input_file(path, "labels")
    if ext == ".npy":
        try:
            labels = np.load(path, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise CLIError(
                    f"labels file {path!r} holds Python objects; save the labels "
                    "as numbers or fixed-width strings (e.g. y.astype(str))"
                ) from None
            raise CLIError(f"cannot read {path!r} as .npy: {exc}") from None
        except (OSError, EOFError) as exc:
            raise CLIError(f"cannot read {path!r} as .npy: {exc}") from None
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise CLIError(
                f"labels in {path!r} must be a 1-D array, one label per row; "
                f"got shape {labels.shape}"
            )
        return labels
    if ext == ".txt":
        entries = [line.strip() for line in _read_text_lines(path, "labels")]
    else:
        # blank lines are unlabeled rows, even at the end
        rows = _read_csv_rows(path, "labels", drop_blank_tail=False)
        for i, row in enumerate(rows):
            if len(row) > 1:
                raise CLIError(
                    f"labels file {path!r} must have one label per line; line "
                    f"{i + 1} has {len(row)} fields"
                )
        entries = [row[0] if row else "" for row in rows]
    if header is None and entries:
        # A header is a non-numeric first entry that is not a label elsewhere,
        # in a file with exactly one entry more than there are rows.
        first = entries[0]
        header = (
            len(entries) == n_rows + 1
            and first != ""
            and not _is_number(first)
            and first not in entries[1:]
        )
    return entries[1:] if header else entries


def parse_labels(values, source="labels"):
    """Turn raw label entries into the ``y`` of the estimators.

    Parameters
    ----------
    values : ndarray or list
        One entry per row: numbers, strings, or None. An empty entry, None,
        NaN, ``-1`` (``"-1"``) or a missing-value spelling (``NA``,
        ``N/A``, ``<NA>``, ``None``, ``null``, ``nan``, ``?``,
        ``unlabeled``, in any case) marks an unlabeled row; a warning
        counts the rows marked by such a spelling. When every other
        entry is a number, the labels are integers (``"3.0"`` is 3);
        otherwise they are text.
    source : str, default="labels"
        Where the entries come from, for error messages.

    Returns
    -------
    y : ndarray of shape (n_rows,)
        int64 labels with -1 for unlabeled rows, or unicode labels with
        ``"-1"`` for unlabeled rows.

    Raises
    ------
    CLIError
        When a numeric label is not a whole number, or the array type cannot
        hold class labels.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        if values.dtype.kind in "bi" or values.dtype.kind == "u":
            return values.astype(np.int64)
        y = values.astype(np.float64)
        missing = np.isnan(y)
        bad = ~missing & (~np.isfinite(y) | (y != np.round(y)))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise CLIError(
                f"label {y[i]!r} for row {i + 1} in {source} is not a valid "
                "class label: numeric labels must be whole numbers"
            )
        y[missing] = -1
        return y.astype(np.int64)
    if isinstance(values, np.ndarray) and values.dtype.kind not in "US":
        raise CLIError(
            f"labels in {source} have type {values.dtype}; expected integers or text"
        )
    tokens = []
    for value in values.tolist() if isinstance(values, np.ndarray) else values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            tokens.append("")
        elif isinstance(value, bytes):
            try:
                tokens.append(value.decode("utf-8").strip())
            except UnicodeDecodeError:
                raise CLIError(
                    f"label {_show(value)} in {source} is not UTF-8 text"
                ) from None
        else:
            tokens.append(str(value).strip())
    marks = {}
    for i, token in enumerate(tokens):
        if token != "" and token.lower() in UNLABELED_TEXT:
            if not _is_number(token):  # "-1" and "nan" are read as numbers
                marks[token] = marks.get(token, 0) + 1
            tokens[i] = ""
    if marks:
        shown = ", ".join(f"{n} x {t!r}" for t, n in sorted(marks.items()))
        warnings.warn(
            f"labels in {source}: {shown} read as unlabeled rows (missing-value "
            "marks); rename the class if it is a real label"
        )
    present = [t for t in tokens if t != ""]
    if present and all(_is_number(t) for t in present):
        y = np.empty(len(tokens), dtype=np.int64)
        for i, token in enumerate(tokens):
            if token == "":
                y[i] = -1
                continue
            try:
                y[i] = int(token)
                continue
            except ValueError:
                number = float(token)
            if math.isnan(number):
                y[i] = -1
            elif not math.isfinite(number) or number != round(number):
                raise CLIError(
                    f"label {token!r} for row {i + 1} in {source} is not a valid "
                    "class label: numeric labels must be whole numbers"
                )
            else:
                y[i] = int(number)
        return y
    return np.array([t if t != "" else "-1" for t in tokens], dtype=str)


# -- the estimator -----------------------------------------------------------


def _estimator_spec(args):
    """Class, positional argument and explicitly given parameters
    (``--class-prior`` once :func:`_run` has put it in the order of the
    classes, as ``args.class_prior_weights``)."""
    cls, first, _ = METHODS[args.method]
    if getattr(args, "class_prior", None) is not None and not hasattr(
        args, "class_prior_weights"
    ):
        raise CLIError("--class-prior is ordered by the labeled classes: read the labels first")
    params = {
        "n_neighbors": args.n_neighbors,
        "lift": args.lift,
        "class_prior": getattr(args, "class_prior_weights", None),
        "temperature": args.temperature if args.method in _MINED else None,
        "beta": args.beta,
        "solver": args.solver,
        "device": args.device,
        "max_iter": args.max_iter,
        "tol": args.tol,
        "random_state": args.seed,
    }
    return cls, first, {k: v for k, v in params.items() if v is not None}


def make_estimator(args, verbose=0):
    """Build the estimator selected by parsed command-line arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments (see :func:`build_parser`).
    verbose : int, default=0
        ``verbose`` of the estimator.

    Returns
    -------
    estimator : MixedLabelPropagation or HardNegativeLP
        Unfitted estimator; options left out on the command line keep the
        estimator's defaults.
    """
    cls, first, params = _estimator_spec(args)
    make = cls.paper if getattr(args, "paper", False) else cls
    positional = () if first is None else (first,)
    return make(*positional, **params, verbose=verbose)


def _describe_estimator(args):
    cls, first, params = _estimator_spec(args)
    shown = [] if first in (None, "hard") else [repr(first)]
    shown += [f"{name}={value!r}" for name, value in params.items()]
    paper = ".paper" if getattr(args, "paper", False) else ""
    return f"{cls.__name__}{paper}({', '.join(shown)})"


# -- writing the output ------------------------------------------------------


def _check_output(path, inputs):
    ext = _extension(path)
    if ext not in OUTPUT_EXTENSIONS:
        raise CLIError(
            f"unknown output file extension {ext or '(none)'!r} of {path!r}; "
            f"expected one of {', '.join(OUTPUT_EXTENSIONS)}"
        )
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise CLIError(f"output directory {directory!r} does not exist")
    if not os.path.isdir(directory):
        raise CLIError(f"output directory {directory!r} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CLIError(f"output directory {directory!r} is not writable")
    if os.path.isdir(path):
        raise CLIError(f"output {path!r} is a directory")
    for source in inputs:
        if (
            source is not None
            and os.path.exists(path)
            and os.path.exists(source)
            and os.path.samefile(path, source)
        ):
            raise CLIError(
                f"output {path!r} is an input file; refusing to overwrite it"
            )


def _format_float(x):
    # Shortest repr that reads back exactly: the distributions of label
    # propagation can differ only in their 6th or 7th digit, so rounding
    # could change their arg-max.
    return repr(float(x))


def _write_csv(fh, estimator):
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(
        ["label", "confidence"] + [f"proba_{c}" for c in estimator.classes_.tolist()]
    )
    labels = estimator.transduction_.tolist()
    confidence = estimator.confidence_
    proba = estimator.label_distributions_
    for i, label in enumerate(labels):
        writer.writerow(
            [label, _format_float(confidence[i])] + [_format_float(p) for p in proba[i]]
        )


def _write_npz(fh, estimator):
    np.savez(
        fh,
        label=estimator.transduction_,
        confidence=estimator.confidence_,
        proba=estimator.label_distributions_,
        classes=estimator.classes_,
    )


def _write_npy(fh, estimator):
    np.save(fh, estimator.transduction_, allow_pickle=False)


def write_output(path, estimator):
    """Write the fitted estimator's predictions to ``path`` atomically.

    The data go to a temporary file in the same directory, renamed over
    ``path`` when complete, so ``path`` is never left half-written.

    Parameters
    ----------
    path : str
        ``.csv`` (columns ``label``, ``confidence``, ``proba_<class>``),
        ``.npz`` (arrays ``label``, ``confidence``, ``proba``, ``classes``)
        or ``.npy`` (the labels).
    estimator : MixedLabelPropagation or HardNegativeLP
        A fitted estimator.

    Raises
    ------
    CLIError
        When the file cannot be written.
    """
    ext = _extension(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
        )
    except OSError as exc:
        raise CLIError(f"cannot write to {directory!r}: {exc.strerror}") from None
    try:
        if ext == ".csv":
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                _write_csv(fh, estimator)
        else:
            with os.fdopen(fd, "wb") as fh:
                (_write_npz if ext == ".npz" else _write_npy)(fh, estimator)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CLIError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        raise


# -- main ------------------------------------------------------------------


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _run(args):
    start = time.perf_counter()
    progress = not args.quiet

    def say(message):
        if progress:
            print(f"[{PROG}] {message}", file=sys.stderr, flush=True)

    _check_output(args.output, (args.features, args.labels))
    if args.solver is not None or args.device is not None:
        # fail before reading the data (the defaults cannot fail)
        try:
            resolve_solver(args.solver or "auto", args.device or "auto")
        except (ValueError, ImportError) as exc:
            raise CLIError(str(exc)) from None
    if args.temperature is not None and args.method not in _MINED:
        warnings.warn(f"--temperature is ignored with --method {args.method}")
    if args.beta is not None and args.method == "lp":
        warnings.warn("--beta is ignored with --method lp (no negative edges)")

    X, raw_labels = load_features(
        args.features,
        features_key=args.features_key,
        header=args.header,
        label_column=args.label_column,
    )
    n_rows = X.shape[0]
    say(f"features: {args.features}, {n_rows} rows x {X.shape[1]} columns")
    if args.labels is not None:
        raw_labels = _label_entries(args.labels, n_rows, args.header)
        source = repr(args.labels)
        if len(raw_labels) != n_rows:
            raise CLIError(
                f"{args.labels!r} has {len(raw_labels)} labels but "
                f"{args.features!r} has {n_rows} rows: there must be one label "
                "per row (empty or -1 for unlabeled)"
            )
    else:
        source = f"column {args.label_column!r} of {args.features!r}"
    y = parse_labels(raw_labels, source)
    labeled = ~unlabeled_mask(y)
    n_labeled = int(labeled.sum())
    if n_labeled == 0:
        raise CLIError(
            f"no labeled row: every label in {source} is empty, -1 or a "
            "missing-value mark (NA, None, ...); at least "
            "one row needs a label"
        )
    n_classes = np.unique(y[labeled]).size
    say(
        f"labels: {args.labels if args.labels is not None else source}, "
        f"{n_labeled} labeled rows, {n_classes} classes"
    )
    if n_classes == 1:
        warnings.warn("only one class is labeled: every row gets that class")
    if args.class_prior is not None:
        args.class_prior_weights = _class_prior(args.class_prior, np.unique(y[labeled]))

    verbose = 0 if args.quiet else 1 + args.verbose
    estimator = make_estimator(args, verbose=verbose)
    say(f"fitting {_describe_estimator(args)}")
    bars = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        with contextlib.redirect_stdout(sys.stderr), progress_bars(bars and progress):
            estimator.fit(X, y)
    except (ValueError, ImportError) as exc:
        raise CLIError(f"fitting failed: {exc}") from None

    say(f"writing {args.output}")
    write_output(args.output, estimator)
    if progress:
        elapsed = time.perf_counter() - start
        print(
            f"{PROG}: wrote {args.output}: {n_rows} rows, {n_labeled} labeled, "
            f"{estimator.classes_.size} classes, method {args.method}, "
            f"{elapsed:.2f}s",
            flush=True,
        )


def main(argv=None):
    """Run the ``sklearn-mixedlp`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments without the program name; ``sys.argv[1:]``
        when None.

    Returns
    -------
    status : int
        0 on success, 2 for a usage or data error (message on stderr, no
        output written), 1 for an unexpected failure, 130 when interrupted
        (Ctrl-C), 143 when terminated (SIGTERM); an interrupted run leaves
        no output and no temporary file.

    Examples
    --------
    >>> from sklearn_mixedlp._cli import main
    >>> main(["digits.npy", "--labels", "labels.csv", "--output", "pred.csv",
    ...       "--quiet"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (already reported)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        with _sigterm_raises(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.filterwarnings("default", category=UserWarning)
            warnings.filterwarnings("default", category=RuntimeWarning)
            warnings.showwarning = _show_warning
            _run(args)
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"{PROG}: terminated; no output written", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # noqa: BLE001 - report an unexpected failure
        if args.verbose:
            traceback.print_exc()
        print(
            f"{PROG}: error: unexpected {type(exc).__name__}: {exc} (run with "
            "--verbose for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK
