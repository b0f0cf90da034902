"""Figure conventions for reading at the size figures are shown: page width, fonts, markers, ticks, flags.

A notebook page (and a browser showing summary.md's figures) is about 1,100 px wide. Figures are drawn at
FIGURE_DPI and FIGURE_WIDTH_IN so that they are shown at the size they are drawn, never scaled down, and
every font is at least MIN_FONT_SIZE points there. Several panels go one per row.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from ..records import BASELINE_METHOD
from .selection import baseline_row

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PAGE_WIDTH_PX = 1100
FIGURE_DPI = 100
FIGURE_WIDTH_IN = 10.5  # 1,050 px at FIGURE_DPI
ROW_HEIGHT_IN = 4.4  # one row of panels
MIN_FONT_SIZE = 9
READABLE_RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": MIN_FONT_SIZE,
    "ytick.labelsize": MIN_FONT_SIZE,
    "legend.fontsize": MIN_FONT_SIZE,
    "legend.title_fontsize": MIN_FONT_SIZE,
    "figure.titlesize": 11,
    "figure.dpi": FIGURE_DPI,
    "savefig.dpi": FIGURE_DPI,
}
LEGEND_WRAP = 38  # characters per line of a legend note, so that a legend beside the axes stays narrow
METHOD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "d")
BASELINE_MARKER = "*"
FLOOR_STYLE = {"ls": "--", "color": "grey", "lw": 1}

F = TypeVar("F", bound=Callable[..., Any])


def readable(function: F) -> F:
    """Draw a figure function's artists with READABLE_RC's fonts, whatever the caller's rcParams."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from matplotlib import rc_context

        with rc_context(READABLE_RC):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(
    nrows: int = 1,
    ncols: int = 1,
    row_height_in: float | Sequence[float] = ROW_HEIGHT_IN,
    width_in: float = FIGURE_WIDTH_IN,
) -> tuple[Figure, list[Axes]]:
    """A figure the width of a page at FIGURE_DPI with ``nrows`` x ``ncols`` axes (flat list, row by row).

    ``row_height_in`` is every row's height, or one height per row. A bare Figure (Agg canvas) is not
    registered with pyplot: no backend choice, no GUI, no leak in loops.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heights = (
        [float(row_height_in)] * nrows if isinstance(row_height_in, int | float) else list(row_height_in)
    )
    fig = Figure(figsize=(width_in, sum(heights)), dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, height_ratios=heights)
    return fig, [ax for row in axes for ax in row]


def rows_height(n_rows: int, per_row_in: float = 0.32, minimum_in: float = 2.4) -> float:
    """The height of a panel listing ``n_rows`` names down its y axis (horizontal bars), in inches."""
    return max(minimum_in, 1.3 + per_row_in * n_rows)


def wrap(text: str, width: int = LEGEND_WRAP) -> str:
    """A legend note on lines of at most ``width`` characters."""
    return "\n".join(textwrap.wrap(text, width)) or text


def legend_beside(ax: Axes, handles: list, **kwargs: Any) -> None:
    """A legend to the right of the axes, where it covers no point; the layout makes room for it."""
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  framealpha=0.9, **kwargs)  # fmt: skip


def batch_size_axis(ax: Axes, sizes: Sequence[float], axis: str = "x") -> None:
    """A log-scaled batch-size axis whose ticks are the batch sizes measured (1, 8, 32), not powers of 10."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    values = sorted({int(s) for s in sizes if pd.notna(s)})
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    target.set_major_locator(FixedLocator(values))
    target.set_major_formatter(FixedFormatter([str(v) for v in values]))
    target.set_minor_locator(NullLocator())
    if len(values) == 1:  # one size: a little room either side instead of a degenerate log range
        (ax.set_xlim if axis == "x" else ax.set_ylim)(values[0] / 1.5, values[0] * 1.5)


def quality_floor(records: pd.DataFrame, fraction: float) -> tuple[float, str] | None:
    """The recommendation's floor: ``fraction`` of the best fp32 metric, and its name; None without fp32."""
    best = baseline_row(records)
    if best is None:
        return None
    return fraction * float(best["metric"]), str(best.get("variant", BASELINE_METHOD))


__all__ = [
    "BASELINE_MARKER",
    "FIGURE_DPI",
    "FIGURE_WIDTH_IN",
    "FLOOR_STYLE",
    "METHOD_MARKERS",
    "MIN_FONT_SIZE",
    "PAGE_WIDTH_PX",
    "READABLE_RC",
    "batch_size_axis",
    "legend_beside",
    "new_figure",
    "quality_floor",
    "readable",
    "rows_height",
    "wrap",
]
