"""Notebook 05's panels and figures: slider values -> numbers checked against independent
plain-Python computations; the cached-background (blit) render matches a full render."""

import io
import math
import statistics

import numpy as np
import pytest
from PIL import Image
from references import loop_expected_abs_advantage

from rlviz.experiments import groups as ex
from rlviz.plots import groups as plots
from rlviz.widgets import PANEL_REGISTRY, group_std_bias_panel, length_bias_panel
from rlviz.widgets.common import render_png

MODES = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")


def test_panels_are_registered_for_notebook_05():
    assert PANEL_REGISTRY["group_std_bias"][1] == "05"
    assert PANEL_REGISTRY["aggregation_length_bias"][1] == "05"


@pytest.mark.parametrize("scale", ["group", "none", "batch"])
def test_std_bias_panel_numbers(scale):
    panel = group_std_bias_panel()
    for group_size, p, eps in [(5, 0.2, 1e-6), (8, 0.5, 0.1), (2, 0.9, 0.0), (6, 0.0, 1e-4)]:
        panel.set(group_size=group_size, p=p, eps=eps, scale=scale)
        values = panel.values
        expected = loop_expected_abs_advantage(p, group_size, scale, eps)
        half = loop_expected_abs_advantage(0.5, group_size, scale, eps)
        assert values["E sum|A| at p"] == pytest.approx(expected, abs=1e-10)
        assert values["relative to p = 0.5"] == pytest.approx(expected / half, abs=1e-10)
        assert values["no-signal share"] == pytest.approx(p**group_size + (1 - p) ** group_size)
        one = [1.0] + [0.0] * (group_size - 1)
        one_sum = sum(abs(r - 1 / group_size) for r in one)
        if scale == "group":
            one_sum /= statistics.stdev(one) + eps
        elif scale == "batch":
            one_sum /= 0.5 + eps
        assert values["sum|A| with k = 1"] == pytest.approx(one_sum)
    assert panel.errors == []


def test_std_bias_panel_slider_moves_the_figure():
    panel = group_std_bias_panel()
    first = panel.image.value
    panel.controls["p"].value = 0.7
    assert panel.image.value != first
    line = panel.live.vlines[0]
    assert list(line.get_xdata()) == [0.7, 0.7]
    group_line = panel.live.lines["group"]
    curve = ex.abs_advantage_curve(ex.P_GRID, 8, "group", 1e-6).numpy() / 8
    assert np.allclose(group_line.get_ydata(), curve)


@pytest.mark.parametrize("mode", MODES)
def test_length_bias_panel_numbers(mode):
    panel = length_bias_panel()
    lengths, correct = [3, 12, 7, 25], [True, False, False, True]
    settings = {f"length_{i + 1}": n for i, n in enumerate(lengths)}
    settings.update({f"correct_{i + 1}": c for i, c in enumerate(correct)})
    panel.set(mode=mode, scale="group", **settings)
    rewards = [1.0 if c else 0.0 for c in correct]
    mean, std = sum(rewards) / 4, statistics.stdev(rewards)
    adv = [(r - mean) / (std + 1e-6) for r in rewards]
    for i, (a, n) in enumerate(zip(adv, lengths)):
        per_token = {"seq-mean-token-mean": a / (4 * n), "token-mean": a / sum(lengths),
                     "seq-mean-token-sum": a / 4, "seq-mean-token-sum-norm": a / (4 * 32)}[mode]
        assert panel.values[f"per-token weight {i + 1}"] == pytest.approx(per_token, abs=1e-12)
        assert panel.values[f"total weight {i + 1}"] == pytest.approx(per_token * n, abs=1e-12)


def test_length_bias_panel_no_std_and_empty_response():
    panel = length_bias_panel()
    panel.set(scale="none", length_1=0, correct_1=True, correct_2=False, correct_3=False,
              correct_4=False, mode="seq-mean-token-mean")
    # rewards [1, 0, 0, 0], lengths [0, 20, 5, 30]: A = [0.75, -0.25, -0.25, -0.25];
    # the empty response is not counted, so the mean is over the 3 others
    assert panel.values["per-token weight 1"] == 0.0
    assert panel.values["total weight 2"] == pytest.approx(-0.25 / 3)
    assert panel.values["per-token weight 4"] == pytest.approx(-0.25 / (3 * 30))
    assert all(math.isfinite(v) for v in panel.values.values())


