"""``rlviz.plots.live.LiveFigure``: a blitted render shows the same pixels as a full
redraw by matplotlib's savefig, the cached background is redrawn when it must be, and no
slider panel ever shows a stale picture."""

import io

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from rlviz.plots.live import BACKGROUNDS_KEPT, Bars, LiveFigure, nice_limits, png_from_canvas
from rlviz.widgets import PANEL_REGISTRY
from rlviz.widgets.common import render_png


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)


def full_redraw(fig: Figure) -> np.ndarray:
    """Every artist drawn by matplotlib's own savefig (moving ones included, in zorder)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return pixels(buffer.getvalue())


def assert_same_picture(blitted: np.ndarray, full: np.ndarray) -> None:
    """Equal but for a few single pixels: where a moving artist meets a static one drawn
    between the moving ones in a full draw (a tick mark at a spine), the blend differs.
    A stale or missing line or label differs in hundreds of pixels."""
    assert blitted.shape == full.shape
    differing = np.count_nonzero(np.abs(blitted - full).max(axis=2) > 3)
    assert differing <= 0.001 * blitted.shape[0] * blitted.shape[1], differing


def make_figure(moving_axis: bool = False):
    """Two axes with static text, a legend and a zero line, and a line that moves."""
    fig = LiveFigure(figsize=(5, 2.5), dpi=60)
    left, right = fig.figure.subplots(1, 2)
    (line,) = left.plot([0.2, 0.5, 0.8], [0.3, 0.6, 0.4], color="tab:red", lw=3, label="moving")
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_title("static title")
    legend = left.legend(loc="upper right")
    right.plot([0, 1], [0, 1], color="black", transform=right.transAxes)  # not on the data
    # clear of the spines: a moving artist is drawn over static ones of higher zorder
    zero = right.axhline(0.5, xmin=0.1, xmax=0.9, color="grey")
    moving = [line]
    if moving_axis:
        moving += [right.yaxis, zero]
    fig.moving, fig.on_top = moving, [legend]
    fig.enable_blit()
    return fig, line, left, right, legend


def count_background_draws(fig: LiveFigure) -> list:
    """Wrap the canvas' full draw so a test can count how often the background is drawn."""
    calls = []
    canvas = fig.figure.canvas
    draw = canvas.draw

    def counting_draw(*args, **kwargs):
        calls.append(1)
        return draw(*args, **kwargs)

    canvas.draw = counting_draw
    return calls


def test_a_blitted_render_equals_a_full_redraw_after_moving_an_artist():
    fig, line, *_ = make_figure()
    first = pixels(fig.render_png())
    line.set_ydata([0.1, 0.2, 0.15])  # stays clear of the legend, spines and text
    blitted = pixels(fig.render_png())
    assert not np.array_equal(first, blitted), "the moved line must show"
    assert_same_picture(blitted, full_redraw(fig.figure))


def test_the_background_is_drawn_once_while_only_moving_artists_change():
    fig, line, *_ = make_figure()
    calls = count_background_draws(fig)
    for top in (0.2, 0.3, 0.4):
        line.set_ydata([0.1, top, 0.1])
        fig.render_png()
    assert len(calls) == 1


def test_a_changed_static_artist_shows_only_after_invalidate():
    fig, _line, left, *_ = make_figure()
    before = pixels(fig.render_png())
    left.set_title("a different title")
    stale = pixels(fig.render_png())
    assert np.array_equal(stale, before), "static artists come from the cached background"
    fig.invalidate()
    fresh = pixels(fig.render_png())
    assert not np.array_equal(fresh, before)
    assert_same_picture(fresh, full_redraw(fig.figure))


def test_each_string_of_a_static_text_keeps_its_own_background():
    fig, _line, left, *_ = make_figure()
    title = left.title
    calls = count_background_draws(fig)
    shown = {}
    for text in ("mode a", "mode b", "mode a", "mode b"):
        fig.set_static_text(title, text)
        shown[text] = pixels(fig.render_png())
        assert_same_picture(shown[text], full_redraw(fig.figure))
    assert len(calls) == 2, "a string seen before reuses its background"
    assert not np.array_equal(shown["mode a"], shown["mode b"])


