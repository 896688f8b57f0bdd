"""End-to-end tests of the ``sklearn-mixedlp`` command line.

Most tests run ``python -m sklearn_mixedlp`` in a subprocess on the digits
data written to a temporary directory; the others call :func:`main`
in-process, which is faster.
"""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sklearn_mixedlp import HardNegativeLP, _cli
from sklearn_mixedlp._cli import CLIError, main, parse_labels

from .conftest import has_module, mask_per_class

N_NEIGHBORS = ["--n-neighbors", "10"]
ERROR_PREFIX = "sklearn-mixedlp: error:"


# -- fixtures and helpers --------------------------------------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Digits written as .npy / .npz / .csv, with 5 labels per class."""
    root = tmp_path_factory.mktemp("digits")
    X, y = load_digits(return_X_y=True)
    y_masked = mask_per_class(y, 5)
    files = {"X": X, "y": y, "y_masked": y_masked, "root": root}

    files["npy"] = root / "digits.npy"
    np.save(files["npy"], X)
    files["npz"] = root / "digits.npz"
    np.savez(files["npz"], X)  # one array, stored as 'arr_0'
    files["npz_keys"] = root / "digits_keys.npz"
    np.savez(files["npz_keys"], features=X, target=y)

    # labels.csv: a header, an empty line for every unlabeled row
    files["labels_csv"] = root / "labels.csv"
    with open(files["labels_csv"], "w", newline="") as fh:
        fh.write("label\n")
        fh.writelines(("" if v == -1 else str(v)) + "\n" for v in y_masked)
    # labels.npy: -1 for unlabeled rows
    files["labels_npy"] = root / "labels.npy"
    np.save(files["labels_npy"], y_masked)
    # labels.txt: text labels, blank lines for unlabeled rows
    files["labels_txt"] = root / "labels.txt"
    with open(files["labels_txt"], "w") as fh:
        fh.writelines(("" if v == -1 else f"digit {v}") + "\n" for v in y_masked)

    # digits.csv: a header, 64 feature columns and a 'digit' label column
    files["csv"] = root / "digits.csv"
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([f"px{j}" for j in range(X.shape[1])] + ["digit"])
        for row, label in zip(X, y_masked):
            writer.writerow([f"{v:g}" for v in row] + ["" if label == -1 else label])
    return files


