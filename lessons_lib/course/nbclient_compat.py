"""nbclient's Output widget without its echo to the kernel (jupyter/nbclient#312).

nbclient stands in for every ipywidgets Output widget of a notebook it runs, and sends what the
widget captured back to the kernel from inside its output handler, on the shell channel, while
it waits on that same channel for the execute reply: the run can block for good. A headless
run never needs those outputs back. Every headless executor of the course uses this module:
``tools/build_notebooks.py`` (``make notebooks``, the benchmarks, the tests) through
:data:`WIDGET_REGISTRY`, and nbgrader's process through :func:`one_way_output_widgets`, which
the ``nbgrader_config.py`` block of :mod:`lessons_lib.course.homework` calls.
"""

from __future__ import annotations

from nbclient.output_widget import OutputWidget


class OneWayOutputWidget(OutputWidget):
    """An Output widget that keeps what it captures and sends nothing back to the kernel."""

    def sync_state(self) -> None:
        pass


WIDGET_REGISTRY = {"@jupyter-widgets/output": {"OutputModel": OneWayOutputWidget}}
"""For ``NotebookClient.widget_registry`` (an attribute: ``__init__`` sets the default)."""


def one_way_output_widgets() -> None:
    """Make every nbclient Output widget of this process one-way (nbgrader builds its own
    clients, so its widget registry cannot be passed in)."""
    OutputWidget.sync_state = OneWayOutputWidget.sync_state