def test_new_limits_of_a_static_axis_redraw_the_background_by_themselves():
    fig, _line, left, *_ = make_figure()
    fig.render_png()
    calls = count_background_draws(fig)
    left.set_ylim(0, 2)  # its tick labels and the line's place change
    blitted = pixels(fig.render_png())
    assert len(calls) == 1
    assert_same_picture(blitted, full_redraw(fig.figure))


def test_a_moving_axis_follows_its_limits_without_a_background_redraw():
    fig, _line, _left, right, _legend = make_figure(moving_axis=True)
    fig.render_png()
    calls = count_background_draws(fig)
    right.set_ylim(0.25, 0.75)  # new tick labels; the zero line (moving too) moves
    blitted = pixels(fig.render_png())
    assert calls == []
    assert_same_picture(blitted, full_redraw(fig.figure))


def test_the_label_of_a_moving_x_axis_moves_to_the_background_unchanged():
    """After the first render the label of a moving x-axis is drawn with the static
    artists (a copy) and the axis keeps an empty label: the picture does not change."""
    fig = LiveFigure(figsize=(4, 2.5), dpi=60)
    ax = fig.figure.subplots()
    (line,) = ax.plot([0.2, 0.5, 0.8], [0.3, 0.6, 0.4], color="tab:red")
    ax.set_xlabel("per-step estimate")
    fig.moving = [line, ax.xaxis]
    fig.enable_blit()
    first = pixels(fig.render_png())  # the axis draws its label
    second = pixels(fig.render_png())  # the background draws the copy
    assert ax.xaxis.label.get_text() == ""
    assert [t.get_text() for t in fig.figure.texts] == ["per-step estimate"]
    assert np.array_equal(first, second)
    ax.set_xlim(0, 2)  # the moving axis redraws its ticks; the label stays
    assert_same_picture(pixels(fig.render_png()), full_redraw(fig.figure))


def test_a_followed_moving_axis_is_drawn_once_per_set_of_limits():
    """A moving axis whose limits ``follow`` snaps: its pixels are kept per limits, so
    going back to limits seen before restores them instead of drawing the axis, and the
    picture is still the full redraw's."""
    fig, _line, _left, right, _legend = make_figure(moving_axis=True)
    fig.render_png()  # the first render places the axis labels
    axis_draws = []
    draw = right.yaxis.draw
    right.yaxis.draw = lambda *args, **kwargs: (axis_draws.append(1), draw(*args, **kwargs))
    drawn_by_render = 0
    for low, high in [(0.1, 0.6), (-3.0, 8.0), (0.1, 0.6), (-3.0, 8.0), (0.15, 0.55)]:
        fig.follow(right, "y", low, high)
        before = len(axis_draws)
        shown = pixels(fig.render_png())
        drawn_by_render += len(axis_draws) - before
        assert_same_picture(shown, full_redraw(fig.figure))
    assert drawn_by_render == 2, "(0.1, 0.6) and (0.15, 0.55) snap to the same limits"


def test_followed_y_axes_of_side_by_side_axes_keep_their_own_pixels():
    """Two axes side by side, each with a followed moving y-axis: the right one's kept
    pixels stop at the left axes, so restoring them never brings back old labels of the
    left axis."""
    fig = LiveFigure(figsize=(5, 2.5), dpi=60)
    left, right = fig.figure.subplots(1, 2)
    lines = [ax.plot([0, 1], [0, 1], color="tab:blue")[0] for ax in (left, right)]
    fig.moving = [*lines, left.yaxis, right.yaxis]
    fig.enable_blit()
    for left_top, right_top in [(1, 1), (30, 1), (1, 1), (30, 700), (1, 700), (30, 1)]:
        lines[0].set_ydata([0, left_top])
        lines[1].set_ydata([0, right_top])
        fig.follow(left, "y", 0, left_top)
        fig.follow(right, "y", 0, right_top)
        assert_same_picture(pixels(fig.render_png()), full_redraw(fig.figure))


# ------------------------------------------------------------ limits in round steps

