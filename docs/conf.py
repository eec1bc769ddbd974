# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Sphinx configuration of the sklearn-optlr documentation.

Build (offline, warnings as errors, as CI does)::

    pip install ".[docs]"
    sphinx-build -W -b html docs docs/_build/html

Nothing is fetched at build time: there is no intersphinx (references to
scikit-learn's objects render as plain code), and the gallery runs the examples
on bundled or generated data. Formulas are typeset by MathJax, which the browser
loads from its CDN when the pages are read.
"""

import sys
from pathlib import Path

import sklearn_optlr

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS / "sphinxext"))  # gallery_order, for sphinx-gallery

project = "sklearn-optlr"
author = "The sklearn-optlr developers"
copyright = f"2024-2026, {author}"
version = release = sklearn_optlr.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    # Generated tables, pulled into benchmarks.rst with `.. include::`; not pages.
    "benchmarks/*_results.rst",
]
default_role = "literal"

# API reference: one page per public name, generated from the autosummary in api.rst.
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False  # the class template lists the methods
numpydoc_class_members_toctree = False

# -- HTML -------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sklearn-optlr {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "quick_start": [], "benchmarks": []}
html_show_sourcelink = False

# -- Gallery ------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "gallery_order.ExampleOrder",
    # "Examples using ..." lists on the API pages, for our names only (nothing remote).
    "doc_module": ("sklearn_optlr",),
    "backreferences_dir": "gen_modules/backreferences",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "min_reported_time": 1,
    "show_memory": False,
    # Examples print what they mean to; the repr of a cell's last value (a legend
    # object, say) is noise.
    "capture_repr": (),
}
