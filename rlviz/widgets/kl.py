"""Notebook 04's slider panels: the three KL estimators on Schulman's Gaussian example, and
on tokens sampled from the policy versus uniform random tokens (as the demo's batch has)."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..experiments import kl as exp
from ..plots.kl import GaussianEstimatorsFigure, TokenEstimatorsFigure
from ..threads import one_torch_thread
from .common import Panel, register_panel, slider

__all__ = ["gaussian_kl_panel", "token_kl_panel"]

GAUSSIAN_POOL = 10_000  # samples drawn once; the slider takes the first n of them


@lru_cache(maxsize=4)
def _gaussian_pool(size: int, seed: int) -> torch.Tensor:
    """x ~ N(0, 1), drawn once per (size, seed), float64."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(size, generator=generator, dtype=torch.float64)


@register_panel("kl_gaussian", notebook="04")
def gaussian_kl_panel(mu: float = 1.0, n_samples: int = 2000, seed: int = 0) -> Panel:
    """mu of p = N(mu, 1) and the number of samples x ~ q = N(0, 1) -> histograms of k1, k2,
    k3 (computed with ``rlviz.kl_estimate``) and their running averages, with the readout of
    bias/KL and stdev/KL next to the closed forms."""
    pool = _gaussian_pool(GAUSSIAN_POOL, seed)
    controls = {
        "mu": slider("mu (p = N(mu, 1))", mu, 0.05, 2.0, 0.05, readout_format=".2f"),
        "n_samples": slider("samples", n_samples, 10, GAUSSIAN_POOL, 10),
    }
    figure = GaussianEstimatorsFigure(exp.gaussian_panel_data(pool, mu, n_samples),
                                      title=False, max_samples=GAUSSIAN_POOL)

    def update(mu, n_samples):
        with one_torch_thread():
            data = exp.gaussian_panel_data(pool, mu, n_samples)
        figure.update(data)
        values = {"true KL = mu^2/2": data["true_kl"]}
        for kind in exp.KL_KINDS:
            stats = data["stats"][kind]
            values[f"{kind} mean"] = stats["mean"]
            values[f"{kind} bias/KL (exact)"] = stats["exact_bias_over_kl"]
            values[f"{kind} stdev/KL"] = stats["std_over_kl"]
            values[f"{kind} stdev/KL (exact)"] = stats["exact_std_over_kl"]
            values[f"{kind} share < 0"] = stats["frac_negative"]
        return values

    return Panel("Three estimators of KL[q, p] from samples x ~ q", controls, figure, update,
                 description="q = N(0, 1), p = N(mu, 1), r = p(x)/q(x). Histograms of the "
                             "per-sample values (central 99%), running averages against the "
                             "number of samples; black: true KL = mu^2/2.")


@lru_cache(maxsize=2)
def _token_experiment(vocab_size: int, n_steps: int, max_samples: int, seed: int):
    return exp.TokenKLExperiment(vocab_size, n_steps, max_samples, seed=seed)


@register_panel("kl_tokens", notebook="04")
def token_kl_panel(shift: float = 1.0, temperature: float = 1.0, samples_per_step: int = 64,
                   vocab_size: int = 1000, n_steps: int = 200, seed: int = 0) -> Panel:
    """How far the policy has drifted from the reference (a logit shift along a fixed random
    direction, and a temperature) and the samples per step -> per-step KL estimates on tokens
    sampled from the policy and on uniform random tokens, against the exact KL."""
    experiment = _token_experiment(vocab_size, n_steps, 256, seed)
    controls = {
        "shift": slider("logit shift", shift, 0.0, 3.0, 0.1, readout_format=".1f"),
        "temperature": slider("temperature", temperature, 0.5, 2.0, 0.05, readout_format=".2f"),
        "samples_per_step": slider("samples per step", samples_per_step, 1, 256, 1),
    }

    def compute(shift, temperature, samples_per_step):
        with one_torch_thread():
            result = experiment.run(shift, temperature, samples_per_step)
            return result, exp.token_panel_data(result, samples_per_step)

    result, data = compute(shift, temperature, samples_per_step)
    figure = TokenEstimatorsFigure(data, title=False)

    def update(shift, temperature, samples_per_step):
        result, data = compute(shift, temperature, samples_per_step)
        figure.update(data)
        numbers = data["numbers"]
        return {
            "exact KL(pi||ref)": result["exact_kl"],
            "exact KL(ref||pi)": result["forward_kl"],
            "KL(U||ref) - KL(U||pi)": result["kl_u_ref"] - result["kl_u_pi"],
            "k1 on policy: mean": numbers["policy_k1"]["mean"],
            "k1 on policy: stdev": numbers["policy_k1"]["std"],
            "k3 on policy: mean": numbers["policy_k3"]["mean"],
            "k3 on policy: stdev": numbers["policy_k3"]["std"],
            "k1 on uniform: mean": numbers["uniform_k1"]["mean"],
            "k1 on uniform: share of steps < 0": numbers["uniform_k1"]["frac_negative"],
            "k1 on policy: share of steps < 0": numbers["policy_k1"]["frac_negative"],
        }

    return Panel("KL estimates on tokens: sampled from the policy, or uniform (the demo)",
                 controls, figure, update,
                 description=f"A categorical policy and reference over {vocab_size} tokens; "
                             f"{n_steps} steps, each estimate the mean over one step's tokens. "
                             "Only tokens sampled from the policy estimate KL(pi||ref).")
