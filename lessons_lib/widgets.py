"""Interactive explorers: thin ipywidgets controls over the library's pure functions.

Every explorer is an :class:`Explorer`: it owns one persistent matplotlib figure, a list of
controls and a message line. A change of any control calls :meth:`Explorer.draw`, which
updates the existing artists in place (``line.set_ydata``...), then the figure is shown again
in the explorer's Output widget. Controls are wired with ``observe`` (not ``interact``, which
swallows exceptions), so a test can set ``slider.value = v`` and any error reaches it.
``last_update_seconds`` records how long the last update took.

Display an explorer by leaving it as the last expression of a cell.
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import clear_output, display

__all__ = ["Explorer"]


class Explorer:
    """Base class: subclasses build ``self.fig`` and the artists, list their ``controls`` and
    implement :meth:`draw`, which reads the controls and updates the artists."""

    def __init__(self, controls: list[widgets.Widget], fig: plt.Figure):
        self.controls = controls
        self.fig = fig
        plt.close(fig)  # shown only through the Output widget, never twice
        self.output = widgets.Output()
        self.message = widgets.HTML(value="")
        self.last_update_seconds = float("nan")
        for control in controls:
            control.observe(self._on_change, names="value")
        self.update()

    def draw(self) -> None:
        """Recompute from the controls' values and update the artists (subclasses)."""
        raise NotImplementedError

    def update(self) -> None:
        start = time.perf_counter()
        self.draw()
        self.fig.canvas.draw_idle()
        with self.output:
            clear_output(wait=True)
            display(self.fig)
        self.last_update_seconds = time.perf_counter() - start

    def _on_change(self, change) -> None:
        self.update()

    @property
    def widget(self) -> widgets.Widget:
        return widgets.VBox([widgets.HBox(self.controls), self.message, self.output])

    def _ipython_display_(self) -> None:
        display(self.widget)