def run_cli(*args, cwd=None):
    """Run ``python -m sklearn_mixedlp ARGS`` and return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "sklearn_mixedlp", *map(str, args)],
        capture_output=True,
        check=False,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def read_csv_output(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def check_csv_output(path, digits, classes=None, accuracy=None):
    """Columns, one row per input row, distributions, labeled rows, accuracy."""
    header, rows = read_csv_output(path)
    y, y_masked = digits["y"], digits["y_masked"]
    classes = [str(c) for c in range(10)] if classes is None else classes
    assert header == ["label", "confidence"] + [f"proba_{c}" for c in classes]
    assert len(rows) == len(y)
    labels = np.array([row[0] for row in rows])
    confidence = np.array([float(row[1]) for row in rows])
    proba = np.array([[float(v) for v in row[2:]] for row in rows])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    assert np.all(proba >= 0)
    assert np.all((confidence >= 0) & (confidence <= 1))
    # labels are the arg-max classes, and labeled rows keep a valid class
    np.testing.assert_array_equal(labels, np.array(classes)[proba.argmax(axis=1)])
    assert set(labels[y_masked != -1]) <= set(classes)
    if accuracy is not None:
        unlabeled = y_masked == -1
        truth = np.array(classes)[y[unlabeled]]
        assert np.mean(labels[unlabeled] == truth) > accuracy
    return labels, confidence, proba


def assert_usage_error(proc, message, outputs=()):
    assert proc.returncode == 2, proc.stderr
    assert ERROR_PREFIX in proc.stderr
    assert message in proc.stderr
    for path in outputs:
        assert not os.path.exists(path)


def leftovers(directory):
    """Temporary files the atomic writer might have left behind."""
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


# -- subprocess: successful runs -------------------------------------------


def test_help_shows_example():
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "usage: sklearn-mixedlp" in proc.stdout
    assert "example:" in proc.stdout
    assert "sklearn-mixedlp digits.npy --labels labels.csv --output pred.csv" in (
        proc.stdout
    )
    for method in ("lp", "mom", "control", "hard"):
        assert method in proc.stdout


@pytest.mark.parametrize("method", ["lp", "hard"])
def test_npy_features_csv_labels(digits, tmp_path, method):
    out = tmp_path / "pred.csv"
    proc = run_cli(
        digits["npy"],
        "--labels",
        digits["labels_csv"],
        "--output",
        out,
        "--method",
        method,
        *N_NEIGHBORS,
    )
    assert proc.returncode == 0, proc.stderr
    check_csv_output(out, digits, accuracy=0.7)
    # progress on stderr, a one-line summary on stdout
    assert "[sklearn-mixedlp] features:" in proc.stderr
    assert "] output: distributions" in proc.stderr
    summary = proc.stdout.strip().splitlines()
    assert len(summary) == 1
    assert "1797 rows, 50 labeled, 10 classes" in summary[0]
    assert f"method {method}" in summary[0]
    assert leftovers(tmp_path) == []


def test_csv_with_label_column(digits, tmp_path):
    out = tmp_path / "pred.csv"
    proc = run_cli(
        digits["csv"], "--label-column", "digit", "-o", out, "--quiet", *N_NEIGHBORS
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""  # --quiet
    check_csv_output(out, digits, accuracy=0.7)


def test_npz_features_npz_output(digits, tmp_path):
    out = tmp_path / "pred.npz"
    proc = run_cli(
        digits["npz"], "--labels", digits["labels_npy"], "-o", out, *N_NEIGHBORS
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out, allow_pickle=False) as result:
        assert sorted(result.files) == ["classes", "confidence", "label", "proba"]
        np.testing.assert_array_equal(result["classes"], np.arange(10))
        assert result["label"].shape == (1797,)
        assert result["confidence"].shape == (1797,)
        assert result["proba"].shape == (1797, 10)
        np.testing.assert_allclose(result["proba"].sum(axis=1), 1.0)
        unlabeled = digits["y_masked"] == -1
        accuracy = np.mean(result["label"][unlabeled] == digits["y"][unlabeled])
        assert accuracy > 0.7


# -- subprocess: errors ----------------------------------------------------


def test_error_missing_file(digits, tmp_path):
    out = tmp_path / "pred.csv"
    proc = run_cli(tmp_path / "nope.npy", "--labels", digits["labels_csv"], "-o", out)
    assert_usage_error(proc, "does not exist", [out])
    assert "nope.npy" in proc.stderr


def test_error_label_count_mismatch(digits, tmp_path):
    labels = tmp_path / "short.npy"
    np.save(labels, digits["y_masked"][:-1])
    out = tmp_path / "pred.csv"
    proc = run_cli(digits["npy"], "--labels", labels, "-o", out)
    assert_usage_error(proc, "has 1796 labels but", [out])
    assert "1797 rows" in proc.stderr


def test_error_non_numeric_csv(digits, tmp_path):
    features = tmp_path / "bad.csv"
    features.write_text("a,b,c\n1,2,3\n4,five,6\n7,8,9\n")
    out = tmp_path / "pred.csv"
    proc = run_cli(features, "--labels", digits["labels_csv"], "-o", out)
    assert_usage_error(proc, "non-numeric feature value: 'five' on line 3", [out])


def test_error_no_labeled_row(digits, tmp_path):
    labels = tmp_path / "none.csv"
    labels.write_text("-1\n" * 1000 + "\n" * 797)
    out = tmp_path / "pred.csv"
    proc = run_cli(digits["npy"], "--labels", labels, "-o", out)
    assert_usage_error(proc, "no labeled row", [out])


def test_error_unknown_extension(digits, tmp_path):
    features = tmp_path / "digits.json"
    features.write_text("[]")
    out = tmp_path / "pred.csv"
    proc = run_cli(features, "--labels", digits["labels_csv"], "-o", out)
    assert_usage_error(proc, "unknown features file extension '.json'", [out])


# -- in-process ------------------------------------------------------------


def run_main(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("method", ["lp", "mom", "control", "hard"])
def test_methods_in_process(digits, tmp_path, capsys, method):
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys,
        digits["npy"],
        "--labels",
        digits["labels_csv"],
        "-o",
        out,
        "--method",
        method,
        *N_NEIGHBORS,
    )
    assert code == 0, stderr
    expected = {
        "lp": "MixedLabelPropagation(n_neighbors=10)",
        "mom": "MixedLabelPropagation('mom', n_neighbors=10)",
        "control": "HardNegativeLP('control', n_neighbors=10)",
        "hard": "HardNegativeLP(n_neighbors=10)",
    }[method]
    assert f"fitting {expected}" in stderr
    # mom is poor on digits with the default beta (see the report); the
    # others label well
    check_csv_output(out, digits, accuracy=None if method == "mom" else 0.7)


def test_auto_neighbors(digits, tmp_path, capsys):
    """--n-neighbors auto fits HardNegativeLP(n_neighbors='auto'); its
    predictions match a direct fit."""
    out = tmp_path / "pred.npy"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_csv"], "-o", out,
        "--n-neighbors", "auto",
    )  # fmt: skip
    assert code == 0, stderr
    assert "fitting HardNegativeLP(n_neighbors='auto')" in stderr
    X, y = digits["X"], digits["y_masked"]
    expected = HardNegativeLP(n_neighbors="auto").fit(X, y).transduction_
    np.testing.assert_array_equal(np.load(out), expected)


def test_paper_configuration(digits, tmp_path, capsys):
    """--paper fits the .paper() estimator; its predictions match a direct fit."""
    out = tmp_path / "pred.npy"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_csv"], "-o", out, "--paper"
    )
    assert code == 0, stderr
    assert "fitting HardNegativeLP.paper()" in stderr
    X, y = digits["X"], digits["y_masked"]
    expected = HardNegativeLP.paper().fit(X, y).transduction_
    np.testing.assert_array_equal(np.load(out), expected)
    default = HardNegativeLP().fit(X, y).transduction_
    assert np.any(default != expected)  # the flag changes the model


def test_class_prior(digits, tmp_path, capsys):
    """--class-prior LABEL=WEIGHT,... fits with class_prior in the order of
    the classes, whatever the order given; its predictions match a direct
    fit and differ from the default's."""
    out = tmp_path / "pred.npy"
    weights = {c: 1.0 for c in range(10)}
    weights[3] = 4.0
    given = ",".join(f"{c}={w:g}" for c, w in reversed(weights.items()))
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_csv"], "-o", out,
        "--class-prior", given,
    )  # fmt: skip
    assert code == 0, stderr
    prior = [weights[c] for c in range(10)]
    assert f"fitting HardNegativeLP(class_prior={prior!r})" in stderr
    X, y = digits["X"], digits["y_masked"]
    expected = HardNegativeLP(class_prior=prior).fit(X, y).transduction_
    np.testing.assert_array_equal(np.load(out), expected)
    default = HardNegativeLP().fit(X, y).transduction_
    assert np.sum(expected == 3) > np.sum(default == 3)


