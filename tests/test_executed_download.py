"""book/_ext/executed_notebooks.py: the download menu offers the executed notebook."""
import json

import pytest

CONF = """
import sys
sys.path.insert(0, {ext!r})
extensions = ["myst_nb", "sphinx_book_theme", "executed_notebooks"]
html_theme = "sphinx_book_theme"
html_theme_options = {{"use_download_button": True}}
nb_execution_mode = "force"
"""


@pytest.mark.book
def test_executed_notebook_downloadable_with_outputs(tmp_path):
    from pathlib import Path

    from sphinx.cmd.build import build_main

    ext = str(Path(__file__).resolve().parent.parent / "book" / "_ext")
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(CONF.format(ext=ext))
    nb = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# Page"]},
                    {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": ["print(6 * 7)"]}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (src / "index.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "build" / "html"
    assert build_main(["-q", "-b", "html", str(src), str(out)]) == 0
    executed = json.loads((out / "_executed" / "index.ipynb").read_text())
    assert "".join(executed["cells"][1]["outputs"][0]["text"]) == "42\n"
    html = (out / "index.html").read_text()
    assert "download-executed-notebook-button" in html and "_executed/index.ipynb" in html
