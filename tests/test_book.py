"""The book as built: every page rendered, no Sphinx warning, buttons and links work.

The book is built once per session from the quick-mode notebooks that the
chapter tests execute anyway (``conftest.run_quick``, cached per session):
the sources are copied to ``_build/quick/book/``, the executed notebooks put
in its ``notebooks/``, and Jupyter Book runs there with execution off and
``-W -n --keep-going`` (the flags of ``make book``). ``tests/test_browser.py``
opens the same build in headless Chromium.

The build is a background job (``conftest.background``): it starts when
collection ends, waits for the quick runs and builds while the unit tests
run. ``build_quick_book()`` returns it to this module and to the browser test
(imported from here, so both see one build per session).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from conftest import QUICK_DIR, ROOT, background, background_result, run_quick

BUILD_ROOT = QUICK_DIR / "book"
HTML_DIR = BUILD_ROOT / "_build" / "html"
MATHJAX = ROOT / "book" / "_static" / "mathjax" / "tex-svg.js"
REPO_URL = "https://github.com/ntkbook/ntkbook"


# --------------------------------------------------------------------------- #
# The table of contents
# --------------------------------------------------------------------------- #
def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every ``file`` of ``_toc.yml`` (root first), without suffix, in reading order."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def toc_chapters() -> list[str]:
    """Chapter notebooks listed in ``_toc.yml`` (stems such as ``02_hessian_scaling``)."""
    return [Path(f).name for f in toc_files() if f.startswith("notebooks/")]


def source_of(docname: str) -> Path:
    """The source file of a toc entry (``.ipynb`` or ``.md``)."""
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{docname}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"_toc.yml lists {docname!r}, but no {docname}.ipynb or .md exists")


def has_code(notebook: Path) -> bool:
    """Whether a notebook has any code cell (a placeholder chapter has none)."""
    cells = json.loads(notebook.read_text())["cells"]
    return any(c["cell_type"] == "code" and "".join(c["source"]).strip() for c in cells)


# --------------------------------------------------------------------------- #
# The quick build (one per session)
# --------------------------------------------------------------------------- #
@dataclass
class BookBuild:
    html: Path          # the html output folder
    returncode: int     # of `jupyter-book build -W -n --keep-going`
    warnings: list      # Sphinx WARNING/ERROR lines
    log: str
    chapter_failures: list   # chapters that failed in quick mode


_WARNING_RE = re.compile(r"(WARNING|ERROR|CRITICAL|SEVERE):")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def _copy_ignore(directory: str, names: list[str]) -> set[str]:
    """Leave out builds, environments and (at the top) generated folders.

    Tool caches such as ``.pytest_cache`` (which holds a README.md) are copied,
    as they are in a checkout where `make test` ran before `make book`.
    """
    skip = {".git", ".venv", "_build", "__pycache__", ".ipynb_checkpoints"}
    if Path(directory).resolve() == ROOT:
        skip |= {"results", "artifacts", "assignments", "tests", ".github", ".ci"}
    return {n for n in names if n in skip or n.endswith(".egg-info")}


def _prepare_sources() -> list[str]:
    """Copy the book sources to BUILD_ROOT, with the executed quick-mode notebooks.

    Returns the chapters that failed in quick mode; the partly executed
    notebook of such a chapter (papermill writes it, traceback included) goes
    into the book, so the rest of the book can still be checked.
    """
    if BUILD_ROOT.exists():
        shutil.rmtree(BUILD_ROOT)
    shutil.copytree(ROOT, BUILD_ROOT, ignore=_copy_ignore)
    # what `make test` leaves in a checkout (pytest writes it at the end of a
    # session): the book must not pick up its README.md
    cache_readme = BUILD_ROOT / ".pytest_cache" / "README.md"
    if not cache_readme.exists():
        cache_readme.parent.mkdir(exist_ok=True)
        cache_readme.write_text("# pytest cache directory #\n\nCreated by pytest.\n")
    failures = []
    for chapter in toc_chapters():
        notebook = source_of(f"notebooks/{chapter}")
        if not has_code(notebook):
            continue        # a placeholder: nothing to execute
        executed = QUICK_DIR / "notebooks" / f"{chapter}.ipynb"
        try:
            run_quick(chapter)      # cached: the chapter tests may have run it already
        except (Exception, pytest.fail.Exception) as exc:  # noqa: BLE001 -- reported by test_book_builds_without_warnings
            detail = _ANSI_RE.sub("", str(exc)).strip()
            failures.append(f"chapter {chapter} failed in quick mode "
                            f"({type(exc).__name__}):\n...{detail[-1500:]}")
            if not executed.exists() or executed.stat().st_mtime < notebook.stat().st_mtime:
                continue
        shutil.copy(executed, BUILD_ROOT / "notebooks" / f"{chapter}.ipynb")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    (BUILD_ROOT / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return failures


@background("book", fixtures=("book", "pages"))
def _build_book() -> BookBuild | str:
    """Build the book from the quick-mode notebooks, in a thread started when
    collection ends (conftest.background): it waits for the quick runs, then
    runs Jupyter Book while the other tests go on.

    Returns the build, or the reason it could not be set up (MathJax missing,
    a toc entry without a source), which every test that needs the book then
    fails with. A chapter failing in quick mode does not stop the build:
    test_book_builds_without_warnings reports it.
    """
    try:
        if not MATHJAX.exists():
            raise RuntimeError(f"{MATHJAX.relative_to(ROOT)} is missing: run `make mathjax` "
                               "(`make test` and `make book` do it)")
        failures = _prepare_sources()
    except Exception as exc:    # noqa: BLE001
        return str(exc)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    env = {**os.environ, "NTKBOOK_NO_PROGRESS": "1", "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [str(jupyter_book), "build", str(BUILD_ROOT), "--builder", "html",
         "-W", "-n", "--keep-going"],
        cwd=BUILD_ROOT, env=env, capture_output=True, text=True, timeout=1800)
    log = _ANSI_RE.sub("", proc.stdout + proc.stderr)
    (QUICK_DIR / "book-build.log").write_text(log)
    warnings = [line for line in log.splitlines() if _WARNING_RE.search(line)]
    return BookBuild(HTML_DIR, proc.returncode, warnings, log, failures)


def build_quick_book() -> BookBuild:
    """The quick build of the book (once per session; see ``_build_book``)."""
    build = background_result("book")
    if isinstance(build, str):
        pytest.fail(build, pytrace=False)
    if not (build.html / "index.html").exists():
        pytest.fail("the book did not build:\n" + build.log[-3000:], pytrace=False)
    return build


@pytest.fixture(scope="module")
def book() -> BookBuild:
    return build_quick_book()


def page_html(build: BookBuild, docname: str) -> str:
    return (build.html / f"{docname}.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- #
# A small HTML reader (stdlib only)
# --------------------------------------------------------------------------- #
class _Collector(HTMLParser):
    """Collects ids, links, images and scripts of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.images, self.scripts = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "script" and attrs.get("src"):
            self.scripts.append(attrs["src"])


