"""The offline scenario's batch-size search drawn: each variant's probes and the size it chose."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ..measure.offline import offline_curves
from .style import batch_size_axis, legend_beside, new_figure, readable
from .tables import VARIANT

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@readable
def offline_search_plot(records: pd.DataFrame) -> Figure | None:
    """Throughput of each probe over batch size, one line per variant, the chosen size ringed; sizes that
    failed or went over the memory bound are not drawn. None when no offline point was recorded."""
    curves = offline_curves(records)
    if curves.empty:
        return None
    ok = curves[curves["throughput"].notna()] if "throughput" in curves.columns else curves.iloc[0:0]
    if ok.empty:
        return None
    fig, (ax,) = new_figure()
    for variant, group in ok.groupby(VARIANT, sort=False):
        group = group.sort_values("batch_size")
        (line,) = ax.plot(group["batch_size"], group["throughput"], marker="o", label=str(variant))
        chosen = group[group["chosen"].astype(bool)]
        ax.scatter(chosen["batch_size"], chosen["throughput"], s=160, facecolors="none",
                   edgecolors=line.get_color(), linewidths=2)  # fmt: skip
    batch_size_axis(ax, ok["batch_size"])
    ax.set(xlabel="batch size (the search's probes; ringed: the size chosen)", ylabel="samples/s",
           title="Offline scenario: each variant's batch-size search")  # fmt: skip
    ax.grid(alpha=0.3)
    legend_beside(ax, ax.get_legend_handles_labels()[0], title="variant")
    return fig


__all__ = ["offline_search_plot"]
