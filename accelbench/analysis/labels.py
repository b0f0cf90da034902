"""Label placement on a scatter plot: each label where it overlaps other labels and markers least."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.axes import Axes

LABEL_FONT_SIZE = 7
# Candidate label offsets in points, in order of preference; each label takes the one that overlaps
# the other labels and markers least.
LABEL_OFFSETS = (
    (6, 4), (6, -4), (-6, 4), (-6, -4), (0, 9), (0, -9), (9, 0), (-9, 0),
    (6, 14), (6, -14), (-6, 14), (-6, -14), (0, 20), (0, -20),
)  # fmt: skip
LABEL_CHAR_WIDTH = 0.6  # average character width as a share of the font size
MARKER_RADIUS_PT = 5.0


def _box(x: float, y: float, dx: float, dy: float, width: float, height: float) -> tuple[float, ...]:
    """Display-space box of a label anchored at (x + dx, y + dy) with the alignment _align gives."""
    left = x + dx - (width if dx < 0 else width / 2 if dx == 0 else 0.0)
    bottom = y + dy - (height if dy < 0 else height / 2 if dy == 0 else 0.0)
    return left, bottom, left + width, bottom + height


def _align(dx: float, dy: float) -> tuple[str, str]:
    return (
        "left" if dx > 0 else "right" if dx < 0 else "center",
        "bottom" if dy > 0 else "top" if dy < 0 else "center",
    )


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def place_labels(ax: Axes, xs: np.ndarray, ys: np.ndarray, names: list[str]) -> None:
    """Annotate each point with its name, greedily picking the offset that collides least.

    Sizes are estimated from the font size, not measured, so this needs no renderer; the layout engine
    may still rescale the axes afterwards, which keeps it approximate but far better than fixed offsets.
    """
    ax.autoscale_view()
    scale = ax.figure.dpi / 72.0
    points = ax.transData.transform(np.column_stack([xs, ys]))
    radius = MARKER_RADIUS_PT * scale
    obstacles = [(px - radius, py - radius, px + radius, py + radius) for px, py in points]
    frame = tuple(ax.bbox.extents)
    height = LABEL_FONT_SIZE * 1.25 * scale
    for (px, py), x, y, name in zip(points, xs, ys, names, strict=True):
        width = len(name) * LABEL_FONT_SIZE * LABEL_CHAR_WIDTH * scale
        best, best_score = LABEL_OFFSETS[0], math.inf
        for dx, dy in LABEL_OFFSETS:
            box = _box(px, py, dx * scale, dy * scale, width, height)
            outside = width * height - _overlap(box, frame)
            score = sum(_overlap(box, other) for other in obstacles) + 2.0 * outside
            if score < best_score - 1e-9:
                best, best_score = (dx, dy), score
        obstacles.append(_box(px, py, best[0] * scale, best[1] * scale, width, height))
        ha, va = _align(*best)
        ax.annotate(
            name, (x, y), xytext=best, textcoords="offset points",
            fontsize=LABEL_FONT_SIZE, ha=ha, va=va, alpha=0.9,
        )  # fmt: skip


__all__ = ["LABEL_FONT_SIZE", "place_labels"]
