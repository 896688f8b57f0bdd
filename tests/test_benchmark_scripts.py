"""The benchmark scripts import: what one script takes from another (the
shared loading and reporting of ``accuracy.py``) is still there. A script
whose optional third-party package is missing is skipped."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
# the scripts' own modules: a name missing from one of them is a failure
OWN = {path.stem for path in SCRIPTS} | {"sklearn_mixedlp"}


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_imports(path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_benchmark_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OWN:
            raise
        pytest.skip(f"{path.name} needs {exc.name}")
    finally:
        for name in [m for m in sys.modules if m in OWN - {"sklearn_mixedlp"}]:
            del sys.modules[name]  # the next script imports its own copy
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