def is_multiple(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-9


@pytest.mark.parametrize("low, high", [(-3.5, 3.5), (0.0, 0.293), (-0.103, 0.005),
                                       (0.0, 1.0), (17.0, 123.0), (-2e-4, -1e-4),
                                       (1e6, 1e6 + 3)])
def test_nice_limits_hold_the_range_on_multiples_of_one_round_step(low, high):
    lo, hi = nice_limits(low, high, nbins=5)
    assert lo <= low and hi >= high
    # some step 1, 2, 2.5 or 5 times a power of ten has both ends on its multiples, and
    # the interval spans at most nbins + 1 of them (the outer ticks of <= 5 bins, plus
    # the one the range may stick into)
    steps = [m * 10.0 ** k for k in range(-6, 7) for m in (1, 2, 2.5, 5)]
    fitting = [s for s in steps if is_multiple(lo, s) and is_multiple(hi, s)]
    assert fitting, (lo, hi)
    assert min(round((hi - lo) / s) for s in fitting) <= 6


def test_nice_limits_of_a_point_and_bad_input():
    lo, hi = nice_limits(2.0, 2.0)
    assert lo < 2.0 < hi and np.isfinite([lo, hi]).all()
    assert nice_limits(3.0, 1.0) == nice_limits(1.0, 3.0)
    with pytest.raises(ValueError, match="finite"):
        nice_limits(0.0, float("nan"))


def make_following_figure():
    """One axes whose y-limits follow a line's data in round steps (a static axis)."""
    fig = LiveFigure(figsize=(4, 2.5), dpi=60)
    ax = fig.figure.subplots()
    (line,) = ax.plot([0, 1, 2], [0, 1, 0], color="tab:red")
    ax.set_xlim(0, 2)
    fig.moving = [line]
    fig.enable_blit()

    def show(top):
        line.set_ydata([0, top, 0])
        fig.follow(ax, "y", 0.0, top)
        return pixels(fig.render_png())
    return fig, ax, show


def test_following_limits_redraw_the_background_only_when_the_round_limits_change():
    fig, ax, show = make_following_figure()
    calls = count_background_draws(fig)
    show(0.83)
    show(0.91)  # still inside (0, 1): the same background
    assert len(calls) == 1 and ax.get_ylim() == (0.0, 1.0)
    blitted = show(1.7)  # out of (0, 1): new limits, one more background
    assert len(calls) == 2 and ax.get_ylim()[1] >= 1.7
    assert_same_picture(blitted, full_redraw(fig.figure))
    back = show(0.85)  # the first limits again: their background is still cached
    assert len(calls) == 2
    assert_same_picture(back, full_redraw(fig.figure))


def test_the_background_cache_is_bounded_and_invalidate_empties_it():
    fig, _ax, show = make_following_figure()
    calls = count_background_draws(fig)
    tops = [10.0 ** k for k in range(BACKGROUNDS_KEPT + 1)]  # each its own limits
    for top in tops:
        show(top)
    assert len(calls) == BACKGROUNDS_KEPT + 1
    show(tops[-1])  # the newest is kept ...
    assert len(calls) == BACKGROUNDS_KEPT + 1
    show(tops[0])  # ... the oldest was dropped
    assert len(calls) == BACKGROUNDS_KEPT + 2
    fig.invalidate()
    show(tops[0])
    assert len(calls) == BACKGROUNDS_KEPT + 3


def test_follow_names_a_bad_axis():
    fig, ax, _show = make_following_figure()
    with pytest.raises(ValueError, match="which"):
        fig.follow(ax, "z", 0.0, 1.0)


def test_on_top_artists_stay_over_the_moving_ones():
    fig, line, _left, _right, legend = make_figure()
    fig.render_png()
    renderer = fig.figure.canvas.get_renderer()
    x0, y0, x1, y1 = legend.get_window_extent(renderer).extents
    height = fig.figure.canvas.get_width_height()[1]
    rows = slice(int(height - y1) + 2, int(height - y0) - 2)  # image rows run top down
    cols = slice(int(x0) + 2, int(x1) - 2)
    without_line = pixels(fig.render_png())
    line.set_ydata([0.9, 0.9, 0.9])  # through the legend, which sits in the upper right
    with_line = pixels(fig.render_png())
    assert np.array_equal(with_line[rows, cols], without_line[rows, cols])
    assert not np.array_equal(with_line, without_line), "the line shows outside the legend"


def test_the_frame_stays_over_moving_shading():
    fig = LiveFigure(figsize=(3, 2), dpi=60)
    ax = fig.figure.subplots()
    span = ax.axvspan(0.2, 0.6, color="tab:blue")  # reaches the top and bottom spines
    ax.set_xlim(0, 1)
    fig.moving = [span]
    fig.enable_blit()
    fig.render_png()
    span.set_x(0.0)  # now over the left spine too
    span.set_width(0.5)
    assert_same_picture(pixels(fig.render_png()), full_redraw(fig.figure))


def test_savefig_still_draws_everything():
    fig, line, *_ = make_figure()
    fig.render_png()
    line.set_ydata([0.1, 0.2, 0.15])
    saved = full_redraw(fig.figure)
    assert_same_picture(pixels(fig.render_png()), saved)


def test_png_from_canvas_holds_the_canvas_pixels():
    fig = Figure(figsize=(2, 1), dpi=50)
    canvas = FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [1, 0], color="tab:green")
    canvas.draw()
    png = png_from_canvas(canvas)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(pixels(png), np.asarray(canvas.buffer_rgba())[:, :, :3])


