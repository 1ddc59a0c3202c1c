"""``LiveFigure``: the one pattern for a figure that a slider panel updates in place.

A live figure is a small class. Its ``__init__`` creates the matplotlib ``Figure`` once
(``super().__init__(figsize=..., dpi=...)``) with all its artists, and lists

- ``self.moving``: every artist an update can change: lines, bars, images, texts whose
  string changes, and the ``Axis`` (``ax.xaxis`` / ``ax.yaxis``) of any axes whose limits
  follow the data, with the artists placed in data coordinates along it (an
  ``axhline(0)`` for a moving y-axis);
- ``self.on_top``: static artists the moving ones must not cover (a legend the curves
  run under).

Its ``update(...)`` puts new data into those artists and returns ``self``; if it changes
a static artist (a legend handle's colour, new tick labels) it calls ``self.invalidate()``,
and it gives a static text (a title) a new string with ``self.set_static_text``.
Everything else is static.

A notebook shows ``LiveFigure(...).update(data).figure``, a plain matplotlib figure. A
panel (``rlviz.widgets.Panel``) calls ``enable_blit()`` once and ``render_png()`` after
each update: the first render draws everything but the moving artists and keeps those
pixels (the *background*); later renders restore them and draw only the moving artists
on top. A full Agg draw of a panel's figure takes 40-80 ms, most of it laying out and
rasterising text that a slider move does not change; a blitted render takes a few ms.
This is matplotlib's documented blitting mechanism (``set_animated``, ``copy_from_bbox``,
``restore_region``, ``draw_artist``; see its tutorial "Faster rendering by using
blitting"), behind ``render_png``. The background is redrawn by itself when the figure's
size or the limits of an axes that is not moving change.

Drawing a moving ``Axis`` (its ticks and their labels) costs 6-12 ms a render, most of
it rasterising text. So an axes whose range follows the data should rather keep a static
axis and call ``self.follow(ax, "y", low, high)``: the limits snap to the round tick
values around ``[low, high]`` and change only when the data leaves them; each set of
limits keeps its own background (the last ``BACKGROUNDS_KEPT``), so moving a slider back
and forth redraws nothing but the curves. As a side effect the axes stop jittering while
a slider is dragged. In the same way a static text whose string changes with a dropdown
(a title naming the chosen mode) is set with ``self.set_static_text(text, string)``: each
string keeps its own background, and only a string not seen recently costs a full draw.

Moving artists are drawn over all static ones, whatever their zorder; so that curves and
shading never cover an axes' frame, the spines of every axes holding a moving artist are
redrawn with them (a few thin lines: cheap). ``figure.savefig`` always draws everything.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import OrderedDict

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axis import Axis, XAxis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

__all__ = ["AXIS_PIXELS_KEPT", "BACKGROUNDS_KEPT", "PNG_COMPRESS_LEVEL", "Bars", "LiveFigure",
           "nice_limits", "png_from_canvas"]

PNG_COMPRESS_LEVEL = 1  # zlib level 1: faster than the default 6; files ~20% larger
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BACKGROUNDS_KEPT = 16  # cached backgrounds per figure (one per set of static limits)
AXIS_PIXELS_KEPT = 32  # per background: the pixels of a followed moving axis, per limits
NICE_STEPS = (1, 2, 2.5, 5, 10)  # tick steps (times a power of ten) that limits snap to


def nice_limits(low: float, high: float, nbins: int = 5) -> tuple[float, float]:
    """The smallest round-number interval (the outer ticks of ``MaxNLocator(nbins)``)
    that holds ``[low, high]``; a zero-width or non-finite range gets a unit width."""
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"limits must be finite, got low={low!r}, high={high!r}")
    if high < low:
        low, high = high, low
    if high - low <= 1e-12 * max(1.0, abs(low), abs(high)):
        low, high = low - 0.5, high + 0.5
    ticks = MaxNLocator(nbins, steps=NICE_STEPS).tick_values(low, high)  # (k,) round numbers
    below = ticks[ticks <= low]
    above = ticks[ticks >= high]
    step = ticks[1] - ticks[0]
    return (float(below[-1]) if len(below) else low - step,
            float(above[0]) if len(above) else high + step)


def flatten_artists(artists) -> list[Artist]:
    """Artists, from any nesting of lists, tuples and containers (``ax.bar``'s result)."""
    if isinstance(artists, Artist):
        return [artists]
    return [artist for item in artists for artist in flatten_artists(item)]


def png_from_canvas(canvas: FigureCanvasAgg) -> bytes:
    """The pixels of a drawn Agg canvas as PNG bytes (8-bit RGB: the figures are opaque).

    A PNG file is a signature and three chunks: IHDR (width, height, colour type), IDAT
    (the zlib-compressed rows, each prefixed by its filter type) and IEND. Written here
    with filter type 0 on every row and zlib level 1; Pillow's encoder tries five filters
    per row, which took 1.8x as long on the panels' figures (measured: 3.4 against 6.0 ms
    on the GAE panel's canvas, 2.1 against 3.7 ms on the KL-tokens one), and flat-colour
    plots compress about as well without filters.
    """
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    height, width, _ = rgba.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # column 0: filter type 0
    pixels = rows[:, 1:]  # (H, 3 W): R G B R G B ...
    for channel in range(3):  # one strided copy per channel: ~8x faster than copying
        pixels[:, channel::3] = rgba[:, :, channel]  # rgba[:, :, :3] pixel by pixel
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows, PNG_COMPRESS_LEVEL))
            + _png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """length, type, data, CRC-32 of type + data (the PNG chunk layout)."""
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