def test_unknown_method(digits, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_csv"], "-o", out,
        "--method", "magic",
    )  # fmt: skip
    assert code == 2
    assert "invalid choice: 'magic'" in stderr
    assert not out.exists()


def test_text_labels_npy_output(digits, tmp_path, capsys):
    out = tmp_path / "labels_out.npy"
    code, stdout, stderr = run_main(
        capsys, digits["npz_keys"], "--features-key", "features",
        "--labels", digits["labels_txt"], "-o", out, "-q", *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 0, stderr
    assert stdout == "" and stderr == ""
    labels = np.load(out, allow_pickle=False)
    assert labels.shape == (1797,) and labels.dtype.kind == "U"
    unlabeled = digits["y_masked"] == -1
    truth = np.char.add("digit ", digits["y"].astype(str))
    assert np.mean(labels[unlabeled] == truth[unlabeled]) > 0.7


def test_label_column_by_index_and_seed(digits, tmp_path, capsys):
    features = tmp_path / "with_labels.npy"
    np.save(features, np.column_stack([digits["y_masked"], digits["X"]]))
    out = tmp_path / "pred.npz"
    args = (features, "--label-column", "0", "-o", out, "-q", "--seed", "0")
    code, _, stderr = run_main(capsys, *args, *N_NEIGHBORS)
    assert code == 0, stderr
    with np.load(out) as result:
        assert result["proba"].shape == (1797, 10)


def test_solver_options_and_verbose(digits, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_npy"], "-o", out,
        "--method", "hard", "--temperature", "2", "--beta", "0.5",
        "--solver", "scipy", "--device", "cpu", "--max-iter", "500",
        "--tol", "1e-5", "--lift", "1", "-v", *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 0, stderr
    assert "temperature=2.0" in stderr and "beta=0.5" in stderr
    assert "lift=1.0" in stderr
    assert "[block_cg] scipy:" in stderr  # -v: solver summaries


def test_ignored_option_warns(digits, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_npy"], "-o", out,
        "--method", "lp", "--temperature", "2", "-q", *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 0
    assert "sklearn-mixedlp: warning: --temperature is ignored" in stderr


def test_convergence_warning_is_shown(digits, tmp_path, capsys):
    out = tmp_path / "pred.npz"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_npy"], "-o", out,
        "--method", "lp", "--max-iter", "3", "-q", *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 0
    assert "sklearn-mixedlp: warning: Conjugate gradient stopped" in stderr
    assert out.exists()


def test_csv_without_header(digits, tmp_path, capsys):
    features = tmp_path / "plain.csv"
    np.savetxt(features, digits["X"], delimiter=",", fmt="%g")
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, features, "--labels", digits["labels_csv"], "-o", out, "-q",
        "--no-header", *N_NEIGHBORS,
    )  # fmt: skip
    # --no-header also applies to the labels file, whose 'label' line then
    # makes the count wrong
    assert code == 2
    assert "has 1798 labels" in stderr
    code, _, stderr = run_main(
        capsys, features, "--labels", digits["labels_csv"], "-o", out, "-q",
        *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 0, stderr
    check_csv_output(out, digits, accuracy=0.7)


def test_failed_run_keeps_existing_output(digits, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    out.write_text("previous result\n")
    labels = tmp_path / "bad.txt"
    labels.write_text("2.5\n" + "\n" * 1796)
    code, _, stderr = run_main(capsys, digits["npy"], "--labels", labels, "-o", out)
    assert code == 2
    assert "label '2.5' for row 1" in stderr and "whole numbers" in stderr
    assert out.read_text() == "previous result\n"
    assert leftovers(tmp_path) == []


def test_interrupted_write_leaves_nothing(digits, tmp_path, capsys, monkeypatch):
    def broken_writer(fh, estimator):
        fh.write("label,conf")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_cli, "_write_csv", broken_writer)
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_npy"], "-o", out, "-q",
        *N_NEIGHBORS,
    )  # fmt: skip
    assert code == 2
    assert "No space left on device" in stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


def _bad_inputs(digits, tmp_path):
    """(arguments, expected message) of data and usage errors."""
    X, y_masked = digits["X"], digits["y_masked"]
    np.save(tmp_path / "one_d.npy", X[:, 0])
    np.save(tmp_path / "three_d.npy", X.reshape(-1, 8, 8))
    np.save(tmp_path / "text.npy", X.astype(str))
    X_nan = X.copy()
    X_nan[4, 7] = np.nan
    np.save(tmp_path / "nan.npy", X_nan)
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "missing.csv").write_text("1,2\n3,\n")
    (tmp_path / "two_columns.csv").write_text("1,2\n" * 1797)
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00" * 10)
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    np.save(tmp_path / "labels_2d.npy", np.zeros((1797, 3)))
    np.save(tmp_path / "labels_obj.npy", np.array([1, None] * 3, dtype=object))
    np.save(tmp_path / "labels_inf.npy", np.where(y_masked == -1, np.nan, np.inf))
    labels = digits["labels_csv"]
    out = tmp_path / "pred.csv"
    cases = [
        ((tmp_path / "one_d.npy", "--labels", labels), "must be a 2-D array"),
        ((tmp_path / "three_d.npy", "--labels", labels), "shape (1797, 8, 8)"),
        ((tmp_path / "text.npy", "--labels", labels), "are not numeric"),
        ((tmp_path / "nan.npy", "--labels", labels), "row index 4, column index 7"),
        ((tmp_path / "ragged.csv", "--labels", labels), "line 2"),
        ((tmp_path / "missing.csv", "--labels", labels), "an empty cell on line 2"),
        ((digits["npy"], "--labels", tmp_path / "two_columns.csv"), "one label per"),
        ((digits["npy"], "--labels", tmp_path / "binary.txt"), "not UTF-8 text"),
        ((digits["npy"], "--labels", tmp_path / "labels_2d.npy"), "must be a 1-D"),
        ((digits["npy"], "--labels", tmp_path / "labels_obj.npy"), "Python objects"),
        ((digits["npy"], "--labels", tmp_path / "labels_inf.npy"), "whole numbers"),
        ((digits["npy"], "--labels", tmp_path / "labels.json"), "labels file ext"),
        ((digits["npz_keys"], "--labels", labels), "choose the features with"),
        ((digits["npz_keys"], "--labels", labels, "--features-key", "X"), "arrays:"),
        ((digits["npy"], "--labels", labels, "--features-key", "X"), "only applies"),
        ((digits["csv"], "--label-column", "colour"), "no such column"),
        ((digits["csv"], "--label-column", "65"), "out of range"),
        ((digits["npy"], "--label-column", "digit"), "pass a 0-based index"),
        ((digits["npy"], "--labels", labels, "--device", "tpu"), "Unknown device"),
        ((digits["npy"], "--labels", labels, "--n-neighbors", "0"), "at least 1"),
        ((digits["npy"], "--labels", labels, "--n-neighbors", "many"), "not an integer"),
        ((digits["npy"], "--labels", labels, "--beta", "-1"), "non-negative"),
        ((digits["npy"], "--labels", labels, "--class-prior", "0=1,1=1"),
         "gives no weight to class(es) 2, 3"),
        ((digits["npy"], "--labels", labels, "--class-prior",
          ",".join(f"{c}=1" for c in (*range(10), 12))), "'12', which is not a labeled"),
        ((digits["npy"], "--labels", labels, "--class-prior", "cat"), "is not LABEL=WEIGHT"),
        ((digits["npy"], "--labels", labels, "--class-prior", "0=-1"), "non-negative"),
        ((digits["npy"], "--labels", labels, "--class-prior", "0=1,0=2"), "given twice: 0"),
        ((digits["npy"], "--labels", labels, "--paper", "--class-prior",
          ",".join(f"{c}=1" for c in range(10))), "class_mass_normalization=True"),
        ((digits["npy"], "--labels", labels, "-q", "-v"), "not allowed with"),
        ((digits["npy"],), "one of the arguments --labels --label-column"),
        ((digits["npy"], "--labels", labels, "--label-column", "0"), "not allowed"),
    ]
    if has_module("pyarrow"):
        cases.append(((tmp_path / "data.parquet", "--label-column", "y"), "parquet"))
    else:
        cases.append(
            ((tmp_path / "data.parquet", "--label-column", "y"), "pip install pyarrow")
        )
    return [((*args, "-o", out), message) for args, message in cases], out


def test_data_and_usage_errors(digits, tmp_path, capsys):
    cases, out = _bad_inputs(digits, tmp_path)
    for args, message in cases:
        code, _, stderr = run_main(capsys, *args)
        assert code == 2, (args, stderr)
        assert ERROR_PREFIX in stderr, (args, stderr)
        assert message in stderr, (args, stderr)
        assert not out.exists(), args
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "output, message",
    [
        ("missing_dir/pred.csv", "does not exist"),
        ("digits.npy/pred.csv", "is not a directory"),
        ("pred.json", "unknown output file extension '.json'"),
        ("digits.npy", "refusing to overwrite"),
        (".", "unknown output file extension"),
    ],
)
def test_output_errors(digits, capsys, output, message):
    root = digits["root"]
    before = sorted(os.listdir(root))
    code, _, stderr = run_main(
        capsys, digits["npy"], "--labels", digits["labels_csv"], "-o", root / output
    )
    assert code == 2
    assert message in stderr
    assert sorted(os.listdir(root)) == before