def test_without_blitting_a_render_is_a_full_draw():
    fig = LiveFigure(figsize=(2, 1), dpi=50)
    (line,) = fig.figure.subplots().plot([0, 1], [0, 1], color="tab:red")
    fig.moving = [line]
    assert not fig.blitting
    first = pixels(fig.render_png())
    line.set_ydata([1, 0])  # no invalidate needed: every render draws everything
    second = pixels(fig.render_png())
    assert not np.array_equal(first, second)
    assert_same_picture(second, full_redraw(fig.figure))


def settings_of(control):
    """The ends and the middle of a slider, every option, both states of a checkbox."""
    if hasattr(control, "options"):
        return [opt[1] if isinstance(opt, tuple) else opt for opt in control.options]
    if hasattr(control, "min") and hasattr(control, "max"):
        lo, hi = control.min, control.max
        middle = lo + (hi - lo) // 2 if isinstance(control.value, int) else lo + (hi - lo) / 2
        if not isinstance(control.value, int) and getattr(control, "step", None):
            middle = lo + round((middle - lo) / control.step) * control.step
        return [hi, middle, lo]
    if isinstance(control.value, bool):
        return [not control.value, control.value]
    return []


BLITTING_PANELS = sorted(name for name, (factory, _nb) in PANEL_REGISTRY.items()
                         if name not in ("training", "clipping_run"))  # Run-button panels


@pytest.mark.parametrize("name", BLITTING_PANELS)
def test_no_panel_shows_a_stale_picture(name):
    """After every control move the panel's image equals a render from a freshly drawn
    background: nothing the update changed was left in the cached background."""
    panel = PANEL_REGISTRY[name][0]()
    fig = panel.live
    assert fig.blitting, f"{name} does not blit"
    for control_name, control in panel.controls.items():
        initial = control.value
        for value in settings_of(control) + [initial]:
            control.value = value
            shown = pixels(panel.image.value)
            fig.invalidate()
            fresh = pixels(render_png(fig))
            assert np.array_equal(shown, fresh), f"{name}: stale after {control_name}={value!r}"


@pytest.mark.parametrize("log", [False, True])
def test_bars_look_like_the_bars_of_ax_bar(log):
    """``Bars`` (one PolyCollection) draws the pixels matplotlib's ``ax.bar`` draws, on a
    linear and on a log axis (where the bars start below the axis), colours included."""
    heights, colours = [3.0, 0.5, 7.0, 1.5], ["tab:blue", "tab:red", "tab:green", "tab:red"]
    pictures = []
    for use_bars in (False, True):
        fig = Figure(figsize=(3, 2), dpi=60)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        if use_bars:
            bars = Bars(ax, range(4), 0.7, ["grey"] * 4, bottom=0.01 if log else 0.0)
            bars.set_heights(heights, colours)
        else:
            ax.bar(range(4), heights, width=0.7, color=colours)
        if log:
            ax.set_yscale("log")
        ax.set_ylim(0.1 if log else 0.0, 10.0)
        pictures.append(full_redraw(fig))
    assert np.array_equal(pictures[0], pictures[1])
