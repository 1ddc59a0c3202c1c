"""The panel base class every slider panel is built on, and the panel registry.

A panel is: controls (ipywidgets sliders, dropdowns, toggles), one ``LiveFigure``
(``rlviz.plots.live``: a matplotlib figure created once whose artists are updated in
place; a slider panel redraws only the moving ones), rendered to a PNG ``ipywidgets.Image``,
and an HTML readout of the numbers the update computed (also kept in ``panel.values``
for tests). Observers fire synchronously, so tests can set ``slider.value`` without a
kernel and read ``panel.values``.

Why a PNG image rather than an interactive canvas: it renders the same in JupyterLab,
VS Code and Colab, needs no extra front-end extension, and costs one Agg render per move.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import time
import traceback
from typing import Callable, Mapping

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg", force=False)  # no-op inside Jupyter, where a backend is already set
from matplotlib.figure import Figure  # noqa: E402

from ..plots.live import PNG_COMPRESS_LEVEL, LiveFigure  # noqa: E402
from ..threads import one_torch_thread  # noqa: E402

# name -> (factory, notebook) ; filled by @register_panel, read by tests and benchmarks
PANEL_REGISTRY: dict[str, tuple[Callable[[], "Panel"], str]] = {}


def register_panel(name: str, notebook: str):
    """Decorator for panel factories: ``@register_panel("clipping", notebook="03")``."""

    def decorate(factory):
        if name in PANEL_REGISTRY:
            raise ValueError(f"panel name {name!r} is registered twice")
        PANEL_REGISTRY[name] = (factory, notebook)
        return factory

    return decorate


def render_png(fig: Figure | LiveFigure, dpi: float | None = None) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas (no pyplot state involved).

    A ``LiveFigure`` renders itself (with blitting on: only its moving artists over a
    cached background); a plain figure gets a full draw. Both encode with zlib level 1:
    about twice as fast as the default level, for files ~20% larger.
    """
    if isinstance(fig, LiveFigure):
        if dpi in (None, fig.figure.dpi):
            return fig.render_png()
        fig = fig.figure
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi or fig.dpi,
                pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL})
    return buffer.getvalue()


def format_number(value) -> str:
    """Numbers for the readout: 4 significant digits, booleans and text as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if value == 0 or math.isfinite(value) and 1e-3 <= abs(value) < 1e4:
        return f"{value:.4g}"
    return f"{value:.3e}"


class Panel:
    """Controls + figure + readout, wired together.

    controls:   name -> ipywidgets control with a ``value`` trait
    live:       the ``LiveFigure`` created once by the factory (``panel.figure`` is its
                matplotlib figure)
    update:     ``update(**params) -> dict`` updates the figure's artists in place for the
                control values ``params`` (usually through ``live.update``) and returns
                the numbers to show (name -> number)
    run_button: if True, changing a control does nothing until "Run" is clicked
                (for updates that take more than a fraction of a second); otherwise the
                panel blits: each move redraws only ``live.moving``
    """

    def __init__(
        self,
        title: str,
        controls: Mapping[str, widgets.Widget],
        live: LiveFigure,
        update: Callable[..., dict],
        run_button: bool = False,
        description: str = "",
    ):
        if not isinstance(live, LiveFigure):
            raise TypeError(f"live must be a rlviz.plots.live.LiveFigure (a figure created "
                            f"once and updated in place), got {type(live).__name__}")
        self.title = title
        self.controls = dict(controls)
        self.live = live
        self.figure = live.figure
        if not run_button:
            live.enable_blit()  # a slider move redraws only the moving artists
        self._update = update
        self.values: dict = {}
        self.errors: list[BaseException] = []
        self.update_seconds: list[float] = []  # compute + redraw time of each refresh
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.readout = widgets.HTML(layout=widgets.Layout(min_width="16em"))
        self.error_area = widgets.Output()
        self.run_button = None
        if run_button:
            self.run_button = widgets.Button(description="Run", button_style="primary",
                                             icon="play")
            self.run_button.on_click(lambda _button: self._safe_refresh())
        else:
            for control in self.controls.values():
                control.observe(self._on_change, names="value")
        header = f"<b>{html.escape(title)}</b>"
        if description:
            header += f"<br><span style='font-size:90%'>{html.escape(description)}</span>"
        control_box = list(self.controls.values())
        if self.run_button is not None:
            control_box.append(self.run_button)
        self.widget = widgets.VBox(
            [
                widgets.HTML(header),
                widgets.HBox([widgets.VBox(control_box), self.readout]),
                self.image,
                self.error_area,
            ],
            layout=widgets.Layout(border="1px solid #ddd", padding="6px"),
        )
        self.widget.add_class("rlviz-panel")
        self.refresh()

    # -- reading and setting controls ------------------------------------------------
    def params(self) -> dict:
        """The current control values, name -> value."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **values) -> dict:
        """Set several controls, then refresh once; returns ``panel.values``."""
        unknown = sorted(set(values) - set(self.controls))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; this panel has {sorted(self.controls)}")
        with self._paused():
            for name, value in values.items():
                self.controls[name].value = value
        return self.refresh()

    def click_run(self) -> dict:
        """What a click on the Run button does (for tests and benchmarks)."""
        return self.refresh()

    # -- updating ----------------------------------------------------------------------
    def refresh(self) -> dict:
        """Recompute and redraw for the current control values; returns ``self.values``."""
        start = time.perf_counter()
        # a slider's update works on tiny tensors: on one torch thread it is faster and
        # steadier (see rlviz.threads); a Run-button panel chooses its own threads
        threads = one_torch_thread() if self.run_button is None else contextlib.nullcontext()
        with threads:
            numbers = self._update(**self.params())
        self.image.value = self.live.render_png()
        self.update_seconds.append(time.perf_counter() - start)
        self.values = dict(numbers or {})
        rows = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td style='text-align:right;"
            f"font-family:monospace'>{format_number(v)}</td></tr>"
            for k, v in self.values.items()
        )
        self.readout.value = f"<table class='rlviz-readout'>{rows}</table>"
        return self.values

    def _safe_refresh(self):
        """Refresh; on error show the traceback in the panel, record it, and re-raise so
        the kernel (and nbval) sees it too."""
        if self.error_area.outputs:  # clear only what an earlier error printed
            self.error_area.clear_output()
        try:
            self.refresh()
        except Exception as error:  # surfaced, never swallowed
            self.errors.append(error)
            with self.error_area:
                print(traceback.format_exc())
            raise

    def _on_change(self, change):
        if not getattr(self, "_is_paused", False):
            self._safe_refresh()

    @contextlib.contextmanager
    def _paused(self):
        """Observers do nothing inside: ``set`` changes several controls, then refreshes once."""
        self._is_paused = True
        try:
            yield
        finally:
            self._is_paused = False

    # -- display ---------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self):
        return f"<rlviz Panel {self.title!r}: controls {list(self.controls)}>"


def slider(description: str, value, min, max, step, readout_format: str | None = None,
           continuous_update: bool = True):
    """A labelled FloatSlider (or IntSlider when all numbers are ints)."""
    kind = widgets.IntSlider if all(isinstance(v, int) for v in (value, min, max, step)) \
        else widgets.FloatSlider
    kwargs = dict(description=description, value=value, min=min, max=max, step=step,
                  continuous_update=continuous_update, style={"description_width": "initial"},
                  layout=widgets.Layout(width="22em"))
    if readout_format and kind is widgets.FloatSlider:
        kwargs["readout_format"] = readout_format
    return kind(**kwargs)
