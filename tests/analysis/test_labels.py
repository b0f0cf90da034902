"""Label placement: measured with the renderer, labels keep clear of each other and of markers, stay inside
the axes and beside their points; one that finds no room is left out and returned."""

from __future__ import annotations

import numpy as np

from accelbench.analysis.labels import label_texts, place_labels
from accelbench.analysis.style import new_figure


def _boxes(ax):
    return {t.get_text(): t.get_window_extent() for t in label_texts(ax)}


def test_close_points_get_labels_that_neither_overlap_nor_leave_the_axes():
    fig, (ax,) = new_figure()
    xs, ys = np.array([1.0, 1.01, 1.02, 5.0]), np.array([1.0, 1.0, 1.01, 3.0])
    ax.scatter(xs, ys)
    unplaced = place_labels(ax, xs, ys, ["first-variant", "second-variant", "third-variant", "far"])
    assert unplaced == []
    boxes = _boxes(ax)
    assert set(boxes) == {"first-variant", "second-variant", "third-variant", "far"}
    names = list(boxes)
    for i, a in enumerate(names):
        assert ax.bbox.x0 <= boxes[a].x0 and boxes[a].x1 <= ax.bbox.x1
        assert ax.bbox.y0 <= boxes[a].y0 and boxes[a].y1 <= ax.bbox.y1
        assert not any(boxes[a].overlaps(boxes[b]) for b in names[i + 1 :])


def test_a_label_stays_beside_its_point():
    fig, (ax,) = new_figure()
    xs, ys = np.array([1.0, 9.0]), np.array([1.0, 9.0])
    ax.scatter(xs, ys)
    ax.set(xlim=(0, 10), ylim=(0, 10))
    place_labels(ax, xs, ys, ["low", "high"])
    for name, (x, y) in (("low", (1.0, 1.0)), ("high", (9.0, 9.0))):
        box = _boxes(ax)[name]
        px, py = ax.transData.transform((x, y))
        # the nearest corner of the label is within a few font heights of its point
        dx = max(box.x0 - px, 0.0, px - box.x1)
        dy = max(box.y0 - py, 0.0, py - box.y1)
        assert np.hypot(dx, dy) < 30


def test_labels_avoid_unlabelled_markers_when_they_can():
    fig, (ax,) = new_figure()
    ax.set(xlim=(0, 10), ylim=(0, 10))
    # the unlabelled points sit where the first-choice place (up and right) would be
    others = [(5.3, 5.3), (5.6, 5.3), (5.3, 5.6)]
    ax.scatter(*zip(*others, strict=True))
    place_labels(ax, [5.0], [5.0], ["named"], obstacles_xy=others)
    box = _boxes(ax)["named"]
    for x, y in others:
        px, py = ax.transData.transform((x, y))
        assert not box.contains(px, py)


def test_a_label_without_room_is_left_out_and_returned():
    fig, (ax,) = new_figure(row_height_in=1.0, width_in=2.0)
    xs, ys = np.zeros(6), np.zeros(6)
    ax.set(xlim=(-1, 1), ylim=(-1, 1))
    names = [f"a rather long variant name {i}" for i in range(6)]
    unplaced = place_labels(ax, xs, ys, names)
    assert unplaced and len(label_texts(ax)) == 6 - len(unplaced)
