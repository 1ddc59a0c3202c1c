"""Notebook 04, section 1: Schulman's Gaussian experiment, q = N(0, 1), p = N(mu, 1)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...losses.checks import check_int, check_number, check_one_of
from ...losses.kl import KL_KINDS, kl_estimate

F64 = torch.float64

# --------------------------------------------------------------------------------------
# 1. Schulman's Gaussian experiment: q = N(0, 1), p = N(mu, 1)
# --------------------------------------------------------------------------------------

SCHULMAN_MUS = (0.1, 1.0)

# Schulman 2020, "Approximating KL Divergence" (joschu.net/blog/kl-approx.html): his table of
# (bias / true KL, stdev / true KL) for q = N(0, 1), p = N(0.1, 1) (true KL 0.005) and
# p = N(1, 1) (true KL 0.5), from a Monte-Carlo run, printed to the digits shown here.
SCHULMAN_PUBLISHED = {
    0.1: {"k1": (0.0, 20.0), "k2": (0.002, 1.42), "k3": (0.0, 1.42)},
    1.0: {"k1": (0.0, 2.0), "k2": (0.25, 1.73), "k3": (0.0, 1.7)},
}


def _check_mu(mu) -> float:
    mu = check_number(mu, "mu")
    if mu == 0.0:
        raise ValueError("mu must be non-zero (the true KL mu^2/2 divides), got 0")
    return mu


def gaussian_log_probs(x: torch.Tensor, mu: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log q(x), log p(x))`` for q = N(0, 1) and p = N(mu, 1); x of any shape.

    Their difference is log r = log p - log q = mu x - mu^2 / 2.
    """
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)
    log_q = -0.5 * x**2 - half_log_2pi
    log_p = -0.5 * (x - mu) ** 2 - half_log_2pi
    return log_q, log_p


def gaussian_estimates(x: torch.Tensor, mu: float) -> dict[str, torch.Tensor]:
    """k1, k2, k3 on samples x ~ q = N(0, 1), computed with ``rlviz.kl_estimate``."""
    log_q, log_p = gaussian_log_probs(x, mu)
    return {kind: kl_estimate(log_q, log_p, kind) for kind in KL_KINDS}


def _expm1_minus_x(v: float) -> float:
    """e^v - 1 - v without cancellation for small v (series below 1e-3)."""
    if abs(v) < 1e-3:
        return v * v / 2 + v**3 / 6 + v**4 / 24 + v**5 / 120
    return math.expm1(v) - v


def gaussian_closed_form(mu: float) -> dict:
    """Exact mean, stdev, bias/KL and stdev/KL of k1, k2, k3 for q = N(0,1), p = N(mu,1).

    With x ~ N(0, 1), s = log r = mu x - mu^2/2 ~ N(-v/2, v), v = mu^2; true KL = v / 2.

    * k1 = -s: mean v/2 (unbiased), stdev |mu|, so stdev/KL = 2 / |mu|.
    * k2 = s^2/2: E[s^2] = v + v^2/4, so bias = v^2/8, bias/KL = mu^2/4;
      Var(s^2) = 2 v^2 + 4 (v/2)^2 v, so stdev/KL = sqrt(2 + mu^2).
    * k3 = e^s - 1 - s: E[e^s] = 1, so unbiased; Var(e^s) = e^v - 1, Var(s) = v and
      Cov(e^s, s) = v E[e^s] = v (Stein's lemma), so Var(k3) = e^v - 1 - v and
      stdev/KL = sqrt(e^{mu^2} - 1 - mu^2) / (mu^2 / 2).
    """
    mu = _check_mu(mu)
    v = mu * mu
    true_kl = v / 2
    k2_std = math.sqrt(v * v / 2 + v**3 / 4)
    k3_std = math.sqrt(_expm1_minus_x(v))
    return {
        "true_kl": true_kl,
        "k1": {"mean": true_kl, "std": abs(mu), "bias_over_kl": 0.0,
               "std_over_kl": 2.0 / abs(mu)},
        "k2": {"mean": true_kl + v * v / 8, "std": k2_std, "bias_over_kl": v / 4,
               "std_over_kl": math.sqrt(2.0 + v)},
        "k3": {"mean": true_kl, "std": k3_std, "bias_over_kl": 0.0,
               "std_over_kl": k3_std / true_kl},
    }


def gaussian_estimator_moments(mu: float, kind: str, n_nodes: int = 160) -> tuple[float, ...]:
    """``(mean, variance, 4th central moment)`` of estimator ``kind`` under x ~ N(0, 1), by
    Gauss-Hermite quadrature (numerically exact here, no derivation involved).

    Used for the standard errors of the Monte-Carlo table: SE(mean) = sqrt(var / N) and,
    by the delta method, SE(stdev) = sqrt((m4 - var^2) / (4 var N)). The sample m4 of k3 at
    mu = 1 is dominated by rare huge values, hence the exact moments.
    """
    mu = _check_mu(mu)
    check_one_of(kind, "kind", KL_KINDS)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # weight exp(-x^2 / 2)
    weights = weights / weights.sum()
    s = mu * nodes - mu * mu / 2  # log r at the nodes
    values = {"k1": -s, "k2": 0.5 * s * s, "k3": np.expm1(s) - s}[kind]
    mean = float(np.sum(weights * values))
    centred = values - mean
    var = float(np.sum(weights * centred**2))
    m4 = float(np.sum(weights * centred**4))
    return mean, var, m4


