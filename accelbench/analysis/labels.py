"""Label placement on a plot: each label beside its point, clear of other labels and markers, inside the axes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib is imported lazily so that importing the analysis stays cheap
    from matplotlib.axes import Axes
    from matplotlib.transforms import Bbox

LABEL_FONT_SIZE = 9  # points: readable where figures are shown at their drawn size (style.FIGURE_DPI)
# Candidate places, in order of preference: a direction (unit steps right/up) at growing distances in
# points. Beyond the first ring a thin leader line ties the label to its point.
LABEL_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
LABEL_RINGS_PT = (5, 14, 26, 40, 58)
MARKER_RADIUS_PT = 5.0  # the box round each marker that labels keep clear of
LABEL_GAP_PX = 1.0  # labels closer than this count as touching
LABEL_GID = "point-label"
LEADER_GID = "label-leader"


@dataclass
class LabelJob:
    """What to label on one axes: points (data coordinates), their names in order of importance, further
    points that labels must keep clear of (unlabelled markers), and the radius in points of each labelled
    point's marker where it is larger than MARKER_RADIUS_PT (a star, a ring round the recommended one)."""

    ax: Axes
    xs: Sequence[float]
    ys: Sequence[float]
    names: Sequence[str]
    obstacles_xy: Sequence[tuple[float, float]] = ()
    radii_pt: Sequence[float] = ()
    unplaced: list[str] = field(default_factory=list)


def _align(dx: float, dy: float) -> tuple[str, str]:
    return (
        "left" if dx > 0 else "right" if dx < 0 else "center",
        "bottom" if dy > 0 else "top" if dy < 0 else "center",
    )


def _overlaps(a: Bbox, b: Bbox, gap: float = LABEL_GAP_PX) -> bool:
    return a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap


def _inside(box: Bbox, frame: Bbox) -> bool:
    return box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1


def _marker_boxes(ax: Axes, xy: np.ndarray, radii_pt: Sequence[float]) -> list[Bbox]:
    from matplotlib.transforms import Bbox

    scale = ax.figure.dpi / 72.0
    points = ax.transData.transform(xy) if len(xy) else np.empty((0, 2))
    radii = [scale * max(MARKER_RADIUS_PT, r) for r in radii_pt] + [scale * MARKER_RADIUS_PT] * len(points)
    return [
        Bbox.from_extents(px - r, py - r, px + r, py + r) for (px, py), r in zip(points, radii, strict=False)
    ]


def _fixed_boxes(ax: Axes) -> list[Bbox]:
    """Texts already on the axes and a legend drawn inside it: labels keep clear of them too."""
    boxes = [t.get_window_extent() for t in ax.texts if t.get_visible() and t.get_text()]
    legend = ax.get_legend()
    if legend is not None and _overlaps(legend.get_window_extent(), ax.bbox, 0.0):
        boxes.append(legend.get_window_extent())
    return boxes


def _leader(ax: Axes, x: float, y: float, dx_pt: float, dy_pt: float) -> None:
    """A thin line from the point to the label's anchor, in data coordinates of the settled layout."""
    scale = ax.figure.dpi / 72.0
    px, py = ax.transData.transform((x, y))
    ex, ey = ax.transData.inverted().transform((px + dx_pt * scale, py + dy_pt * scale))
    (line,) = ax.plot([x, ex], [y, ey], color="0.45", lw=0.6, zorder=2.5, scalex=False, scaley=False)
    line.set_gid(LEADER_GID)
    line.set_in_layout(False)


def _place(job: LabelJob, fontsize: float) -> None:
    ax = job.ax
    xs, ys = np.asarray(job.xs, dtype=float), np.asarray(job.ys, dtype=float)
    extra = np.asarray(job.obstacles_xy, dtype=float).reshape(-1, 2)
    markers = _marker_boxes(ax, np.vstack([np.column_stack([xs, ys]), extra]), list(job.radii_pt))
    fixed = _fixed_boxes(ax)
    frame = ax.bbox.padded(-2.0)
    placed: list[Bbox] = []
    job.unplaced.clear()
    for x, y, name in zip(xs, ys, job.names, strict=True):
        ann = ax.annotate(name, (x, y), xytext=(0, 0), textcoords="offset points", fontsize=fontsize,
                          alpha=0.95, zorder=5, annotation_clip=False)  # fmt: skip
        ann.set_gid(LABEL_GID)
        ann.set_in_layout(False)
        chosen = None
        # first clear of markers too; failing that, a label may cross a marker but never another label
        for avoid_markers in (True, False):
            for ring, distance in enumerate(LABEL_RINGS_PT):
                for ux, uy in LABEL_DIRECTIONS:
                    dx, dy = ux * distance, uy * distance
                    ann.xyann = (dx, dy)
                    ann.set_ha(_align(dx, dy)[0])
                    ann.set_va(_align(dx, dy)[1])
                    box = ann.get_window_extent()
                    if not _inside(box, frame) or any(_overlaps(box, other) for other in placed + fixed):
                        continue
                    if avoid_markers and any(_overlaps(box, m, 0.0) for m in markers):
                        continue
                    chosen = (dx, dy, ring, box)
                    break
                if chosen:
                    break
            if chosen:
                break
        if chosen is None:
            ann.remove()
            job.unplaced.append(name)
            continue
        dx, dy, ring, box = chosen
        placed.append(box)
        if ring > 0:
            _leader(ax, x, y, dx, dy)


def place_labels(
    ax: Axes | Sequence[LabelJob],
    xs: Sequence[float] = (),
    ys: Sequence[float] = (),
    names: Sequence[str] = (),
    obstacles_xy: Sequence[tuple[float, float]] = (),
    fontsize: float = LABEL_FONT_SIZE,
) -> list[str]:
    """Label points so that no label overlaps another, each stays inside its axes and keeps to its point.

    Call it last, once everything else is drawn: the figure is laid out first and every candidate place is
    measured with its renderer, so the check is on what is drawn. Axes limits are frozen then (labels
    never rescale the plot). Names go in order, the most important first; each takes the first free place
    of ``LABEL_DIRECTIONS`` x ``LABEL_RINGS_PT`` clear of markers (``obstacles_xy`` adds unlabelled ones),
    else one clear of labels only; a label away from its point gets a leader line. A name that finds no
    place is left out and returned, for the caller to name that point another way (legend, table).
    Pass a list of ``LabelJob`` instead of one axes to label several axes of one figure after its layout.
    """
    jobs = list(ax) if isinstance(ax, Sequence) else [LabelJob(ax, xs, ys, names, obstacles_xy)]
    if not jobs:
        return []
    figure = jobs[0].ax.figure
    figure.draw_without_rendering()  # settle the layout (constrained layout, legends) before measuring
    for job in jobs:
        job.ax.set_autoscale_on(False)
    unplaced = []
    for job in jobs:
        _place(job, fontsize)
        unplaced += job.unplaced
    return unplaced


def label_texts(ax: Axes) -> list:
    """The point labels ``place_labels`` put on ``ax`` (for checks)."""
    return [t for t in ax.texts if t.get_gid() == LABEL_GID]


__all__ = ["LABEL_FONT_SIZE", "LabelJob", "label_texts", "place_labels"]
