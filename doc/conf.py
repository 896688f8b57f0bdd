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
``SKLEARN_MIXEDLP_MATHJAX=/path/to/tex-chtml.js``
    Use a local MathJax 3 script instead of the CDN one, to read the
    equations of a built site without network access.

The build itself never uses the network. The theme's assets are all local;
the one thing a browser fetches when showing the pages is MathJax (Sphinx's
default CDN copy), unless SKLEARN_MIXEDLP_MATHJAX is set.
"""

import os
import subprocess
import sys
from pathlib import Path

import sklearn_mixedlp

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

_local_mathjax = os.environ.get("SKLEARN_MIXEDLP_MATHJAX")
if _local_mathjax:
    mathjax_path = Path(_local_mathjax).resolve().as_uri()

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
    "filename_pattern": r"/plot_",
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
html_static_path = []
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

# -- Workaround: estimator docstrings ----------------------------------------

# TEMPORARY. In sklearn_mixedlp/_label_propagation.py the class docstrings of
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
