"""Panels of notebook 03: the clipped surrogate of one token, and clipping on a real batch."""

from __future__ import annotations

import ipywidgets as widgets

from ..experiments.clipping import ClippingExperiment, objective_gradients, surrogate_curves
from ..plots.clipping import ClippingRunFigure, SurrogateFigure
from .common import Panel, register_panel, slider

__all__ = ["clipping_panel", "clipping_run_panel"]

RHO_MAX = 4.0  # the rho axis runs to 4; the dual-clip slider c stops at 3.5 so its region shows
PROBES = (0.5, 1.0, 1.5, 2.5, 3.8)  # ratios whose "gets a gradient?" the readout lists


def _labelled(widget_class, **kwargs):
    return widget_class(style={"description_width": "initial"}, **kwargs)


@register_panel("clipping", notebook="03")
def clipping_panel() -> Panel:
    """eps_low, eps_high, dual clip c, sign and size of A -> one token's clipped objective
    and its gradient w.r.t. log pi as functions of rho, flat regions shaded (read off the
    autograd gradient of ``rlviz.clipped_surrogate``)."""
    drawing = SurrogateFigure(rho_max=RHO_MAX)
    controls = {
        "eps_low": slider("ε_low", 0.2, 0.05, 0.5, 0.01, readout_format=".2f"),
        "eps_high": slider("ε_high (DAPO: 0.28)", 0.2, 0.05, 0.5, 0.01, readout_format=".2f"),
        "dual": _labelled(widgets.Checkbox, value=False, description="dual clip (A < 0)"),
        "c": slider("dual-clip c", 3.0, 1.5, 3.5, 0.1, readout_format=".1f"),
        "sign": _labelled(widgets.ToggleButtons, options=[("A > 0", 1.0), ("A < 0", -1.0)],
                          value=1.0, description="advantage"),
        "size": slider("|A|", 1.0, 0.1, 2.0, 0.1, readout_format=".1f"),
    }

    def update(eps_low, eps_high, dual, c, sign, size):
        advantage = float(sign) * float(size)
        dual_clip = float(c) if dual else None
        curves = surrogate_curves(advantage, eps_low, eps_high, dual_clip, rho_max=RHO_MAX,
                                  points=2000)  # grid step 0.002
        drawing.update(curves, advantage, eps_low, eps_high, dual_clip)
        flat = "; ".join(f"{low:.2f}..{high:.2f}" for low, high in curves["flat"]) or "none"
        values = {"flat (zero-gradient) ρ ranges": flat}
        gradients = objective_gradients(PROBES, advantage, eps_low, eps_high, dual_clip)
        for probe, gradient in zip(PROBES, gradients, strict=True):
            values[f"gradient at ρ = {probe}"] = gradient
        values["clip range"] = f"[{1 - eps_low:.2f}, {1 + eps_high:.2f}]"
        return values

    return Panel("The clipped surrogate of one token", controls, drawing, update,
                 description="Loss -min(ρA, clip(ρ, 1-ε_low, 1+ε_high)A); with dual clip "
                             "also capped at -cA for A < 0. Grey: the gradient is exactly 0.")


@register_panel("clipping_run", notebook="03")
def clipping_run_panel(experiment: ClippingExperiment | None = None) -> Panel:
    """Inner epochs, learning rate, eps_low, eps_high, dual clip -> a small policy trained
    on one sampled batch (``ClippingExperiment``): clipfrac per epoch, the distribution of
    rho at the last epoch, and which tokens got no gradient. Training takes a few hundred
    ms, so the panel has a Run button."""
    experiment = ClippingExperiment() if experiment is None else experiment
    batch, width = experiment.mask.shape
    drawing = ClippingRunFigure(max_epochs=10, batch=batch,
                                response_len=width - experiment.cfg.input_len)
    controls = {
        "epochs": slider("inner epochs", 6, 1, 10, 1),
        "lr": _labelled(widgets.Dropdown, options=[1e-3, 3e-3, 1e-2, 3e-2], value=1e-2,
                        description="Adam lr"),
        "eps_low": slider("ε_low", 0.2, 0.05, 0.5, 0.01, readout_format=".2f"),
        "eps_high": slider("ε_high", 0.2, 0.05, 0.5, 0.01, readout_format=".2f"),
        "dual": _labelled(widgets.Checkbox, value=False, description="dual clip c = 3"),
    }

    def update(epochs, lr, eps_low, eps_high, dual):
        dual_clip = 3.0 if dual else None
        records = experiment.run(epochs=int(epochs), lr=float(lr), eps_low=eps_low,
                                 eps_high=eps_high, dual_clip=dual_clip)
        data = experiment.summary(records, dual_clip)
        drawing.update(data["clipfracs"], data["ratios"], data["positive"], data["states"],
                       eps_low, eps_high)
        metrics = data["metrics"]
        return {
            "clipfrac, last epoch": metrics["clipfrac"],
            "dual-clipped share": metrics["clipfrac_dual"],
            "approx_kl, last epoch": metrics["approx_kl"],
            "mean ρ": metrics["ratio_mean"],
            "max ρ": metrics["ratio_max"],
            "loss, last epoch": records[-1].loss,
        }

    return Panel("Clipping on a real batch", controls, drawing, update, run_button=True,
                 description="A vocabulary-64 policy, 32 responses of 16 sampled tokens, group "
                             "advantages; Adam on the same batch with pi_old frozen.")