def test_length_bias_panel_all_equal_rewards_give_zero():
    panel = length_bias_panel()
    panel.set(correct_1=True, correct_2=True, correct_3=True, correct_4=True)
    assert all(v == 0.0 for v in panel.values.values())


def test_length_bias_panel_needs_four_responses():
    with pytest.raises(ValueError, match="four lengths"):
        length_bias_panel(lengths=(1, 2, 3))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)


@pytest.mark.parametrize("factory", [group_std_bias_panel, length_bias_panel])
def test_blit_render_matches_a_full_render(factory):
    panel = factory()
    control = next(iter(panel.controls.values()))
    control.value = control.max if hasattr(control, "max") else control.value
    blitted = _pixels(panel.image.value)
    full = _pixels(render_png(panel.figure))  # a plain Figure: matplotlib's savefig
    assert blitted.shape == full.shape
    differing = np.mean(np.abs(blitted - full).max(axis=2) > 40)
    assert differing < 0.02  # only draw order (legend over curves) may differ


def test_static_figures_build():
    p_grid = ex.P_GRID
    curves = {s: ex.abs_advantage_curve(p_grid, 8, s).tolist() for s in ("group", "none")}
    bias = ex.length_bias_summary([5, 20, 5, 30], [1, 1, 0, 0])
    figures = [
        plots.plot_overview(p_grid, curves, ["a", "b", "c", "d"],
                            {m: v["per_token"] for m, v in bias.items()}, 8),
        plots.plot_abs_advantage_per_k(8, {s: [ex.abs_advantage_sum_given_k(k, 8, s)
                                               for k in range(9)] for s in ("group", "none")}),
        plots.plot_abs_advantage(ex.std_bias_data(8, 0.1, 1e-6, "group",
                                                  sampled_scales=("group", "none"),
                                                  num_batches=50)),
        plots.plot_token_weights(ex.length_bias_data([5, 20, 5, 30], [1, 1, 0, 0],
                                                     "token-mean", "group")),
        plots.plot_no_signal(p_grid, {4: [ex.share_all_equal(p, 4) for p in p_grid]},
                             [0.5], {4: [0.12]}),
    ]
    for fig in figures:
        assert render_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_std_bias_middle_panel_has_a_legend_and_batch_is_dashed():
    data = ex.std_bias_data(8, 0.1, 1e-6, "group", sampled_scales=("group",), num_batches=20)
    live = plots.AbsAdvantageFigure(data)
    middle = live.figure.axes[1]
    legend = middle.get_legend()
    assert legend is not None and len(legend.get_texts()) == 3
    lines = {line.get_label(): line for line in middle.get_lines()}
    batch = next(line for label, line in lines.items() if label.startswith("/ batch std"))
    none = lines["no std (Dr. GRPO)"]
    assert batch.get_linestyle() == "--"
    # relative to p = 0.5 the two curves coincide, which is why one of them is dashed
    assert np.allclose(batch.get_ydata(), none.get_ydata())
    assert legend in live.on_top  # kept over the curves when a panel blits


def test_bar_collection_draws_the_bars_of_ax_bar():
    """The live figure's bars (one PolyCollection) look exactly like matplotlib's own
    ``ax.bar`` bars of the static figures, each mode scaled to a largest |value| of 1."""
    from matplotlib.figure import Figure

    labels = ["a", "b", "c"]
    values = {"token-mean": [0.5, -2.0, 1.0], "seq-mean-token-sum": [0.0, 0.0, 0.0],
              "seq-mean-token-mean": [3.0, 1.5, -0.75]}
    pictures = []
    for use_collection in (False, True):
        fig = Figure(figsize=(3, 2), dpi=60)
        ax = fig.subplots()
        if use_collection:
            bars = plots.GroupedBarCollection(ax, labels, list(values))
            bars.set_values(values)
            # mode by mode, response by response; by hand: each mode / its largest |value|
            tops = [path.vertices[1, 1] for path in bars.collection.get_paths()]
            assert tops == pytest.approx([0.25, -1.0, 0.5, 0.0, 0.0, 0.0, 1.0, 0.5, -0.25])
        else:
            plots._grouped_bars(ax, labels, values, normalise=True)
        pictures.append(_pixels(render_png(fig)))
    assert np.array_equal(pictures[0], pictures[1])
