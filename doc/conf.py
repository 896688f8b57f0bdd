"""Sphinx configuration of the sklearn_mixedlp documentation.

Build (offline, warnings as errors)::

    python -m sphinx -W --keep-going -b html doc doc/_build/html

Environment variables:

``SKLEARN_MIXEDLP_DOCS_QUICK=1``
    The gallery examples run on less data (fewer label draws, PCA instead of
    t-SNE); they read the variable themselves.
``SKLEARN_MIXEDLP_DOCS_ONLINE=1``
    Enable the intersphinx links to Python, NumPy, SciPy and scikit-learn
    (their inventories are downloaded, so the build needs the network).
``SKLEARN_MIXEDLP_FASHION_MNIST=/path/to/fashion-mnist``
    Where the Fashion-MNIST files are (default: Debian's
    ``dataset-fashion-mnist`` package, /usr/share/datasets/fashion-mnist).

Neither the build nor the built pages use the network. The equations are
typeset by a copy of MathJax 3 shipped in the site itself (``_static/mathjax``,
from the PyPI package ``sphinx-mathjax-offline`` of the ``docs`` extra).

The gallery examples that need what is not installed (torch, or the
Fashion-MNIST files) are shown with their code but not run, and the build
log says why; everything else is built as usual.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from sphinx.util import logging

import sklearn_mixedlp
from sklearn_mixedlp.datasets import (
    _FASHION_MNIST_FILES,
    FASHION_MNIST_DEFAULT_HOME,
    FASHION_MNIST_ENV,
)

logger = logging.getLogger("sklearn_mixedlp.docs")

DOC_DIR = Path(__file__).resolve().parent
ROOT = DOC_DIR.parent

# -- Project information -----------------------------------------------------

project = "sklearn-mixedlp"
author = "The sklearn-mixedlp developers"
copyright = "The sklearn-mixedlp developers"
release = sklearn_mixedlp.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # Included by benchmarks.rst and user_guide.rst, not pages of their own.
    "benchmarks/*.rst",
]
root_doc = "index"
nitpicky = False
default_role = "literal"

# -- autodoc / autosummary / numpydoc ----------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Math --------------------------------------------------------------------

# MathJax 3 from the sphinx-mathjax-offline package (the docs extra), copied
# into the site: the pages show their equations without network access. The
# SVG output needs no web fonts (which browsers refuse to load from file://
# pages).
_mathjax_package = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax_package is None:
    raise RuntimeError(
        "The documentation needs the package sphinx-mathjax-offline (a copy of "
        "MathJax, so that the equations render without network access): "
        'install the docs extra, pip install -e ".[docs]".'
    )
_MATHJAX_STATIC = Path(_mathjax_package.submodule_search_locations[0]) / "static"
mathjax_path = "mathjax/tex-svg.js"

# -- Optional inputs of the examples ----------------------------------------

HAS_TORCH = importlib.util.find_spec("torch") is not None
_fashion_home = Path(os.environ.get(FASHION_MNIST_ENV, FASHION_MNIST_DEFAULT_HOME))
HAS_FASHION_MNIST = all(
    (_fashion_home / name).is_file()
    for files in _FASHION_MNIST_FILES.values()
    for name in files
)

# example -> what it needs that may be missing
_EXAMPLE_NEEDS = {
    "plot_torch_solver": {"torch": HAS_TORCH},
    "plot_retrieval_fashion": {
        "torch": HAS_TORCH,
        f"the Fashion-MNIST files (in {_fashion_home})": HAS_FASHION_MNIST,
    },
}
_NOT_RUN = {}
for _example, _needs in _EXAMPLE_NEEDS.items():
    _missing = [need for need, present in _needs.items() if not present]
    if _missing:
        _NOT_RUN[_example] = _missing

# Without torch, the API page of sklearn_mixedlp.losses is built from a
# stand-in module.
autodoc_mock_imports = [] if HAS_TORCH else ["torch"]

# -- Intersphinx -------------------------------------------------------------

# The build machines have no network: the inventories are only fetched on
# request. Without them, references to these projects render as plain code.
if os.environ.get("SKLEARN_MIXEDLP_DOCS_ONLINE"):
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
    }
else:
    intersphinx_mapping = {}

# -- sphinx-gallery ----------------------------------------------------------

# SKLEARN_MIXEDLP_DOCS_QUICK=1 (a quick build) is read by the examples.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Run every example but those whose requirements are missing (they are
    # shown with their code only).
    "filename_pattern": "/plot_"
    + "".join(f"(?!{name[len('plot_'):]})" for name in sorted(_NOT_RUN)),
    "backreferences_dir": "gen_modules/backreferences",
    "doc_module": ("sklearn_mixedlp",),
    "remove_config_comments": True,
    # The examples' output depends on SKLEARN_MIXEDLP_DOCS_QUICK, which the
    # MD5 check of unchanged example files cannot see: always run them.
    "run_stale_examples": True,
    # The execution-time pages load jQuery and DataTables from CDNs; the
    # times are in the build log and at the end of each example anyway.
    "write_computation_times": False,
    "min_reported_time": 0,
    "show_memory": False,
    "download_all_examples": False,
}

# -- HTML output -------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-mixedlp {release}"
html_static_path = [str(_MATHJAX_STATIC)]
html_theme_options = {
    # Nothing that would be fetched over the network when a page is viewed:
    # no version switcher JSON, no analytics, no external icons.
    "navbar_end": ["theme-switcher"],
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# Top-level pages have no sub-pages: no (empty) section navigation for them.
html_sidebars = {
    page: []
    for page in (
        "index",
        "install",
        "quick_start",
        "user_guide",
        "cli",
        "api",
        "benchmarks",
        "changelog",
    )
}
html_show_sourcelink = False

# -- Generated material ------------------------------------------------------


def _write_cli_help():
    """Capture ``sklearn-mixedlp --help`` so cli.rst never goes stale."""
    out = DOC_DIR / "gen_modules" / "cli_help.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COLUMNS": "80"}
    text = subprocess.run(
        [sys.executable, "-m", "sklearn_mixedlp", "--help"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    ).stdout
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


_write_cli_help()


def _report_examples_not_run(app):
    for name, missing in sorted(_NOT_RUN.items()):
        logger.info(
            f"example {name}.py is shown but not run: it needs "
            f"{' and '.join(missing)}, which this machine lacks"
        )


def setup(app):
    # before sphinx-gallery's own builder-inited handler runs the examples
    app.connect("builder-inited", _report_examples_not_run, priority=400)
