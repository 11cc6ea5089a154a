"""The explorers' fast rendering draws what a full render draws.

Explorers with fixed axes redraw only their moving artists over a kept bitmap of the rest
(:meth:`lessons_lib.explorers.base.Explorer.moving_artists`). The independent reference is
matplotlib's own full render of the same figure: after a few slider moves, the PNG the widget
holds must match it pixel for pixel, up to anti-aliasing at a handful of pixels."""

import io

import numpy as np
import PIL.Image
import pytest

from lessons_lib.explorers.cases import EXPLORER_CASES


@pytest.mark.parametrize("case", EXPLORER_CASES, ids=[case.id for case in EXPLORER_CASES])
def test_widget_png_matches_a_full_render_after_slider_moves(case):
    explorer = case.build()
    control = case.control_of(explorer)
    values = case.moves(explorer, 3)
    for value in values:
        control.value = value
    shown = np.asarray(PIL.Image.open(io.BytesIO(explorer.picture.value)).convert("RGBA")).astype(int)
    for artist in explorer.moving_artists() or []:
        artist.set_animated(False)
    explorer.canvas.draw()
    full = np.asarray(explorer.canvas.buffer_rgba()).astype(int)
    assert shown.shape == full.shape
    differ = (np.abs(shown - full).max(axis=-1) > 8).mean()
    assert differ < 1e-3, f"{differ:.3%} of the pixels differ from a full render"
    # and a slider move changes the picture (the test above is not comparing two blank canvases)
    before = explorer.picture.value
    control.value = values[0] if control.value != values[0] else values[1]
    assert explorer.picture.value != before
