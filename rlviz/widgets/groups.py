"""Notebook 05's slider panels: the std bias of group advantages, and the length bias of
the four aggregation modes."""

from __future__ import annotations

import ipywidgets as widgets

from ..experiments import groups as exp
from ..plots.groups import AbsAdvantageFigure, TokenWeightsFigure
from .common import Panel, register_panel, slider

__all__ = ["group_std_bias_panel", "length_bias_panel"]

EPS_OPTIONS = [("0", 0.0), ("1e-8", 1e-8), ("1e-6 (verl)", 1e-6), ("1e-4 (TRL)", 1e-4),
               ("0.01", 0.01), ("0.1", 0.1), ("0.5", 0.5), ("1", 1.0)]


@register_panel("group_std_bias", notebook="05")
def group_std_bias_panel(group_size: int = 8, p: float = 0.1, eps: float = 1e-6,
                         scale: str = "group") -> Panel:
    """G, p, eps and the scale mode -> E[sum_i |A_i|] against p (closed form, dots sampled
    through ``rlviz.group_advantages``), relative to a p = 0.5 prompt, and the share of
    groups with no signal."""
    controls = {
        "group_size": slider("G (responses per prompt)", group_size, 2, 32, 1),
        "p": slider("success rate p", p, 0.0, 1.0, 0.01, readout_format=".2f"),
        "eps": widgets.SelectionSlider(options=EPS_OPTIONS, value=eps, description="eps",
                                       style={"description_width": "initial"},
                                       layout=widgets.Layout(width="22em")),
        "scale": widgets.Dropdown(options=["group", "batch", "none"], value=scale,
                                  description="scale"),
    }
    figure = AbsAdvantageFigure(exp.std_bias_data(group_size, p, eps, scale))

    def update(group_size, p, eps, scale):
        data = exp.std_bias_data(group_size, p, eps, scale)
        figure.update(data)
        per_k_one = exp.abs_advantage_sum_given_k(1, group_size, scale, eps)
        per_k_half = exp.abs_advantage_sum_given_k(group_size // 2, group_size, scale, eps)
        value = exp.expected_abs_advantage(p, group_size, scale, eps)
        at_half = exp.expected_abs_advantage(0.5, group_size, scale, eps)
        return {
            "E sum|A| at p": value,
            "relative to p = 0.5": value / at_half,
            "no-signal share": exp.share_all_equal(p, group_size),
            "sum|A| with k = 1": per_k_one,
            "sum|A| with k = G//2": per_k_half,
            "k = 1 relative to k = G//2": per_k_one / per_k_half,
        }

    return Panel("Std bias: how much signal a prompt of success rate p gets", controls,
                 figure, update,
                 description="Lines: closed form averaged over k ~ Binomial(G, p); dots: "
                             "sampled through rlviz.group_advantages. 'batch' assumes a batch "
                             "whose prompts' success rates spread over [0, 1] (reward std 0.5).")


@register_panel("aggregation_length_bias", notebook="05")
def length_bias_panel(lengths=(5, 20, 5, 30), correct=(True, True, False, False),
                      mode: str = "seq-mean-token-mean", scale: str = "group",
                      max_len: int = 32) -> Panel:
    """Lengths and rewards of a group of four responses -> the gradient weight of every
    token (w_it = -d loss / d logp_it by autograd) under the chosen aggregation mode, and
    each response's per-token and total weight under all four modes."""
    if len(lengths) != 4 or len(correct) != 4:
        raise ValueError("length_bias_panel takes four lengths and four correct flags, got "
                         f"{len(lengths)} and {len(correct)}")
    controls = {}
    for i, (length, right) in enumerate(zip(lengths, correct)):
        controls[f"length_{i + 1}"] = slider(f"length of response {i + 1}", length, 0,
                                             max_len, 1)
        controls[f"correct_{i + 1}"] = widgets.Checkbox(value=right,
                                                        description=f"response {i + 1} right")
    controls["mode"] = widgets.Dropdown(options=list(exp.AGG_MODES), value=mode,
                                        description="loss_agg_mode",
                                        style={"description_width": "initial"})
    controls["scale"] = widgets.Dropdown(options=["group", "none"], value=scale,
                                         description="scale")

    def read(params):
        group_lengths = [params[f"length_{i + 1}"] for i in range(4)]
        group_correct = [params[f"correct_{i + 1}"] for i in range(4)]
        return group_lengths, group_correct

    first = exp.length_bias_data(list(lengths), list(correct), mode, scale, max_len)
    figure = TokenWeightsFigure(first)

    def update(**params):
        group_lengths, group_correct = read(params)
        data = exp.length_bias_data(group_lengths, group_correct, params["mode"],
                                    params["scale"], max_len)
        figure.update(data)
        chosen = params["mode"]
        values = {}
        for i in range(4):
            values[f"per-token weight {i + 1}"] = data["per_token"][chosen][i]
        for i in range(4):
            values[f"total weight {i + 1}"] = data["totals"][chosen][i]
        return values

    return Panel("Length bias: the gradient weight of every token", controls, figure,
                 update,
                 description="w_it = -d loss / d logp_it at rho = 1, by autograd through "
                             f"rlviz.aggregate (max_len = {max_len}). Bars: each mode scaled "
                             "so its largest |value| is 1.")
