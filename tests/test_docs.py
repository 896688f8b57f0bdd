"""The documentation stands alone: the rendered text (pages, README,
gallery, public docstrings) cites no document outside the repository."""

import inspect
import re
from pathlib import Path

import pytest

import sklearn_mixedlp
from sklearn_mixedlp import datasets, metrics, model_selection

ROOT = Path(__file__).resolve().parents[1]
# "SPEC", "SPEC 1.4", "SPEC section 8": a specification that is not here
OUTSIDE_REFERENCE = re.compile(r"\bSPEC\b")


def _doc_sources():
    yield ROOT / "README.rst"
    yield from sorted((ROOT / "doc").glob("**/*.rst"))
    yield from sorted((ROOT / "examples").glob("*.py"))


def _public_docstrings():
    modules = [sklearn_mixedlp, datasets, metrics, model_selection]
    for module in modules:
        yield module.__name__, module.__doc__ or ""
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            yield f"{module.__name__}.{name}", inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
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