def parse_page(path: Path) -> _Collector:
    collector = _Collector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


# --------------------------------------------------------------------------- #
# Tests that need no build
# --------------------------------------------------------------------------- #
def test_toc_lists_existing_sources_and_all_six_chapters():
    for docname in toc_files():
        source_of(docname)
    assert len(toc_chapters()) == 6, toc_chapters()


def test_progress_bars_silent_in_book_builds(monkeypatch, capsys):
    """nk.notebook.progress shows tqdm bars, except when NTKBOOK_NO_PROGRESS is set."""
    from ntkbook.notebook import progress

    monkeypatch.delenv("NTKBOOK_NO_PROGRESS", raising=False)
    assert list(progress(range(3), desc="loop")) == [0, 1, 2]
    assert "loop" in capsys.readouterr().err
    monkeypatch.setenv("NTKBOOK_NO_PROGRESS", "1")
    assert list(progress(range(3), desc="loop")) == [0, 1, 2]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_make_book_silences_progress_and_fails_on_warnings():
    """The Makefile's book target sets NTKBOOK_NO_PROGRESS and builds with -W -n --keep-going."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^book:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    build_line = next(line for line in recipe.splitlines() if "jupyter-book build" in line)
    assert "NTKBOOK_NO_PROGRESS=1" in build_line
    for flag in ("-W", "-n", "--keep-going"):
        assert f" {flag}" in build_line, flag


def test_config_ships_mathjax_and_extensions():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]["config"]
    assert sphinx["mathjax_path"] == "mathjax/tex-svg.js"
    assert "book/_static" in sphinx["html_static_path"]
    assert not (ROOT / "_static").exists(), (
        "a _static/ folder at the book root makes Jupyter Book add each of its .js files "
        "as a script tag; keep static files in book/_static/")
    for ext in ("sphinx_proof", "sphinx_exercise", "sphinxcontrib.bibtex", "myst_nb",
                "sphinx_book_theme", "sphinx_copybutton"):
        assert ext in sphinx["extensions"], ext
    assert config["execute"]["execute_notebooks"] == "cache"


# --------------------------------------------------------------------------- #
# Tests of the quick build
# --------------------------------------------------------------------------- #
@pytest.mark.book
def test_book_builds_without_warnings(book):
    assert not book.chapter_failures, "\n\n".join(book.chapter_failures)
    assert book.returncode == 0 and not book.warnings, (
        f"jupyter-book build -W -n --keep-going exited {book.returncode} with "
        f"{len(book.warnings)} warning(s):\n" + "\n".join(book.warnings)
        + ("" if book.warnings else "\n" + book.log[-3000:]))


@pytest.mark.book
def test_every_toc_page_is_rendered(book):
    for docname in toc_files():
        assert (book.html / f"{docname}.html").exists(), docname
    assert (book.html / "index.html").exists()


@pytest.mark.book
def test_mathjax_is_served_with_the_book(book):
    assert (book.html / "_static" / "mathjax" / "tex-svg.js").exists()
    for docname in toc_files():
        scripts = parse_page(book.html / f"{docname}.html").scripts
        remote = [s for s in scripts if urlsplit(s).scheme in ("http", "https")
                  or s.startswith("//")]
        assert not remote, f"{docname} loads scripts from the network: {remote}"
        if 'class="math' not in page_html(book, docname):
            continue      # Sphinx loads MathJax only on pages with maths
        assert any(urlsplit(s).path.endswith("_static/mathjax/tex-svg.js")
                   for s in scripts), (docname, scripts)


@pytest.mark.book
def test_internal_links_and_images_resolve(book):
    pages = sorted(book.html.rglob("*.html"))
    parsed = {p: parse_page(p) for p in pages}
    broken = []
    for page, info in parsed.items():
        if "_static" in page.parts or "_sources" in page.parts:
            continue
        for href in info.links + info.images:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(book.html)}: {href} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else parse_page(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(book.html)}: {href} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


@pytest.mark.book
def test_chapter_pages_have_launch_download_and_repository_buttons(book):
    for chapter in toc_chapters():
        html = page_html(book, f"notebooks/{chapter}")
        expected = {
            "Colab": f"https://colab.research.google.com/github/ntkbook/ntkbook/blob/main/"
                     f"notebooks/{chapter}.ipynb",
            "Binder": f"https://mybinder.org/v2/gh/ntkbook/ntkbook/main?urlpath=lab/tree/"
                      f"notebooks/{chapter}.ipynb",
            "download .ipynb": f"_sources/notebooks/{chapter}.ipynb",
            "repository": REPO_URL,
            "issues": f"{REPO_URL}/issues",
        }
        missing = [name for name, needle in expected.items() if needle not in html]
        assert not missing, f"{chapter}: no {missing} button"
        assert (book.html / "_sources" / "notebooks" / f"{chapter}.ipynb").exists()
        assert "copybutton.js" in html, f"{chapter}: no copy buttons"


@pytest.mark.book
def test_home_page_has_chapter_map_and_glued_claims_table(book):
    html = page_html(book, "book/intro")
    info = parse_page(book.html / "book" / "intro.html")
    for chapter in toc_chapters():
        assert any(link.split("#")[0].endswith(f"notebooks/{chapter}.html")
                   for link in info.links), f"home page does not link {chapter}"
    table = html.split('class="ntkbook-claims', 1)[1]
    table = table[: table.index("</table>")]
    source = (ROOT / "book" / "intro.md").read_text()
    num_glued = source.count("{glue:text}")
    assert num_glued >= 6
    pasted = re.findall(r'<span class="pasted-text">([^<]*)</span>', table)
    assert len(pasted) == num_glued, (
        f"{num_glued} glued numbers in book/intro.md, {len(pasted)} rendered: {pasted}")
    assert all(re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", value) for value in pasted), pasted


@pytest.mark.book
def test_no_error_outputs_or_progress_bars_in_pages(book):
    bad = {
        "a traceback": r"Traceback \(most recent call last\)",
        "an error output": r'class="output traceback',
        "a stderr output": r'class="output stderr',
        "a tqdm bar": r"it/s\]",
        "a widget": r"application/vnd\.jupyter\.widget-view\+json",
        "an unresolved glue": r"\{glue:",
        "an object repr (end the cell with `;` or `fig`)": r"&lt;[\w.]+ (object )?at 0x[0-9a-f]+&gt;",
    }
    problems = []
    for docname in toc_files():
        html = page_html(book, docname)
        for what, pattern in bad.items():
            hits = re.findall(pattern, html)
            if hits:
                problems.append(f"{docname}: {len(hits)} x {what}")
    assert not problems, "\n".join(problems)


@pytest.mark.book
def test_figures_have_opaque_white_backgrounds(book):
    """Dark-mode safety: every figure PNG of a chapter is opaque with white corners."""
    import matplotlib.image as mpimg
    import numpy as np

    problems = []
    for chapter in toc_chapters():
        page = book.html / "notebooks" / f"{chapter}.html"
        for src in parse_page(page).images:
            path = (page.parent / unquote(src)).resolve()
            if path.suffix.lower() != ".png" or "_images" not in path.parts:
                continue
            img = mpimg.imread(path)
            corners = np.stack([img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]])
            rgb_white = np.all(corners[:, :3] > 0.95)
            opaque = img.shape[-1] == 3 or np.all(corners[:, 3] > 0.99)
            if not (rgb_white and opaque):
                problems.append(f"{chapter}: {path.name} corners {corners.round(2).tolist()}")
    assert not problems, "figures not on an opaque white background:\n" + "\n".join(problems)


@pytest.mark.book
def test_no_figure_shown_twice(book):
    """A cell ending in ``fig`` must not also show the figure through pyplot's inline backend.

    (The executed notebooks in the build root are exactly what the pages show.)
    """
    import base64
    import io

    import matplotlib.image as mpimg

    def png_shape(data):
        return mpimg.imread(io.BytesIO(base64.b64decode(data))).shape

    problems = []
    for chapter in toc_chapters():
        cells = json.loads((BUILD_ROOT / "notebooks" / f"{chapter}.ipynb").read_text())["cells"]
        for index, cell in enumerate(cells):
            shapes = {"execute_result": [], "display_data": []}
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png and output["output_type"] in shapes:
                    shapes[output["output_type"]].append(png_shape(png))
            if set(shapes["execute_result"]) & set(shapes["display_data"]):
                problems.append(f"{chapter}: code cell {index} shows its figure twice")
    assert not problems, "\n".join(problems)

