"""Label placement: every point gets its label, and two close points get different offsets."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from accelbench.analysis.labels import place_labels


def test_close_points_get_labels_that_do_not_share_an_offset():
    ax = Figure().subplots()
    xs, ys = np.array([1.0, 1.01, 5.0]), np.array([1.0, 1.0, 3.0])
    ax.scatter(xs, ys)
    place_labels(ax, xs, ys, ["first-variant", "second-variant", "far"])
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {"first-variant", "second-variant", "far"}
    offsets = [texts[name].xyann for name in ("first-variant", "second-variant")]
    assert offsets[0] != offsets[1]
