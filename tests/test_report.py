"""The offline report: notebooks' HTML without CDN scripts, summary.html, and an index whose every link resolves."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from accelbench.analysis import write_summary
from accelbench.cli import main
from accelbench.experiment import run_experiment
from accelbench.report import (
    INDEX_FILE,
    SUMMARY_HTML,
    build_report,
    check_offline,
    render_notebook_html,
    write_summary_html,
)

from .conftest import QUICK

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class _Links(HTMLParser):
    """Every (tag, attribute, value) of an href or src in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.links += [(tag, name, value) for name, value in attrs if name in ("href", "src") and value]


def page_links(page: Path) -> list[tuple[str, str, str]]:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.links


def assert_report_resolves(run_dir: Path) -> None:
    """Every local href/src of every HTML page of the run folder names an existing file; nothing remote loads."""
    pages = sorted(run_dir.rglob("*.html"))
    assert run_dir / INDEX_FILE in pages
    for page in pages:
        for tag, attr, value in page_links(page):
            remote = value.startswith(("http://", "https://", "//"))
            assert not (remote and tag in ("script", "link", "img", "iframe")), f"{page.name} loads {value}"
            if remote or value.startswith(("#", "data:", "mailto:")):
                continue
            target = (page.parent / unquote(urlsplit(value).path)).resolve()
            assert target.is_file(), f"{page.relative_to(run_dir)}: {tag} {attr}={value!r} does not resolve"
        assert check_offline(page.read_text(encoding="utf-8")) == [], page.name


def executed_notebook(path: Path, failed: bool = False) -> Path:
    """A notebook as papermill leaves it: markdown, a stream, a table, an image, papermill's metadata."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A result\nWith a [link](https://example.org) in the text."),
        nbformat.v4.new_code_cell(
            "print(1)", outputs=[nbformat.v4.new_output("stream", name="stdout", text="1\n")]
        ),
        nbformat.v4.new_code_cell(
            "plot()",
            outputs=[
                nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
            ],
        ),
        nbformat.v4.new_code_cell(
            "table",
            outputs=[
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/html": "<table><tr><td>1</td></tr></table>"},
                    execution_count=3,
                )
            ],
        ),  # fmt: skip
    ]
    nb.metadata["papermill"] = {"exception": failed, "duration": 12.5, "parameters": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def test_notebook_html_loads_nothing_from_the_network(tmp_path):
    from nbconvert import HTMLExporter

    nb = executed_notebook(tmp_path / "nb.ipynb")
    default, _ = HTMLExporter().from_filename(str(nb))
    assert check_offline(default), "nbconvert's default page loads require.js/MathJax: the check must see it"
    html = render_notebook_html(nb)
    text = html.read_text()
    assert html == tmp_path / "nb.html" and "<html" in text.lower()
    assert check_offline(text) == []
    assert "data:image/png;base64," + PNG[:20] in text  # the figure travels inside the page
    assert "cdnjs" not in text and "require.js" not in text and "MathJax.js" not in text
    assert 'href="https://example.org"' in text  # a plain link in the text stays


def test_summary_html_links_notebooks_html_and_wraps_tables(tmp_path):
    run = tmp_path / "run"
    executed_notebook(run / "notebooks" / "01_a.ipynb")
    render_notebook_html(run / "notebooks" / "01_a.ipynb")
    (run / "figures").mkdir()
    (run / "figures" / "sst2.png").write_bytes(b"png")
    (run / "summary.md").write_text(
        "# summary\n\n| a | b |\n|---|---|\n| 1 | `<enum 'X'>` |\n\n![fig](figures/sst2.png)\n\n"
        "[nb](notebooks/01_a.ipynb) and [raw](notebooks/missing.ipynb)\n"
    )
    text = write_summary_html(run).read_text()
    assert 'href="notebooks/01_a.html"' in text  # a rendered notebook is linked as HTML
    assert 'href="notebooks/missing.ipynb"' in text  # no rendering: the link is left as it was
    assert '<div class="table"><table>' in text and "&lt;enum" in text  # scrolls, never cut; text escaped
    assert 'src="figures/sst2.png"' in text


def test_build_report_refuses_a_missing_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no run folder" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_tiny_run_opens_from_disk(tiny_bert, tmp_path, capsys):
    run = tmp_path / "results" / "tiny"
    run_experiment("sst2", str(tiny_bert), ["fp32", "dynamic-int8"], run, QUICK, progress=False)
    write_summary(run)
    executed_notebook(run / "notebooks" / "01_baseline__sst2__tiny.ipynb")
    executed_notebook(run / "notebooks" / "02_quantization__sst2__tiny.ipynb", failed=True)
    (run / "config.yaml").write_text("run: tiny\n")

    assert main(["report", str(run)]) == 0
    assert str(run / INDEX_FILE) in capsys.readouterr().out
    assert_report_resolves(run)
    index = (run / INDEX_FILE).read_text()
    hrefs = {value for _, _, value in page_links(run / INDEX_FILE)}
    assert {SUMMARY_HTML, "summary.md", "records.jsonl", "config.yaml", "figures/sst2.png"} <= hrefs
    assert {"notebooks/01_baseline__sst2__tiny.html", "notebooks/02_quantization__sst2__tiny.html"} <= hrefs
    assert index.count("FAILED") == 1  # the notebook whose papermill metadata says it raised
    summary = (run / SUMMARY_HTML).read_text()
    assert "tiny-bert0:dynamic-int8" in summary and "<table>" in summary

    # rebuilt from the files: a stale page with a CDN script is rendered again
    stale = run / "notebooks" / "01_baseline__sst2__tiny.html"
    stale.write_text('<html><script src="https://cdn.example/require.js"></script></html>')
    build_report(run)
    assert check_offline(stale.read_text()) == []
    meta = json.loads((run / "notebooks" / "02_quantization__sst2__tiny.ipynb").read_text())["metadata"]
    assert meta["papermill"]["exception"] is True
