"""The one rendering base of every explorer: a figure drawn to a PNG inside an ipywidgets Image.

An :class:`Explorer` owns one persistent matplotlib figure, a list of controls and a message
line. A change of any control calls :meth:`Explorer.draw`, which updates the existing artists in
place (``line.set_ydata``, ...); the figure is then rendered once, to a PNG, into the explorer's
one ``ipywidgets.Image`` (``picture``), whose bytes travel to the browser as a binary message and
replace the picture in place. Controls are wired with ``observe`` (not ``interact``, which
swallows exceptions), so a test can set ``slider.value = v`` and any error reaches it.
``last_update_seconds`` records how long the last update took.

Why an Image widget and not ``display(fig)`` in an Output widget: the inline backend renders the
figure twice per display (``bbox_inches="tight"`` measures it first) at the default compression,
base64-encodes it into JSON, and the browser rebuilds the output area each time.
``benchmarks/ux/felt_latency.py`` measures what a student waits for in JupyterLab.

Display an explorer by leaving it as the last expression of a cell.
"""

from __future__ import annotations

import base64
import io
import math
import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg

from .._validate import require_real

__all__ = ["Explorer", "float_slider", "log_slider"]


class Explorer:
    """Base class: subclasses build ``self.fig`` and the artists, list their ``controls`` and
    implement :meth:`draw`, which reads the controls and updates the artists.

    A subclass whose axes never change (limits, ticks, labels, legends fixed) also returns the
    artists that do change from :meth:`moving_artists`; the rest of the figure is then rendered
    once, kept as a bitmap, and each update draws only those artists on top of it ("blitting",
    as matplotlib's animations do), which skips the text layout that dominates a full render."""

    def __init__(self, controls: list[widgets.Widget], fig: plt.Figure):
        self.controls = controls
        self.fig = fig
        plt.close(fig)  # shown only through the Image widget, never twice
        self.canvas = FigureCanvasAgg(fig)  # renders into memory, whatever the notebook's backend
        self._background = None
        # the figure as the browser shows it: at its own size, not stretched to the box's width
        self.picture = widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start", max_width="100%"))
        self.message = widgets.HTML(value="")
        self.last_update_seconds = float("nan")
        for control in controls:
            control.observe(self._on_change, names="value")
        self.update()
        # The layout engine has placed the axes for the first figure; keep them there. Re-running
        # constrained layout on every update would cost a fifth of a render, and the axes would
        # shift as tick labels change width while one drags.
        fig.set_layout_engine("none")

    def draw(self) -> None:
        """Recompute from the controls' values and update the artists (subclasses)."""
        raise NotImplementedError

    def moving_artists(self) -> list | None:
        """The artists :meth:`draw` changes, if nothing else in the figure ever changes; ``None``
        (the default) renders the whole figure on every update."""
        return None

    def update(self) -> None:
        """Redraw from the controls and send the new PNG to ``picture``."""
        start = time.perf_counter()
        # The message that names the new values reaches the browser after the new figure, never
        # before it: whoever sees the message (a student, the browser test) sees its figure.
        with self.message.hold_sync():
            self.draw()
            self.picture.value = self.png()
        self.last_update_seconds = time.perf_counter() - start

    def render(self) -> None:
        """Bring the canvas up to date: a full draw, or the kept background plus the moving artists."""
        moving = self.moving_artists()
        if moving is None:
            self.canvas.draw()
            return
        for artist in moving:
            artist.set_animated(True)  # left out of full draws, hence out of the background
        if self._background is None:
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        else:
            self.canvas.restore_region(self._background)
        for artist in moving:
            self.fig.draw_artist(artist)

    def png(self) -> bytes:
        """The figure as it is now, as PNG bytes (zlib level 1: faster to encode than the default
        level 6, for a larger file)."""
        self.render()
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.asarray(self.canvas.buffer_rgba())).save(buffer, format="png", compress_level=1)
        return buffer.getvalue()

    def _on_change(self, change) -> None:
        self.update()

    @property
    def widget(self) -> widgets.Widget:
        """The controls, the message line and the picture, top to bottom."""
        return widgets.VBox([widgets.HBox(self.controls), self.message, self.picture])

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget for JupyterLab, and beside it a PNG of the figure as it is now, which
        every reader that cannot run the widget shows instead: GitHub, nbviewer and the course
        book show the explorer's initial state, not an empty box."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.picture.value).decode("ascii")
        return bundle


def float_slider(description: str, value: float, lo: float, hi: float, step: float, *, name: str = "value",
                 **kwargs) -> widgets.FloatSlider:
    """A linear slider from ``lo`` to ``hi``, starting at ``value``, the explorer's argument ``name``,
    which must lie in [lo, hi] (a slider would clamp it to another value without a word)."""
    value = require_real(value, name, lo, hi)
    return widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=description, **kwargs)


def log_slider(value: float, lo: float, hi: float, step: float, *, name: str = "value",
               **kwargs) -> widgets.FloatLogSlider:
    """A base-10 log slider from about ``lo`` to ``hi`` whose grid of exponents (spacing ``step``)
    contains ``value`` exactly, so the browser does not snap the initial value to a neighbour.
    ``value`` is the explorer's argument ``name`` and must lie inside (lo, hi)."""
    value = require_real(value, name, lo, hi, open_lo=True, open_hi=True)
    centre = math.log10(value)
    below = round((centre - math.log10(lo)) / step)
    above = round((math.log10(hi) - centre) / step)
    return widgets.FloatLogSlider(value=value, base=10, min=centre - below * step, max=centre + above * step,
                                  step=step, **kwargs)
