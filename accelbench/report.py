"""The run's shareable report: index.html linking summary.html, every executed notebook's HTML and every figure.

Every link is relative to the run folder and no page loads anything from the network (the notebooks' HTML
drops MathJax, require.js, mermaid and widget scripts from a CDN; images are embedded or lie in the
folder), so the folder opens from disk and can be zipped and mailed. ``accelbench report RUN_DIR``
rebuilds it from the folder's files; the suite writes it at the end of a run.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from .analysis.summary import FIGURES_DIR, SUMMARY_FILE, write_summary
from .exceptions import ConfigError
from .records import RECORDS_FILE

logger = logging.getLogger(__name__)

INDEX_FILE = "index.html"
SUMMARY_HTML = "summary.html"
NOTEBOOKS_DIR = "notebooks"
CONFIG_FILE = "config.yaml"
# JupyterLab's own HTML template, less every block that loads a script from a CDN. The notebooks hold no
# math, widgets or diagrams; a formula in a markdown cell would show as its TeX source.
OFFLINE_TEMPLATE_NAME = "accelbench_offline.html.j2"
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
# A tag that would fetch a script, a stylesheet, an image or a frame from the network.
REMOTE_ASSET = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I
)
PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #1f2328; }
h1, h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; }
th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfbfc; }
code { background: #f6f8fa; padding: 0 .2em; }
img { max-width: 100%; height: auto; }
.failed { color: #b42318; font-weight: 600; }
figure { margin: 1.5em 0; }
figcaption { font-size: .9em; color: #57606a; }
"""


def check_offline(text: str) -> list[str]:
    """The tags of an HTML page that would load a script, stylesheet, image or frame from the network."""
    return [m.group(0) for m in REMOTE_ASSET.finditer(text)]


def render_notebook_html(notebook: Path) -> Path:
    """``notebook`` as HTML beside it, readable offline: JupyterLab's look, images embedded, no CDN script."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({OFFLINE_TEMPLATE_NAME: OFFLINE_TEMPLATE})],
        template_file=OFFLINE_TEMPLATE_NAME,
        embed_images=True,
    )
    body, _ = exporter.from_filename(str(notebook))
    remote = check_offline(body)
    if remote:
        logger.warning("%s still loads from the network: %s", notebook.name, "; ".join(remote[:3]))
    out = Path(notebook).with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{PAGE_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _local_link(run_dir: Path, match: re.Match[str]) -> str:
    """An href of summary.md: a notebook's .ipynb points at its HTML rendering where there is one."""
    attr, target = match.group(1), match.group(2)
    if not re.match(r"[a-z]+:|#|/", target) and target.endswith(".ipynb"):
        rendered = target[: -len(".ipynb")] + ".html"
        if (run_dir / html.unescape(rendered)).is_file():
            target = rendered
    return f'{attr}="{target}"'


def write_summary_html(run_dir: Path) -> Path:
    """run_dir/summary.html: summary.md rendered, wide tables scrolling sideways instead of being cut off."""
    import mistune  # nbconvert's markdown renderer

    run_dir = Path(run_dir)
    text = (run_dir / SUMMARY_FILE).read_text(encoding="utf-8")
    render = mistune.create_markdown(escape=True, plugins=["table", "strikethrough", "url"])
    body = render(text)
    body = re.sub(r'(href|src)="([^"]*)"', lambda m: _local_link(run_dir, m), body)
    body = body.replace("<table>", '<div class="table"><table>').replace("</table>", "</table></div>")
    nav = f'<p><a href="{INDEX_FILE}">← the run\'s report</a> · <a href="{SUMMARY_FILE}">summary.md</a></p>'
    out = run_dir / SUMMARY_HTML
    out.write_text(_page(f"accelbench summary: {run_dir.name}", nav + "\n" + body), encoding="utf-8")
    return out


def notebook_status(notebook: Path) -> dict[str, Any]:
    """What an executed notebook's papermill metadata says: ok or failed, and its seconds."""
    try:
        meta = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {}).get("papermill", {})
    except (OSError, ValueError):
        return {"ok": None, "seconds": None}
    failed = bool(meta.get("exception"))
    return {"ok": not failed if meta else None, "seconds": meta.get("duration")}


def _href(path: Path, run_dir: Path) -> str:
    return html.escape(path.relative_to(run_dir).as_posix(), quote=True)


