"""Fast redraws for slider panels: draw only what moves ("blitting").

A full Agg draw of a panel's figure takes 40-80 ms, and most of that is text: laying out
and rasterising tick labels, titles and legends. When a slider moves, almost all of that
text stays the same. A ``BlitFigure`` draws the figure once without its *moving* artists,
keeps a copy of those pixels (the *background*), and on every later render restores the
copy and draws only the moving artists on top: a few milliseconds.

The contract, for whoever writes a panel's figure:

- Everything that an update can change is in the moving list: lines, bars, images,
  texts whose string changes, and the ``Axis`` (``ax.xaxis`` / ``ax.yaxis``) of any axis
  whose limits follow the data. With a moving axis, the artists placed in data
  coordinates along it (an ``axhline(0)`` for a moving y-axis) move too.
- Everything else is static: drawn once, into the background. A static artist that the
  moving ones must not cover (a legend the curves run under) goes in ``on_top``: its
  rectangle of the background is copied back over the moving artists, as if the legend
  were opaque.
- If the limits of an axis that is *not* moving change, the background is redrawn
  (automatically). After any other change to a static artist (a legend handle's colour, a
  new tick label), call ``invalidate()``.

Moving artists are drawn over all static ones, whatever their zorder. So that curves and
shading never cover an axes' frame, the spines of every axes holding a moving artist are
redrawn with them (a few thin lines: cheap).

Until ``enable_blit`` is called a ``BlitFigure`` is a plain ``Figure``, so the static
figures in the notebooks come from the same plot functions unchanged. ``savefig`` always
makes a full draw (moving artists included): blitting happens only in ``render_png``.
See matplotlib's "Faster rendering by using blitting" tutorial for the idea.
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterable

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["PNG_COMPRESS_LEVEL", "BlitFigure", "invalidate_background", "png_from_canvas"]

PNG_COMPRESS_LEVEL = 1  # zlib level 1: faster than the default 6; files ~20% larger


def _flatten(artists) -> list[Artist]:
    """Artists, from any nesting of lists, tuples and containers (``ax.bar``'s result)."""
    if isinstance(artists, Artist):
        return [artists]
    return [artist for item in artists for artist in _flatten(item)]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_from_canvas(canvas: FigureCanvasAgg) -> bytes:
    """The pixels of an Agg canvas as PNG bytes.

    A PNG file is a signature and three chunks: IHDR (width, height, 8-bit RGB), IDAT (the
    zlib-compressed rows, each prefixed by its filter type) and IEND. Written here with
    filter type 0 ("None") on every row and zlib level 1, it takes half the time of
    Pillow's encoder (which tries five filters per row), and plots, mostly flat colour,
    compress as well. The alpha channel is dropped: the figures are opaque.
    """
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    height, width, _ = rgba.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # column 0: filter type 0
    rows[:, 1:] = rgba[:, :, :3].reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL))
            + _png_chunk(b"IEND", b""))


class BlitFigure(Figure):
    """A Figure that a panel can re-render by drawing only its moving artists.

    ``fig.enable_blit(moving, on_top)`` once, then ``fig.render_png()`` after each
    update: the first call draws everything except ``moving`` and caches it, later calls
    restore that cache and draw ``moving`` over it. The layout (constrained or not) is
    frozen at the first draw, so the axes stay put while tick labels change.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._moving: list[Artist] | None = None  # None: blitting is off
        self._on_top: list[Artist] = []
        self._background = None  # the cached pixels of the static artists
        self._on_top_regions = []  # the cached pixels of the on_top artists' rectangles
        self._background_limits = None  # the static axes limits the cache was drawn with

    @property
    def blitting(self) -> bool:
        """Whether ``enable_blit`` was called (``render_png`` blits)."""
        return self._moving is not None

    def enable_blit(self, moving: Iterable, on_top: Iterable = ()) -> None:
        """Draw the ``moving`` artists (any nesting of lists and bar containers) on every
        render; draw everything else once. ``on_top``: static artists (legends) to keep
        above the moving ones."""
        FigureCanvasAgg(self)  # attaches itself as self.canvas
        moving = _flatten(moving)
        frames = [spine for ax in self.axes if any(artist.axes is ax for artist in moving)
                  for spine in ax.spines.values()]
        # drawn in zorder, as a full draw would (axis ticks, lines, spines, then texts)
        self._moving = sorted(moving + frames, key=lambda artist: artist.get_zorder())
        for artist in self._moving:
            artist.set_animated(True)  # a full draw skips it; draw_artist draws it
        self._on_top = _flatten(on_top)
        self._background = None

    def invalidate(self) -> None:
        """Forget the cached background: the next render draws everything again."""
        self._background = None

    def _static_limits(self) -> list:
        """The figure's size and the limits of every axis that is not a moving artist:
        if one of these changes, the cached background is out of date."""
        moving = {id(artist) for artist in self._moving}
        limits = [tuple(self.bbox.size)]
        for ax in self.axes:
            if id(ax.xaxis) not in moving:
                limits.append(tuple(ax.get_xlim()))
            if id(ax.yaxis) not in moving:
                limits.append(tuple(ax.get_ylim()))
        return limits

    def render_png(self) -> bytes:
        """PNG bytes of the figure: the cached background with the moving artists drawn on
        top (the background is drawn first if there is none or it is out of date)."""
        if self._moving is None:
            raise RuntimeError("call enable_blit(moving) before render_png()")
        canvas = self.canvas
        if self._background is None or self._static_limits() != self._background_limits:
            canvas.draw()  # everything except the animated (moving) artists
            self.set_layout_engine("none")  # keep the layout of that first draw
            self._background = canvas.copy_from_bbox(self.bbox)
            renderer = canvas.get_renderer()
            self._on_top_regions = [
                canvas.copy_from_bbox(artist.get_window_extent(renderer).padded(1))
                for artist in self._on_top]
            self._background_limits = self._static_limits()
        else:
            canvas.restore_region(self._background)
        for artist in self._moving:
            self.draw_artist(artist)
        for region in self._on_top_regions:
            canvas.restore_region(region)  # back where it was copied from, over the moving
        return png_from_canvas(canvas)


def invalidate_background(fig: Figure) -> None:
    """Tell ``fig`` that a static artist changed (no-op unless it is a blitting
    ``BlitFigure``). For plot code shared by panels and static figures."""
    if isinstance(fig, BlitFigure):
        fig.invalidate()
