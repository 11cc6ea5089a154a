"""Sphinx configuration of the course book (built by ``python -m tools.build_book``, ``make book``).

The pages are the committed notebooks, never re-executed: the book shows exactly the outputs
that CI checked. Everything the site needs is served with it: the theme's assets and a copy
of MathJax 2 from the ``jupyter-server-mathjax`` package, so that the maths renders when the
site is opened from disk, without the internet.
"""

project = "Score matching, taught by running it"
author = "the course's authors"
copyright = "the course's authors; MNIST by LeCun, Cortes & Burges (CC BY-SA 3.0)"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_readme.md"]  # _readme.md: only included

nb_execution_mode = "off"  # the committed outputs, as CI checked them
# Widgets cannot run in a static page: show the PNG each explorer carries beside its widget view.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
myst_enable_extensions = ["dollarmath", "amsmath", "html_image"]
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_theme_options = {
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_show_sourcelink = False

# MathJax 2 from the site itself (tools/build_book.py copies it into _static/mathjax).
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    "tex2jax": {
        "inlineMath": [["\\(", "\\)"]],
        "displayMath": [["\\[", "\\]"]],
        # myst marks each section tex2jax_ignore and each formula "math": process those
        "processClass": "math|output_area",
        "processRefs": False,
        "processEnvironments": False,
    },
    # the package ships the STIX-Web fonts only
    "HTML-CSS": {"scale": 90, "availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web", "webFont": "STIX-Web",
                 "imageFont": None},
    "messageStyle": "none",
}
