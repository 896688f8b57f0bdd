"""The documentation stands alone: the rendered text (pages, README,
gallery, public docstrings) cites no document outside the repository."""

import inspect
import re
from pathlib import Path

import pytest

import sklearn_mixedlp
from sklearn_mixedlp import datasets, distributed, metrics, model_selection

ROOT = Path(__file__).resolve().parents[1]
# "SPEC", "SPEC 1.4", "SPEC section 8": a specification that is not here
OUTSIDE_REFERENCE = re.compile(r"\bSPEC\b")


def _doc_sources():
    yield ROOT / "README.rst"
    generated = {"_build", "auto_examples", "gen_modules"}
    for path in sorted((ROOT / "doc").glob("**/*.rst")):
        if not generated & set(path.relative_to(ROOT / "doc").parts):
            yield path
    yield from sorted((ROOT / "examples").glob("*.py"))


def _public_docstrings():
    modules = [sklearn_mixedlp, datasets, distributed, metrics, model_selection]
    for module in modules:
        yield module.__name__, module.__doc__ or ""
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            yield f"{module.__name__}.{name}", inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                for attr in dir(obj):
                    member = getattr(obj, attr, None)
                    if callable(member) and not attr.startswith("_"):
                        yield f"{name}.{attr}", inspect.getdoc(member) or ""


@pytest.mark.parametrize(
    "path", list(_doc_sources()), ids=lambda p: str(p.relative_to(ROOT))
)
def test_doc_pages_cite_nothing_outside_the_repository(path):
    text = path.read_text(encoding="utf-8")
    assert not OUTSIDE_REFERENCE.search(text), path


def test_public_docstrings_cite_nothing_outside_the_repository():
    cited = [name for name, doc in _public_docstrings() if OUTSIDE_REFERENCE.search(doc)]
    assert cited == []


def _python_blocks(text):
    """The ``.. code-block:: python`` blocks of an reST text."""
    blocks = []
    for part in text.split(".. code-block:: python")[1:]:
        lines = part.split("\n")[1:]
        body = []
        for line in lines:
            if line.strip() and not line.startswith("    "):
                break
            body.append(line[4:])
        blocks.append("\n".join(body).strip("\n"))
    return blocks


def test_readme_quick_start_runs_and_prints(capsys):
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    quick_start = text.split("Quick start\n")[1]
    code = _python_blocks(quick_start)[0]
    exec(compile(code, "README.rst", "exec"), {})  # noqa: S102
    out = capsys.readouterr().out
    accuracy = float(out.split("accuracy:")[1].split()[0])
    assert accuracy > 0.9
    assert "negative edges:" in out and "predicted:" in out


def test_readme_shows_no_stale_copy_of_a_gallery_figure():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    # a figure that a gallery example makes is rebuilt with the docs; a copy
    # in doc/_static goes stale
    assert re.findall(r"\.\. image:: (doc/_static/\S+)", text) == []
