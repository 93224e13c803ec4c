"""Sphinx extension: the download menu also offers the executed notebook.

sphinx-book-theme's download menu (the arrow at the top of a page) offers a
notebook as committed, without outputs. myst-nb writes every notebook it
executed, outputs and all, to ``_build/jupyter_execute/``; this extension
copies those into the HTML output (``_executed/``) when the build finishes and
adds an ".ipynb (executed)" entry to the menu of every notebook page.
"""
from __future__ import annotations

import shutil
from pathlib import Path

FOLDER = "_executed"


def executed_url(pathto, pagename: str) -> str:
    """URL of the executed copy of page ``pagename``, relative to that page."""
    return pathto(f"{FOLDER}/{pagename}.ipynb", 1)


def add_button(app, pagename, templatename, context, doctree):
    """Add the entry to the download group built by sphinx-book-theme (label ``download-buttons``)."""
    if context.get("page_source_suffix") != ".ipynb":
        return
    for group in context.get("header_buttons", []):
        if group.get("label") == "download-buttons":
            group["buttons"].insert(1, {
                "type": "link",
                "url": executed_url(context["pathto"], pagename),
                "text": ".ipynb (executed)",
                "tooltip": "Download the notebook with its outputs, as executed for this book",
                "icon": "fas fa-file-code",
                "label": "download-executed-notebook-button",
            })


def copy_executed(app, exception):
    """Copy ``jupyter_execute/<doc>.ipynb`` to ``<html>/_executed/<doc>.ipynb`` for every notebook."""
    if exception is not None or app.builder.format != "html":
        return
    source = Path(app.outdir).parent / "jupyter_execute"
    for docname in sorted(app.env.found_docs):
        executed = source / f"{docname}.ipynb"
        if Path(app.env.doc2path(docname)).suffix == ".ipynb" and executed.exists():
            target = Path(app.outdir) / FOLDER / f"{docname}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, target)


def setup(app):
    # After sphinx-book-theme builds its header buttons (priority 501).
    app.connect("html-page-context", add_button, priority=510)
    app.connect("build-finished", copy_executed)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