class Bars:
    """Vertical bars that look like ``ax.bar``'s, as ONE ``PolyCollection``: a blitted
    render draws one artist instead of one ``Rectangle`` per bar (each costs ~0.2 ms a
    render, mostly in computing its transform). ``x``: (n,) bar centres; ``bottom``: where
    the bars start (on a log axis, a positive value at or below the axis' lower limit);
    ``edgecolor`` and ``label`` as for ``ax.bar``. ``set_heights`` moves them; list
    ``bars.artist`` in ``moving``."""

    def __init__(self, ax, x, width: float, colors, bottom: float = 0.0,
                 edgecolor="none", label: str | None = None):
        self.left = np.asarray(x, dtype=float) - width / 2  # (n,)
        self.right = self.left + width  # (n,)
        self.bottom = float(bottom)
        self.artist = PolyCollection(self._rectangles(np.full(len(self.left), self.bottom)),
                                     facecolors=colors, edgecolors=edgecolor, label=label)
        ax.add_collection(self.artist)
        ax.autoscale_view(scaley=False)  # the x-limits ``ax.bar`` would give

    def _rectangles(self, tops: np.ndarray) -> np.ndarray:
        """(n,) tops -> (n, 4, 2) corners of the bars, from ``bottom`` up (or down) to top."""
        bottoms = np.full_like(tops, self.bottom)
        xs = np.stack([self.left, self.left, self.right, self.right], axis=1)  # (n, 4)
        ys = np.stack([bottoms, tops, tops, bottoms], axis=1)  # (n, 4)
        return np.stack([xs, ys], axis=2)

    def set_heights(self, tops, colors=None) -> None:
        """New tops (n,), and optionally new colours (n,)."""
        self.artist.set_verts(self._rectangles(np.asarray(tops, dtype=float)))
        if colors is not None:
            self.artist.set_facecolor(colors)