def _notebooks_block(run_dir: Path) -> list[str]:
    notebooks = sorted((run_dir / NOTEBOOKS_DIR).glob("*.ipynb"))
    if not notebooks:
        return ["<p>No executed notebooks in this run folder.</p>"]
    rows = ["<tr><th>notebook</th><th>status</th><th>seconds</th><th>source</th></tr>"]
    for nb in notebooks:
        status = notebook_status(nb)
        rendered = nb.with_suffix(".html")
        name = html.escape(nb.stem)
        link = f'<a href="{_href(rendered, run_dir)}">{name}</a>' if rendered.is_file() else name
        state = {True: "ok", False: '<span class="failed">FAILED</span>', None: "?"}[status["ok"]]
        seconds = f"{status['seconds']:.0f}" if isinstance(status["seconds"], int | float) else ""
        rows.append(
            f'<tr><td>{link}</td><td>{state}</td><td>{seconds}</td><td><a href="{_href(nb, run_dir)}">.ipynb</a></td></tr>'
        )
    return ['<div class="table"><table>', *rows, "</table></div>"]


def _figures_block(run_dir: Path) -> list[str]:
    figures = sorted((run_dir / FIGURES_DIR).glob("*.png")) + sorted((run_dir / FIGURES_DIR).glob("*.svg"))
    if not figures:
        return ["<p>No figures in this run folder.</p>"]
    out = []
    for fig in figures:
        href = _href(fig, run_dir)
        out.append(
            f'<figure><a href="{href}"><img src="{href}" alt="{html.escape(fig.stem)}"></a>'
            f"<figcaption>{html.escape(fig.name)}</figcaption></figure>"
        )
    return out


def write_index(run_dir: Path) -> Path:
    """run_dir/index.html: links to the summary, every executed notebook, every figure and the raw files."""
    run_dir = Path(run_dir)
    parts = [f"<h1>accelbench run: {html.escape(run_dir.name)}</h1>",
             f"<p>Report built {time.strftime('%Y-%m-%d %H:%M')}; every link is a file of this folder.</p>",
             "<h2>Summary</h2>"]  # fmt: skip
    if (run_dir / SUMMARY_HTML).is_file():
        parts.append(
            f'<p><a href="{SUMMARY_HTML}">The summary</a>: per task the variants, the frontiers, the '
            f"recommendation, and every failure with its cause and fix "
            f'(<a href="{SUMMARY_FILE}">summary.md</a>).</p>'
        )
    else:
        parts.append("<p>No summary: nothing was recorded in this run folder.</p>")
    raw = [f for f in (RECORDS_FILE, CONFIG_FILE) if (run_dir / f).is_file()]
    if raw:
        parts.append("<p>Raw files: " + ", ".join(f'<a href="{f}">{f}</a>' for f in raw) + "</p>")
    parts += ["<h2>Notebooks</h2>", *_notebooks_block(run_dir), "<h2>Figures</h2>", *_figures_block(run_dir)]
    out = run_dir / INDEX_FILE
    out.write_text(_page(f"accelbench run: {run_dir.name}", "\n".join(parts)), encoding="utf-8")
    return out


def build_report(run_dir: Path | str, render: bool = True) -> Path:
    """Write run_dir/index.html and summary.html; returns index.html's path.

    ``render`` re-renders every executed notebook's HTML (so an older run's pages lose their CDN scripts);
    without it only notebooks whose HTML is missing or older than the notebook are rendered. summary.md is
    written from the records when the folder has records but no summary.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"no run folder {run_dir}", "pass a run's folder, e.g. results/default")
    for nb in sorted((run_dir / NOTEBOOKS_DIR).glob("*.ipynb")):
        rendered = nb.with_suffix(".html")
        if render or not rendered.is_file() or rendered.stat().st_mtime < nb.stat().st_mtime:
            try:
                render_notebook_html(nb)
            except Exception as e:  # one unreadable notebook leaves the rest of the report standing
                logger.warning("could not render %s to HTML: %s", nb, e)
    if not (run_dir / SUMMARY_FILE).is_file() and (run_dir / RECORDS_FILE).is_file():
        write_summary(run_dir)
    if (run_dir / SUMMARY_FILE).is_file():
        write_summary_html(run_dir)
    index = write_index(run_dir)
    logger.info("wrote %s", index)
    return index


__all__ = ["INDEX_FILE", "SUMMARY_HTML", "build_report", "check_offline", "render_notebook_html"]