def schulman_table(mus=SCHULMAN_MUS, n_samples: int = 2_000_000, seed: int = 0) -> list[dict]:
    """Schulman's experiment: bias/KL and stdev/KL of k1, k2, k3 from ``n_samples`` draws
    x ~ N(0, 1) (one seeded pool, float64), next to the closed forms and the published values.

    One row per (mu, kind) with keys: mu, kind, true_kl, bias_mc, bias_se, bias_exact,
    bias_published, std_mc, std_se, std_exact, std_published, bias_ok, std_ok
    (``*_ok``: |MC - exact| < 4 standard errors). Published values are None for other mu.
    """
    check_int(n_samples, "n_samples", low=2)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_samples, generator=generator, dtype=F64)  # (N,)
    rows = []
    for mu in mus:
        exact = gaussian_closed_form(mu)
        true_kl = exact["true_kl"]
        estimates = gaussian_estimates(x, mu)
        published = SCHULMAN_PUBLISHED.get(float(mu), {})
        for kind in KL_KINDS:
            values = estimates[kind]  # (N,)
            _, var, m4 = gaussian_estimator_moments(mu, kind)
            bias_mc = (values.mean().item() - true_kl) / true_kl
            std_mc = values.std().item() / true_kl
            bias_se = math.sqrt(var / n_samples) / true_kl
            std_se = math.sqrt((m4 - var * var) / (4 * var * n_samples)) / true_kl
            pub = published.get(kind, (None, None))
            rows.append({
                "mu": float(mu), "kind": kind, "true_kl": true_kl,
                "bias_mc": bias_mc, "bias_se": bias_se,
                "bias_exact": exact[kind]["bias_over_kl"], "bias_published": pub[0],
                "std_mc": std_mc, "std_se": std_se,
                "std_exact": exact[kind]["std_over_kl"], "std_published": pub[1],
                "bias_ok": abs(bias_mc - exact[kind]["bias_over_kl"]) < 4 * bias_se,
                "std_ok": abs(std_mc - exact[kind]["std_over_kl"]) < 4 * std_se,
            })
    return rows


def _fmt_pub(value) -> str:
    return "-" if value is None else f"{value:g}"


def format_schulman_table(rows: list[dict]) -> str:
    """The table as fixed-precision text: MC +- SE | exact | published, and the 4-SE checks."""
    head = (f"{'mu':>4} {'est':>3} | {'bias/KL  MC +- SE':>19} {'exact':>7} {'Schulman':>8} | "
            f"{'stdev/KL  MC +- SE':>19} {'exact':>7} {'Schulman':>8} | within 4 SE")
    lines = [head, "-" * len(head)]
    for row in rows:
        bias = f"{row['bias_mc']:+.4f} +- {row['bias_se']:.4f}"
        std = f"{row['std_mc']:.3f} +- {row['std_se']:.3f}"
        lines.append(
            f"{row['mu']:>4.1f} {row['kind']:>3} | {bias:>19} {row['bias_exact']:>7.4f} "
            f"{_fmt_pub(row['bias_published']):>8} | {std:>19} {row['std_exact']:>7.3f} "
            f"{_fmt_pub(row['std_published']):>8} | "
            f"{str(row['bias_ok']):>5} {str(row['std_ok']):>5}"
        )
    return "\n".join(lines)


def running_mean(values: torch.Tensor) -> torch.Tensor:
    """Running average: out[n] = mean(values[: n + 1]), (N,)."""
    counts = torch.arange(1, values.shape[-1] + 1, dtype=values.dtype)  # (N,)
    return values.cumsum(-1) / counts


def histogram(values: torch.Tensor, low: float, high: float, bins: int) -> dict:
    """Density histogram of ``values`` on [low, high] (values outside are left out)."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    counts = torch.histc(values.to(F64), bins=bins, min=low, max=high)  # (bins,)
    width = (high - low) / bins
    return {"edges": np.linspace(low, high, bins + 1),
            "density": (counts / (values.numel() * width)).numpy()}


def gaussian_panel_data(x_pool: torch.Tensor, mu: float, n_samples: int, bins: int = 60,
                        n_points: int = 150) -> dict:
    """What the Gaussian panel shows for the first ``n_samples`` draws of ``x_pool``:
    histograms of k1, k2, k3 on common bins (covering each one's central 99 %), running
    averages at ~``n_points`` log-spaced sample counts, and per-estimator stats next to the
    closed forms."""
    n = check_int(int(n_samples), "n_samples", 2, x_pool.numel())
    exact = gaussian_closed_form(mu)
    true_kl = exact["true_kl"]
    estimates = gaussian_estimates(x_pool[:n], mu)
    levels = torch.tensor([0.005, 0.995], dtype=F64)
    low, high = 0.0, 1.5 * true_kl
    for values in estimates.values():
        q_low, q_high = torch.quantile(values, levels).tolist()
        low, high = min(low, q_low), max(high, q_high)
    positions = np.unique(np.round(np.logspace(0, math.log10(n), n_points)).astype(int)) - 1
    positions_t = torch.from_numpy(positions)
    hist, stats, running = {}, {}, {}
    for kind in KL_KINDS:
        values = estimates[kind]  # (n,)
        hist[kind] = histogram(values, low, high, bins)
        mean, std = values.mean().item(), values.std().item()
        stats[kind] = {
            "mean": mean, "bias_over_kl": (mean - true_kl) / true_kl, "std_over_kl": std / true_kl,
            "frac_negative": (values < 0).double().mean().item(),
            "exact_bias_over_kl": exact[kind]["bias_over_kl"],
            "exact_std_over_kl": exact[kind]["std_over_kl"],
        }
        running[kind] = (positions + 1, running_mean(values)[positions_t].numpy())
    return {"mu": float(mu), "n_samples": n, "true_kl": true_kl, "hist": hist, "stats": stats,
            "running": running}