class LiveFigure:
    """A figure created once whose artists ``update`` changes in place (see the module
    docstring for the contract). ``figure``: the matplotlib ``Figure``; ``moving`` and
    ``on_top``: the artists a render redraws and keeps on top."""

    def __init__(self, figsize: tuple[float, float], dpi: float = 72,
                 layout: str | None = None):
        self.figure = Figure(figsize=figsize, dpi=dpi, layout=layout)
        FigureCanvasAgg(self.figure)  # attaches itself as self.figure.canvas
        self.moving: list = []
        self.on_top: list = []
        self._animated: list[Artist] | None = None  # None: blitting is off
        self._labels_placed = False  # moving axes' labels pinned after the first render
        self._static_texts: list = []  # the texts given to set_static_text
        self._followed: set = set()  # ids of moving axes whose limits ``follow`` snaps
        # static limits and texts -> (pixels of the static artists, pixels of the on_top
        # artists' rectangles), most recently used last
        self._backgrounds: OrderedDict = OrderedDict()

    def update(self, *args, **kwargs) -> "LiveFigure":
        """Put new data into the artists; return ``self``."""
        raise NotImplementedError

    # -- rendering ---------------------------------------------------------------------
    @property
    def blitting(self) -> bool:
        """Whether ``enable_blit`` was called (``render_png`` redraws only ``moving``)."""
        return self._animated is not None

    def enable_blit(self) -> None:
        """From now on, ``render_png`` draws the static artists once and the moving ones
        (any nesting of lists and bar containers in ``self.moving``) on every render."""
        moving = flatten_artists(self.moving)
        frames = [spine for ax in self.figure.axes if any(a.axes is ax for a in moving)
                  for spine in ax.spines.values()]
        # drawn in zorder, as a full draw would (axis ticks, lines, spines, then texts)
        self._animated = sorted(moving + frames, key=lambda artist: artist.get_zorder())
        for artist in self._animated:
            artist.set_animated(True)  # a full canvas draw skips it; draw_artist draws it
        self._backgrounds.clear()
        self._labels_placed = False

    def _place_axis_labels(self) -> None:
        """After the first render: pin the label of each moving x-axis, and of each moving
        axis without a label, where matplotlib put it (``Axis.set_label_coords``). An
        axis with automatic label placement measures the tick labels of every axes it is
        aligned with on each draw, a third of the cost of redrawing it; an x-axis' tick
        labels keep their height, so its label would not move anyway. A labelled y-axis
        keeps automatic placement (wider tick labels push its label outwards)."""
        for artist in self._animated:
            if isinstance(artist, Axis) and (isinstance(artist, XAxis)
                                             or not artist.label.get_text()):
                x, y = artist.label.get_position()
                artist.set_label_coords(x, y, transform=artist.label.get_transform())
                if artist.label.get_text():
                    self._move_label_to_background(artist)
        self._labels_placed = True

    def _move_label_to_background(self, axis: Axis) -> None:
        """A pinned label never changes: draw a copy of it with the static artists and
        leave the moving axis an empty label (~2 ms less a render: laying out and
        rasterising a text is most of an axis' cost)."""
        label = axis.label
        copy = self.figure.text(*label.get_position(), label.get_text())
        copy.update_from(label)  # font, colour, alignment, rotation
        copy.set_transform(label.get_transform())
        copy.set_animated(False)
        label.set_text("")
        self._backgrounds.clear()  # the next render draws the background with the copy

    def invalidate(self) -> None:
        """A static artist changed: the next render draws the background again."""
        self._backgrounds.clear()

    def follow(self, ax, which: str, low: float, high: float, nbins: int = 5) -> None:
        """Set the ``which`` ("x" or "y") limits of ``ax`` to ``nice_limits(low, high)``:
        round numbers that change only when the data leaves them (see the module
        docstring). A static axis gets a background per set of limits; an axis listed in
        ``moving`` is drawn on each render, from pixels kept per set of its limits."""
        if which not in ("x", "y"):
            raise ValueError(f"which must be 'x' or 'y', got {which!r}")
        limits = nice_limits(low, high, nbins)
        (ax.set_xlim if which == "x" else ax.set_ylim)(*limits)
        self._followed.add(id(ax.xaxis if which == "x" else ax.yaxis))

    def set_static_text(self, text_artist, text: str) -> None:
        """Give a static text (a title) a new string. The text stays in the background:
        each of its strings keeps a background of its own, as each set of limits does."""
        if not any(text_artist is known for known in self._static_texts):
            self._static_texts.append(text_artist)
        text_artist.set_text(text)

    def _background_key(self) -> list:
        """The figure's size, the limits of every axis that is not moving and the strings
        of the texts given to ``set_static_text``: if one of these changes, the cached
        background is out of date."""
        animated = {id(artist) for artist in self._animated}
        limits = [tuple(self.figure.bbox.size)]
        limits += [text.get_text() for text in self._static_texts]
        for ax in self.figure.axes:
            if id(ax.xaxis) not in animated:
                limits.append(tuple(ax.get_xlim()))
            if id(ax.yaxis) not in animated:
                limits.append(tuple(ax.get_ylim()))
        return limits

    def render_png(self) -> bytes:
        """PNG bytes of the figure as it is now: a full draw, or with blitting on the
        cached background with the moving artists drawn over it."""
        canvas = self.figure.canvas
        if self._animated is None:
            canvas.draw()
            return png_from_canvas(canvas)
        key = tuple(self._background_key())
        if key in self._backgrounds:
            self._backgrounds.move_to_end(key)
            background, on_top_regions, axis_pixels = self._backgrounds[key]
            canvas.restore_region(background)
        else:
            canvas.draw()  # everything except the animated (moving) artists
            self.figure.set_layout_engine("none")  # keep the layout of that first draw
            renderer = canvas.get_renderer()
            on_top_regions = [
                canvas.copy_from_bbox(artist.get_window_extent(renderer).padded(1))
                for artist in flatten_artists(self.on_top)]
            axis_pixels = {}
            self._backgrounds[key] = (canvas.copy_from_bbox(self.figure.bbox), on_top_regions,
                                      axis_pixels)
            if len(self._backgrounds) > BACKGROUNDS_KEPT:
                self._backgrounds.popitem(last=False)  # the least recently used
        followed = [artist for artist in self._animated
                    if id(artist) in self._followed and self._labels_placed]
        for axis in followed:  # first, on the bare background: only then can they be kept
            self._draw_followed_axis(axis, axis_pixels)
        for artist in self._animated:
            if not any(artist is axis for axis in followed):
                self.figure.draw_artist(artist)
        if not self._labels_placed:
            self._place_axis_labels()
        for region in on_top_regions:
            canvas.restore_region(region)  # back where it was copied from, over the moving
        return png_from_canvas(canvas)

    def _draw_followed_axis(self, axis: Axis, axis_pixels: dict) -> None:
        """Draw a moving axis whose limits ``follow`` snaps to round values. Its ticks and
        labels are the same whenever its limits are, so the pixels of the strip it draws
        in (``_axis_strip``), drawn once on the bare background, are kept per limits and
        restored: ~0.1 ms instead of 4-6 ms of laying out and rasterising tick labels."""
        canvas = self.figure.canvas
        key = (id(axis), tuple(axis.get_view_interval()))
        if key not in axis_pixels:
            self.figure.draw_artist(axis)
            if len(axis_pixels) >= AXIS_PIXELS_KEPT:
                axis_pixels.pop(next(iter(axis_pixels)))  # the oldest
            axis_pixels[key] = canvas.copy_from_bbox(self._axis_strip(axis))
        canvas.restore_region(axis_pixels[key])

    def _axis_strip(self, axis: Axis) -> Bbox:
        """The rectangle from the axes' edge (a few pixels inside, for the tick marks) out
        to the figure's edge or the next axes, on the side of the axis' tick labels,
        widened at both ends so that the end labels and the offset text fit. It is drawn
        before the other moving artists, which may overlap it; the strips of two followed
        axes must not overlap: stopping at the next axes keeps them apart, except for
        the widening at the ends (two followed x-axes side by side need a gap wider than
        it)."""
        horizontal = isinstance(axis, XAxis)

        def along(box):  # (low, high) of a box along the axis
            return (box.x0, box.x1) if horizontal else (box.y0, box.y1)

        def across(box):  # (low, high) of a box across the axis
            return (box.y0, box.y1) if horizontal else (box.x0, box.x1)

        low, high = along(axis.axes.bbox)
        edge_low, edge_high = across(axis.axes.bbox)
        beside = [across(ax.bbox) for ax in self.figure.axes if ax is not axis.axes
                  and along(ax.bbox)[0] < high and along(ax.bbox)[1] > low]
        figure_low, figure_high = across(self.figure.bbox)
        tick = axis.majorTicks[0]  # the ticks as drawn (get_major_ticks would re-locate)
        pad = 6 * tick.label1.get_fontsize() * self.figure.dpi / 72  # points -> pixels
        inside = 8.0  # pixels into the axes: the tick marks pointing in
        if tick.label1.get_visible():  # labels below (x) or left (y) of the axes
            out = (max([figure_low] + [b_high for _, b_high in beside if b_high <= edge_low]),
                   edge_low + inside)
        else:  # above or right
            out = (edge_high - inside,
                   min([figure_high] + [b_low for b_low, _ in beside if b_low >= edge_high]))
        (x0, x1), (y0, y1) = ((low - pad, high + pad), out) if horizontal else \
            (out, (low - pad, high + pad))
        return Bbox.intersection(Bbox([[x0, y0], [x1, y1]]), self.figure.bbox)
