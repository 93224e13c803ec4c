"""The book in a real browser: headless Chromium (Debian's) driven by Playwright.

Every page of the quick build (``test_book.build_quick_book``) is served on a
loopback port and opened offline: any request off the machine is blocked and
counted. Each chapter page must show its figures (images decoded), typeset
maths (MathJax output, no raw ``$...$`` or ``\\frac`` left in the text), no
glue placeholder, no traceback, error output or progress bar, and no
JavaScript error. One screenshot per chapter goes to ``_build/screenshots/``
(full page, light mode) plus one of its first screen in dark mode.

The pages are opened by a background job (``conftest.background``) as soon as
the book is built, each once (chapters a second time, dark), while the unit
tests run; the tests here check its report.

Chromium: ``make test`` installs Debian's ``chromium`` when /usr/bin/chromium
is missing (Playwright's own browser download is not reachable).
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import ROOT, background, background_result
from test_book import build_quick_book, toc_chapters, toc_files

pytestmark = [pytest.mark.book, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "_build" / "screenshots"
HOME = "book/intro"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RAW_TEX = re.compile(r"\$[^$\n]{1,200}\$|\\(frac|sum|mathbb|mathrm|left|right|begin|end|nabla|"
                     r"sqrt|partial|top|cdot|alpha|sigma|lambda|Theta)\b")
PLACEHOLDERS = {
    "an unresolved glue": re.compile(r"\{glue|glue:text|glue:any"),
    "a Python traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a raised error": re.compile(r"^\w*(Error|Exception): ", re.M),
    "a tqdm progress bar": re.compile(r"\d+%\|.*\||it/s\]"),
    "a MathJax error": re.compile(r"Math input error|Undefined control sequence|Missing open brace"),
}

# Text of the article without code, its outputs' code blocks, and typeset maths.
_ARTICLE_TEXT_JS = """() => {
  const root = document.querySelector('article.bd-article') || document.body;
  const clone = root.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .cell_input, '
                         + '.headerlink, .toggle-details__summary')
       .forEach(e => e.remove());
  return clone.innerText;
}"""

_PAGE_FACTS_JS = """() => {
  const root = document.querySelector('article.bd-article') || document.body;
  const imgs = [...root.querySelectorAll('img')];
  const outputImgs = [...root.querySelectorAll('.cell_output img, figure img')];
  const maths = [...root.querySelectorAll('.math')];
  return {
    images: imgs.length,
    outputImages: outputImgs.length,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    mathNodes: maths.length,
    untypesetMath: maths.filter(m => !m.querySelector('mjx-container')).length,
    mjx: root.querySelectorAll('mjx-container').length,
    mjxErrors: root.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    errorOutputs: root.querySelectorAll('.output.traceback, .output.error, .output.stderr').length,
    copyButtons: document.querySelectorAll('button.copybtn').length,
    codeCells: root.querySelectorAll('.cell_input').length,
    title: (root.querySelector('h1') || {}).innerText || '',
  };
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Base URL of ``folder`` served on a loopback port while the block runs."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class PageCheck:
    facts: dict            # _PAGE_FACTS_JS of the page (empty if it did not open)
    problems: list         # reader-visible problems: JS errors, requests off the machine, ...
    claims_rows: int = 0   # rows of the home page's claims table
    claims_pasted: list = field(default_factory=list)   # its glued numbers as shown


@background("browser_pages", fixtures=("pages",))
def _check_pages() -> dict:
    """Every toc page of the quick build opened once in headless Chromium (and each
    chapter page a second time in dark mode for its screenshot), in a thread that
    starts when collection ends and waits for the build: ``{docname: PageCheck}``.

    A page that cannot be opened is a problem of that page, not a lost report.
    """
    if not CHROMIUM.exists():
        raise RuntimeError("/usr/bin/chromium is missing: run `make browser-deps` "
                           "(apt-get install chromium; `make test` does it)")
    from playwright.sync_api import sync_playwright

    build = build_quick_book()
    chapters = set(toc_chapters())
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    report = {}
    with serve(build.html) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for docname in toc_files():
            chapter = docname.removeprefix("notebooks/")
            try:
                report[docname] = _check_one(browser, site, docname,
                                             chapter if chapter in chapters else None)
            except Exception as exc:  # noqa: BLE001 -- reported by the test of this page
                report[docname] = PageCheck({}, [f"could not be checked: {type(exc).__name__}: {exc}"])
        browser.close()
    return report


def _check_one(browser, site: str, docname: str, chapter: str | None) -> PageCheck:
    page, context, problems = open_page(browser, f"{site}/{docname}.html")
    facts, page_problems = check_page(page, docname)
    check = PageCheck(facts, problems + page_problems)
    if docname == HOME:
        page.screenshot(path=str(SCREENSHOTS / "intro.png"), full_page=True)
        check.claims_rows = page.locator("table.ntkbook-claims tbody tr").count()
        check.claims_pasted = page.locator("table.ntkbook-claims .pasted-text").all_inner_texts()
    if chapter:
        page.screenshot(path=str(SCREENSHOTS / f"{chapter}.png"), full_page=True)
    context.close()
    if chapter:     # what a reader whose system is in dark mode sees first
        dark, dark_context, _ = open_page(browser, f"{site}/{docname}.html", dark=True)
        first_figure = dark.locator(".cell_output img").first
        if first_figure.count():
            first_figure.scroll_into_view_if_needed()
        dark.screenshot(path=str(SCREENSHOTS / f"{chapter}.dark.png"))
        dark_context.close()
    return check


@pytest.fixture(scope="module")
def pages() -> dict:
    """``{docname: PageCheck}`` of every toc page (see ``_check_pages``)."""
    return background_result("browser_pages")


def open_page(browser, url: str, *, dark: bool = False):
    """Open ``url`` offline; returns ``(page, context, problems)``.

    ``problems`` collects JavaScript errors, failed local requests and blocked
    requests to other hosts (the book must render with no network).
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  color_scheme="dark" if dark else "light")
    page = context.new_page()
    problems = []

    def route(r):
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            problems.append(f"request off the machine: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and problems.append(
        f"console error: {msg.text}"))
    page.on("response", lambda resp: resp.status >= 400 and problems.append(
        f"HTTP {resp.status}: {resp.url}"))
    page.goto(url, wait_until="load")
    # Wait for MathJax to finish typesetting (startup.promise resolves after it).
    page.evaluate("""() => (window.MathJax && MathJax.startup && MathJax.startup.promise)
                          ? MathJax.startup.promise.then(() => true) : true""")
    page.wait_for_load_state("networkidle")
    return page, context, problems


def check_page(page, docname: str) -> tuple[dict, list]:
    """Facts about a rendered page and the reader-visible problems on it."""
    facts = page.evaluate(_PAGE_FACTS_JS)
    text = page.evaluate(_ARTICLE_TEXT_JS)
    problems = []
    if facts["brokenImages"]:
        problems.append(f"images not shown: {facts['brokenImages']}")
    if facts["untypesetMath"] or facts["mjxErrors"]:
        problems.append(f"{facts['untypesetMath']} of {facts['mathNodes']} maths not typeset, "
                        f"{facts['mjxErrors']} MathJax errors")
    raw = sorted({m.group(0) for m in RAW_TEX.finditer(text)})
    if raw:
        problems.append(f"raw TeX in the text: {raw[:10]}")
    for what, pattern in PLACEHOLDERS.items():
        hit = pattern.search(text)
        if hit:
            problems.append(f"{what}: {text[max(0, hit.start() - 60): hit.end() + 60]!r}")
    if facts["errorOutputs"]:
        problems.append(f"{facts['errorOutputs']} error/stderr outputs")
    return facts, problems


def test_every_page_renders_offline_with_typeset_maths(pages):
    """Every page in the toc: no JS error, no request off the machine, maths typeset."""
    assert set(pages) == set(toc_files())
    report = []
    for docname, check in pages.items():
        report += [f"{docname}: {p}" for p in check.problems]
        if not check.facts.get("title"):
            report.append(f"{docname}: no title")
    assert not report, "\n".join(report)


@pytest.mark.parametrize("chapter", toc_chapters())
def test_chapter_page_shows_figures_and_maths(pages, chapter):
    """A chapter page shows its figures and typeset maths; its screenshots were saved."""
    check = pages[f"notebooks/{chapter}"]
    assert not check.problems, "\n".join(check.problems)
    assert (SCREENSHOTS / f"{chapter}.png").exists() and (SCREENSHOTS / f"{chapter}.dark.png").exists()
    if check.facts["codeCells"]:     # a written chapter (a placeholder has no code)
        assert check.facts["outputImages"] >= 1, f"{chapter} shows no figure"
        assert check.facts["mjx"] >= 1, f"{chapter} has no typeset maths"
        assert check.facts["copyButtons"] >= 1, f"{chapter} has no copy buttons on its code"


def test_home_page_claims_table_is_filled(pages):
    """The home page's claims table shows every glued number, one row per chapter."""
    check = pages[HOME]
    assert not check.problems, "\n".join(check.problems)
    assert check.claims_rows == len(toc_chapters())
    pasted = check.claims_pasted
    num_glued = (ROOT / "book" / "intro.md").read_text().count("{glue:text}")
    assert len(pasted) == num_glued, f"{num_glued} glued numbers expected, shown: {pasted}"
    assert all(re.fullmatch(r"[-+]?[0-9.]+(e[-+]?[0-9]+)?", v.strip()) for v in pasted), pasted