@pytest.mark.skipif(not has_module("pyarrow"), reason="pyarrow not installed")
def test_parquet_features(digits, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    X, y_masked = digits["X"], digits["y_masked"]
    columns = {f"px{j}": X[:, j] for j in range(X.shape[1])}
    columns["digit"] = [None if v == -1 else f"d{v}" for v in y_masked]
    path = tmp_path / "digits.parquet"
    pq.write_table(pa.table(columns), path)
    out = tmp_path / "pred.csv"
    code, _, stderr = run_main(
        capsys, path, "--label-column", "digit", "-o", out, "-q", *N_NEIGHBORS
    )
    assert code == 0, stderr
    check_csv_output(out, digits, classes=[f"d{c}" for c in range(10)], accuracy=0.7)


# -- label parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.array([0, -1, 2]), [0, -1, 2]),
        (np.array([0.0, np.nan, 2.0]), [0, -1, 2]),
        (np.array([True, False]), [1, 0]),
        (["3", "", "-1", "4.0", " 5 ", "nan"], [3, -1, -1, 4, 5, -1]),
        (["cat", "", "-1", " dog", None], ["cat", "-1", "-1", "dog", "-1"]),
        (np.array(["a", "", "b"]), ["a", "-1", "b"]),
        ([1, None, 2.0, float("nan")], [1, -1, 2, -1]),
        (np.array([b"x", b""]), ["x", "-1"]),
    ],
)
def test_parse_labels(values, expected):
    y = parse_labels(values)
    assert y.tolist() == expected
    assert y.dtype.kind == ("i" if isinstance(expected[0], int) else "U")


@pytest.mark.parametrize(
    "values",
    [np.array([0.5, 1.0]), ["1", "2.5"], np.array([np.inf]), np.array([1j])],
)
def test_parse_labels_rejects(values):
    with pytest.raises(CLIError):
        parse_labels(values)
