"""Every explorer shows a static figure where widgets cannot run (GitHub, nbviewer, the course
book): its display bundle holds the live widget and a PNG of the figure's current state."""

import base64
import io

import matplotlib.image

from lessons_lib.explorers import MixtureScoreExplorer


def _static_png(explorer) -> bytes:
    return base64.b64decode(explorer._repr_mimebundle_()["image/png"])


def test_display_bundle_has_the_widget_and_a_png_of_the_current_figure():
    explorer = MixtureScoreExplorer()
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/plain" in bundle
    first = matplotlib.image.imread(io.BytesIO(base64.b64decode(bundle["image/png"])), format="png")
    width, height = explorer.fig.get_size_inches() * explorer.fig.dpi
    assert 0.5 * width < first.shape[1] <= width + 1 and 0.5 * height < first.shape[0] <= height + 1
    explorer.weight.value = 0.9  # the static image follows the figure
    again = matplotlib.image.imread(io.BytesIO(_static_png(explorer)), format="png")
    assert again.shape != first.shape or abs(again - first).max() > 0.1
    assert _static_png(explorer) == explorer.picture.value  # what the widget shows
