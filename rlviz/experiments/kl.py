"""Notebook 04's computations: the k1 / k2 / k3 KL estimators, where the KL goes, and what
the demo's ``grpo_kl`` measures. Pure torch, numpy and math; figures live in ``rlviz.plots.kl``.

Conventions (``../shared/reference/formulas.md``, Schulman 2020 "Approximating KL
Divergence"): samples x ~ q, ratio r = p(x) / q(x), target KL[q, p]. In LLM RL q = pi_theta
(the sampler) and p = pi_ref, so ``rlviz.kl_estimate(logp=log q, ref_logp=log p, kind)``:

    k1 = -log r                (unbiased, high variance, < 0 on some samples)
    k2 = (log r)^2 / 2         (biased, low variance, >= 0)
    k3 = (r - 1) - log r       (unbiased, low variance, >= 0 because log r <= r - 1)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import Config, set_seed
from ..demo_training import make_fake_batch, train_step
from ..losses.advantages import group_advantages
from ..losses.aggregation import aggregate
from ..losses.critic import gae
from ..losses.demo import grpo_kl, grpo_loss
from ..losses.kl import KL_KINDS, kl_estimate
from ..losses.surrogate import clipped_surrogate
from ..masks import compute_mask, mask_from_lengths
from ..models import TinyPolicy
from ..threads import one_torch_thread

__all__ = [
    "KL_KINDS",
    "SCHULMAN_MUS",
    "SCHULMAN_PUBLISHED",
    "AdaptiveKLController",
    "TokenKLExperiment",
    "adaptive_kl_run",
    "beta_for_target_kl",
    "beta_sweep",
    "demo_kl_summary",
    "demo_kl_trace",
    "exact_kl",
    "expected_gradients",
    "format_schulman_table",
    "forward_kl_optimum",
    "gaussian_closed_form",
    "gaussian_estimates",
    "gaussian_estimator_moments",
    "gaussian_log_probs",
    "gaussian_panel_data",
    "gradient_agreement",
    "kl_placement_batch",
    "kl_placement_gradient_checks",
    "reverse_kl_optimum",
    "running_mean",
    "sample_from_logp",
    "schulman_table",
    "token_distributions",
    "token_experiment",
    "token_panel_data",
    "toy_bandit",
    "train_toy_policy",
    "uniform_expectations",
]

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
    if isinstance(mu, bool) or not isinstance(mu, (int, float)):
        raise TypeError(f"mu must be a number, got {type(mu).__name__}")
    mu = float(mu)
    if not math.isfinite(mu) or mu == 0.0:
        raise ValueError(f"mu must be finite and non-zero (the true KL mu^2/2 divides), got {mu}")
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
    if kind not in KL_KINDS:
        raise ValueError(f"Unknown kind: {kind!r}. Valid values: {', '.join(map(repr, KL_KINDS))}")
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
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an int >= 2, got {n_samples!r}")
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


def _histogram(values: torch.Tensor, low: float, high: float, bins: int) -> dict:
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
    n = int(n_samples)
    if not 2 <= n <= x_pool.numel():
        raise ValueError(f"n_samples must be in [2, {x_pool.numel()}], got {n}")
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
        hist[kind] = _histogram(values, low, high, bins)
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


# --------------------------------------------------------------------------------------
# 2. On tokens: a categorical policy and reference over a vocabulary
# --------------------------------------------------------------------------------------

def exact_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) = sum_x p(x) (log p(x) - log q(x)) over the last dim (the vocabulary)."""
    return (logp.exp() * (logp - logq)).sum(-1)


def token_distributions(vocab_size: int = 1000, shift: float = 1.0, temperature: float = 1.0,
                        ref_scale: float = 2.0, seed: int = 0
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(policy_logp, ref_logp)``, both (V,) float64 log-probabilities.

    ref logits z = ref_scale * N(0, 1) per token; policy logits = (z + shift * g) / temperature
    with a fixed random direction g ~ N(0, 1). shift = 0 and temperature = 1 give policy = ref;
    shift moves probability mass around, temperature < 1 sharpens (as RL fine-tuning tends to).
    """
    ref_logits, direction = _token_logits(vocab_size, ref_scale, seed)
    return _drifted(ref_logits, direction, shift, temperature)


def _token_logits(vocab_size: int, ref_scale: float, seed: int):
    """Reference logits (V,) and the drift direction (V,), seeded."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
    generator = torch.Generator().manual_seed(seed)
    ref_logits = ref_scale * torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    direction = torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    return ref_logits, direction


def _drifted(ref_logits, direction, shift, temperature):
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    policy_logits = (ref_logits + shift * direction) / temperature  # (V,)
    return policy_logits.log_softmax(-1), ref_logits.log_softmax(-1)


def sample_from_logp(logp: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Tokens x ~ exp(logp) (V,) by inverse CDF from ``uniforms`` in [0, 1) of any shape."""
    cdf = logp.exp().cumsum(-1)  # (V,)
    tokens = torch.searchsorted(cdf, uniforms.contiguous())  # same shape as uniforms
    return tokens.clamp_max(logp.shape[-1] - 1)  # guards u > cdf[-1] after rounding


def uniform_expectations(policy_logp: torch.Tensor, ref_logp: torch.Tensor) -> dict[str, float]:
    """Exact expectation of k1, k2, k3 over tokens drawn uniformly from the vocabulary.

    E_U[k1] = mean_x (log pi(x) - log ref(x)) = KL(U || ref) - KL(U || pi): a difference
    of two KLs, of either sign, not KL(pi || ref).
    """
    return {kind: kl_estimate(policy_logp, ref_logp, kind).mean().item() for kind in KL_KINDS}


class TokenKLExperiment:
    """Estimators on tokens sampled from the policy vs on uniform random tokens.

    The random numbers are drawn once (``n_steps`` x ``max_samples`` uniforms for inverse-CDF
    sampling from the policy, and as many uniform token ids), so ``run`` only recomputes
    the distributions and the estimates: fast enough for a slider.
    """

    def __init__(self, vocab_size: int = 1000, n_steps: int = 200, max_samples: int = 256,
                 ref_scale: float = 2.0, seed: int = 0):
        self.vocab_size = vocab_size
        self.n_steps = n_steps
        self.max_samples = max_samples
        self.ref_scale = ref_scale
        self.seed = seed
        self.ref_logits, self.direction = _token_logits(vocab_size, ref_scale, seed)
        generator = torch.Generator().manual_seed(seed + 1)
        self.uniforms = torch.rand(n_steps, max_samples, generator=generator, dtype=F64)
        self.uniform_tokens = torch.randint(0, vocab_size, (n_steps, max_samples),
                                            generator=generator)  # (S, N)

    def run(self, shift: float = 1.0, temperature: float = 1.0, samples_per_step: int = 64
            ) -> dict:
        """Per-step means of k1, k2, k3 over ``samples_per_step`` tokens, for n_steps steps.

        Returns exact_kl (KL(pi || ref)), forward_kl (KL(ref || pi)), uniform_expectation
        (exact E_U of each kind), kl_u_ref and kl_u_pi, policy_steps / uniform_steps
        (kind -> (n_steps,) per-step means), and the two distributions.
        """
        n = int(samples_per_step)
        if not 1 <= n <= self.max_samples:
            raise ValueError(f"samples_per_step must be in [1, {self.max_samples}], got {n}")
        policy_logp, ref_logp = _drifted(self.ref_logits, self.direction, shift, temperature)
        policy_tokens = sample_from_logp(policy_logp, self.uniforms[:, :n])  # (S, n)
        uniform_tokens = self.uniform_tokens[:, :n]  # (S, n)
        policy_steps, uniform_steps = {}, {}
        for kind in KL_KINDS:
            per_token = kl_estimate(policy_logp, ref_logp, kind)  # (V,) value at each token
            policy_steps[kind] = per_token[policy_tokens].mean(-1)  # (S,)
            uniform_steps[kind] = per_token[uniform_tokens].mean(-1)  # (S,)
        log_uniform = torch.full_like(ref_logp, -math.log(self.vocab_size))  # (V,)
        return {
            "policy_logp": policy_logp,
            "ref_logp": ref_logp,
            "exact_kl": exact_kl(policy_logp, ref_logp).item(),
            "forward_kl": exact_kl(ref_logp, policy_logp).item(),
            "kl_u_ref": exact_kl(log_uniform, ref_logp).item(),
            "kl_u_pi": exact_kl(log_uniform, policy_logp).item(),
            "uniform_expectation": uniform_expectations(policy_logp, ref_logp),
            "policy_steps": policy_steps,
            "uniform_steps": uniform_steps,
        }


def token_panel_data(result: dict, samples_per_step: int, n_top: int = 40,
                     bins: int = 40) -> dict:
    """What the token panel shows for one ``TokenKLExperiment.run`` result: the top
    ``n_top`` reference tokens with their policy probabilities, histograms (over steps) of
    the per-step estimates, and the summary numbers."""
    ref, policy = result["ref_logp"].exp(), result["policy_logp"].exp()
    order = torch.argsort(ref, descending=True)[:n_top]
    series = {"policy_k1": result["policy_steps"]["k1"],
              "policy_k3": result["policy_steps"]["k3"],
              "uniform_k1": result["uniform_steps"]["k1"]}
    together = torch.cat(list(series.values()))
    low, high = torch.quantile(together, torch.tensor([0.005, 0.995], dtype=F64)).tolist()
    marks = [0.0, result["exact_kl"], result["uniform_expectation"]["k1"]]
    low, high = min([low] + marks), max([high] + marks)
    pad = 0.05 * (high - low) + 1e-9
    low, high = low - pad, high + pad
    hists = {name: _histogram(values, low, high, bins)["density"]
             for name, values in series.items()}
    numbers = {}
    for name, values in series.items():
        numbers[name] = {"mean": values.mean().item(), "std": values.std().item(),
                         "frac_negative": (values < 0).double().mean().item()}
    return {"top_ref": ref[order].numpy(), "top_policy": policy[order].numpy(),
            "edges": np.linspace(low, high, bins + 1), "hists": hists, "numbers": numbers,
            "exact_kl": result["exact_kl"], "uniform_k1": result["uniform_expectation"]["k1"],
            "vocab_size": ref.numel(), "samples_per_step": int(samples_per_step),
            "n_steps": together.numel() // len(series)}


def token_experiment(vocab_size: int = 1000, shift: float = 1.0, temperature: float = 1.0,
                     samples_per_step: int = 64, n_steps: int = 200, seed: int = 0) -> dict:
    """One run of ``TokenKLExperiment`` (see there for the keys)."""
    return TokenKLExperiment(vocab_size, n_steps, samples_per_step, seed=seed).run(
        shift, temperature, samples_per_step)


# --------------------------------------------------------------------------------------
# 3. Gradients: the estimators used as a loss, in expectation, by enumeration
# --------------------------------------------------------------------------------------

def expected_gradients(policy_logits: torch.Tensor, ref_logp: torch.Tensor) -> dict:
    """Exact expected gradients w.r.t. the policy logits (V,), by summing over the vocabulary.

    A loss "k on samples x ~ pi_theta" has, with the samples held fixed as autograd does,
    expected gradient sum_x pi(x) grad_theta k(x). Keys:

    * ``k1_loss``, ``k2_loss``, ``k3_loss``: that, for each estimator used as a loss;
    * ``k1_reward``: sum_x pi(x) k1(x) grad log pi(x), the score-function (REINFORCE)
      gradient of k1 used as a (detached) per-token penalty in the reward, as PPO does;
    * ``reverse_kl``: grad KL(pi_theta || ref); ``forward_kl``: grad KL(ref || pi_theta);
    * ``k1_loss_uniform``: k1 used as a loss on tokens drawn uniformly (as the demo's
      ``make_fake_batch`` does), (1/V) sum_x grad k1(x); ``uniform_kl``: grad KL(U || pi_theta).

    Expected: k1_loss = 0, k2_loss = reverse_kl = k1_reward, k3_loss = forward_kl, and
    k1_loss_uniform = -uniform_kl (a push away from uniform, not zero).
    """
    logits = policy_logits.detach().to(F64)
    ref_logp = ref_logp.detach().to(F64)

    def grad_of(fn) -> torch.Tensor:
        theta = logits.clone().requires_grad_(True)
        logp = theta.log_softmax(-1)  # (V,)
        (grad,) = torch.autograd.grad(fn(logp), theta)
        return grad  # (V,)

    def as_loss(kind):
        return lambda logp: (logp.exp().detach() * kl_estimate(logp, ref_logp, kind)).sum()

    grads = {f"{kind}_loss": grad_of(as_loss(kind)) for kind in KL_KINDS}
    grads["k1_reward"] = grad_of(lambda logp: (
        logp.exp().detach() * kl_estimate(logp, ref_logp, "k1").detach() * logp).sum())
    grads["reverse_kl"] = grad_of(lambda logp: exact_kl(logp, ref_logp))
    grads["forward_kl"] = grad_of(lambda logp: exact_kl(ref_logp, logp))
    grads["k1_loss_uniform"] = grad_of(lambda logp: kl_estimate(logp, ref_logp, "k1").mean())
    uniform = torch.full_like(ref_logp, -math.log(ref_logp.shape[-1]))  # (V,) log(1/V)
    grads["uniform_kl"] = grad_of(lambda logp: exact_kl(uniform, logp))
    return grads


def gradient_agreement(shifts, vocab_size: int = 50, ref_scale: float = 1.0,
                       seed: int = 0) -> dict[str, list[float]]:
    """How far apart the expected gradients of k2 and k3 (as losses) are as the policy drifts.

    For each logit shift: KL(pi || ref) and ||g_k2 - g_k3|| / ||g_k2||, which goes to 0
    (linearly) as pi -> ref: the two agree to first order near the reference.
    """
    kls, rel_diffs, cosines = [], [], []
    for shift in shifts:
        policy_logp, ref_logp = token_distributions(vocab_size, float(shift), 1.0, ref_scale,
                                                    seed)
        grads = expected_gradients(policy_logp, ref_logp)
        g2, g3 = grads["k2_loss"], grads["k3_loss"]
        kls.append(exact_kl(policy_logp, ref_logp).item())
        rel_diffs.append(((g2 - g3).norm() / g2.norm()).item())
        cosines.append(torch.nn.functional.cosine_similarity(g2, g3, dim=0).item())
    return {"shift": [float(s) for s in shifts], "kl": kls, "relative_difference": rel_diffs,
            "cosine": cosines}


# --------------------------------------------------------------------------------------
# 4. Where the KL goes: in the reward (PPO) or in the loss (GRPO), on one batch
# --------------------------------------------------------------------------------------

def kl_placement_batch(beta: float = 0.1, lengths=(8, 5, 7, 3), vocab_size: int = 50,
                       shift: float = 1.5, seed: int = 0) -> dict:
    """One batch of G responses to one prompt, scored both ways.

    Tokens are sampled from the policy at each position (each position has its own
    context distribution); rewards are one scalar per response.

    * PPO (InstructGPT; DeepSeekMath eq. 2): token reward r_t = -beta k1_t, plus the
      scalar reward on the response's last token; advantages by ``gae`` with zero values,
      gamma = lam = 1 (so A_t is the sum of future rewards; no whitening, to keep it
      readable); loss = clipped surrogate, token-mean.
    * GRPO (DeepSeekMath eq. 3): group advantages of the scalar rewards; per-token loss
      = surrogate + beta k3_t; seq-mean-token-mean.

    Returns per-token (B, T) tensors (k1, k3, token rewards, advantages with and without
    the KL, gradient of each loss w.r.t. logp and its KL part) and summary numbers, among
    them GRPO's sampled ``grpo_mean_k3`` = mean_i (1/L_i) sum_t k3_it, its exact expectation
    ``grpo_expected_k3`` (the same weights on the exact per-position KL) and its standard
    error ``grpo_k3_stderr`` (from the exact per-position variance of k3 under pi: one
    sample per position, so the sampled value is noisy).
    """
    lengths = list(lengths)
    batch, seq_len = len(lengths), max(lengths)
    generator = torch.Generator().manual_seed(seed)
    ref_logits = 2.0 * torch.randn(batch, seq_len, vocab_size, generator=generator, dtype=F64)
    policy_logits = ref_logits + shift * torch.randn(batch, seq_len, vocab_size,
                                                     generator=generator, dtype=F64)
    policy_all = policy_logits.log_softmax(-1)  # (B, T, V)
    ref_all = ref_logits.log_softmax(-1)  # (B, T, V)
    uniforms = torch.rand(batch, seq_len, 1, generator=generator, dtype=F64)
    cdf = policy_all.exp().cumsum(-1)  # (B, T, V)
    tokens = torch.searchsorted(cdf, uniforms).clamp_max(vocab_size - 1)  # (B, T, 1)
    logp0 = policy_all.gather(-1, tokens).squeeze(-1)  # (B, T)
    ref_logp = ref_all.gather(-1, tokens).squeeze(-1)  # (B, T)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0] * (batch // 4 + 1), dtype=F64)[:batch]  # (B,)
    mask = mask_from_lengths(torch.tensor(lengths), seq_len).to(F64)  # (B, T)
    last = torch.tensor(lengths) - 1  # (B,) index of each response's last token

    k1 = kl_estimate(logp0, ref_logp, "k1") * mask  # (B, T)
    k3 = kl_estimate(logp0, ref_logp, "k3") * mask  # (B, T)

    def ppo(beta_):
        token_rewards = -beta_ * k1  # (B, T)
        token_rewards = token_rewards.index_put((torch.arange(batch), last),
                                                token_rewards[torch.arange(batch), last] + rewards)
        adv, _ = gae(token_rewards, torch.zeros_like(token_rewards), mask, gamma=1.0, lam=1.0)
        logp = logp0.clone().requires_grad_(True)
        loss = aggregate(clipped_surrogate(logp, logp0, adv), mask, "token-mean")
        (grad,) = torch.autograd.grad(loss, logp)
        return token_rewards, adv, loss.item(), grad

    def grpo(beta_):
        adv = group_advantages(rewards, batch)  # (B,)
        logp = logp0.clone().requires_grad_(True)
        per_token = clipped_surrogate(logp, logp0, adv) + beta_ * kl_estimate(logp, ref_logp)
        loss = aggregate(per_token, mask, "seq-mean-token-mean")
        (grad,) = torch.autograd.grad(loss, logp)
        return adv, loss.item(), grad

    ppo_rewards, ppo_adv, ppo_loss, ppo_grad = ppo(beta)
    _, ppo_adv0, ppo_loss0, ppo_grad0 = ppo(0.0)
    grpo_adv, grpo_loss_value, grpo_grad = grpo(beta)
    _, grpo_loss0, grpo_grad0 = grpo(0.0)
    lengths_t = torch.tensor(lengths, dtype=F64)
    weights = mask / (lengths_t.view(-1, 1) * batch)  # (B, T) seq-mean-token-mean weights
    kl_all = exact_kl(policy_all, ref_all)  # (B, T) exact KL(pi || ref) per position
    d_all = ref_all - policy_all  # (B, T, V) log r for every token of the vocabulary
    k3_all = torch.expm1(d_all) - d_all  # (B, T, V)
    k3_var = (policy_all.exp() * k3_all**2).sum(-1) - kl_all**2  # (B, T) Var_pi[k3]
    return {
        "beta": beta, "lengths": lengths, "mask": mask, "rewards": rewards,
        "logp": logp0, "ref_logp": ref_logp, "k1": k1, "k3": k3,
        "policy_logp_all": policy_all, "ref_logp_all": ref_all,  # (B, T, V) per position
        "exact_kl": (exact_kl(policy_all, ref_all) * mask).sum().item() / mask.sum().item(),
        "ppo_token_rewards": ppo_rewards, "ppo_advantages": ppo_adv,
        "ppo_advantages_no_kl": ppo_adv0, "ppo_loss": ppo_loss, "ppo_loss_no_kl": ppo_loss0,
        "ppo_grad": ppo_grad, "ppo_kl_grad": ppo_grad - ppo_grad0,
        "ppo_sequence_k1": k1.sum(-1),  # (B,) what -beta * (.) subtracts from each return
        "grpo_advantages": grpo_adv, "grpo_loss": grpo_loss_value, "grpo_loss_no_kl": grpo_loss0,
        "grpo_grad": grpo_grad, "grpo_kl_grad": grpo_grad - grpo_grad0,
        "grpo_mean_k3": ((k3.sum(-1) / lengths_t).mean()).item(),
        "grpo_expected_k3": (weights * kl_all).sum().item(),
        "grpo_k3_stderr": math.sqrt((weights**2 * k3_var).sum().item()),
    }


def kl_placement_gradient_checks(batch: dict, atol: float = 1e-12) -> dict[str, bool]:
    """Do the KL parts of the gradients in ``kl_placement_batch``'s output (autograd) match
    the formulas of notebook 04, section 5?

    * ``ppo``: d loss / d logp_t = beta * sum_{t' >= t} k1_t' / N_tokens (PPO, token-mean,
      KL in the reward: the KL of everything after t enters A_t);
    * ``grpo``: beta * (1 - r_t) / (G L_i) with r_t = ref / pi at token t (GRPO, k3 in the
      loss, seq-mean-token-mean).
    """
    beta, mask, k1 = batch["beta"], batch["mask"], batch["k1"]
    future_k1 = k1.flip(-1).cumsum(-1).flip(-1)  # (B, T) sum over t' >= t
    ppo = beta * future_k1 * mask / mask.sum()  # (B, T)
    lengths = mask.sum(-1, keepdim=True)  # (B, 1)
    ratio = torch.exp(batch["ref_logp"] - batch["logp"])  # (B, T)
    grpo = beta * (1 - ratio) * mask / (lengths * mask.shape[0])  # (B, T)
    return {"ppo": torch.allclose(batch["ppo_kl_grad"], ppo, atol=atol),
            "grpo": torch.allclose(batch["grpo_kl_grad"], grpo, atol=atol)}


# --------------------------------------------------------------------------------------
# 5. The effect of beta: a categorical policy optimised on reward - beta * KL
# --------------------------------------------------------------------------------------

def toy_bandit(vocab_size: int = 10, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A toy "one-token response" problem: reference log-probs (V,) from N(0, 1) logits and
    a reward in [0, 1) per token (V,), float64, seeded."""
    generator = torch.Generator().manual_seed(seed)
    ref_logp = torch.randn(vocab_size, generator=generator, dtype=F64).log_softmax(-1)  # (V,)
    reward = torch.rand(vocab_size, generator=generator, dtype=F64)  # (V,)
    return ref_logp, reward


def reverse_kl_optimum(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float) -> torch.Tensor:
    """argmax_pi E_pi[r] - beta KL(pi || ref) = ref * exp(r / beta) / Z, as log-probs (V,)."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    return (ref_logp + reward / beta).log_softmax(-1)


def forward_kl_optimum(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float,
                       iterations: int = 200) -> torch.Tensor:
    """argmax_pi E_pi[r] - beta KL(ref || pi), as log-probs (V,).

    Stationarity: r_x + beta ref_x / pi_x = lam, so pi_x = beta ref_x / (lam - r_x) with
    lam > max r chosen by bisection so that the pi_x sum to 1.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    ref = ref_logp.exp()
    r_max = reward.max().item()
    low, high = r_max, r_max + beta + 1.0  # sum at `high` is <= beta / (beta + 1) < 1

    def total(lam):
        return (beta * ref / (lam - reward)).sum().item()

    for _ in range(iterations):
        mid = 0.5 * (low + high)
        if mid == low or mid == high:
            break
        if total(mid) > 1.0:
            low = mid
        else:
            high = mid
    pi = beta * ref / (high - reward)  # (V,)
    return (pi / pi.sum()).log()


def beta_sweep(ref_logp: torch.Tensor, reward: torch.Tensor, betas) -> dict[str, list[float]]:
    """The trade-off curve: for each beta, E[r] and KL(pi* || ref) at the optimum
    pi* = ref exp(r / beta) / Z, and the same for the forward-KL-regularised optimum."""
    out = {"beta": [], "reward": [], "kl": [], "forward_opt_reward": [], "forward_opt_kl": []}
    for beta in betas:
        logp = reverse_kl_optimum(ref_logp, reward, float(beta))
        logp_f = forward_kl_optimum(ref_logp, reward, float(beta))
        out["beta"].append(float(beta))
        out["reward"].append((logp.exp() * reward).sum().item())
        out["kl"].append(exact_kl(logp, ref_logp).item())
        out["forward_opt_reward"].append((logp_f.exp() * reward).sum().item())
        out["forward_opt_kl"].append(exact_kl(logp_f, ref_logp).item())
    return out


def train_toy_policy(ref_logp: torch.Tensor, reward: torch.Tensor, beta: float,
                     kl_in_loss: str | None = "k2", steps: int = 600, lr: float = 0.1,
                     init_logits: torch.Tensor | None = None) -> dict:
    """Optimise a categorical policy (logits, V) on the loss
    -E_pi[r] + beta * (estimator ``kl_in_loss`` used as a loss on samples from pi),
    with exact expected gradients (sums over the vocabulary, samples held fixed), Adam.

    ``kl_in_loss``: "k1" (expected gradient 0: no pull back at all), "k2" (gradient of
    KL(pi || ref): ends at ref exp(r/beta)/Z), "k3" (gradient of KL(ref || pi): ends at the
    forward-KL optimum), or None (no KL term). Returns final log-probs, and the history of
    E[r] and KL(pi || ref).
    """
    if kl_in_loss is not None and kl_in_loss not in KL_KINDS:
        raise ValueError(f"Unknown kl_in_loss: {kl_in_loss!r}. Valid values: "
                         f"{', '.join(map(repr, KL_KINDS))} or None")
    ref_logp = ref_logp.detach().to(F64)
    start = ref_logp if init_logits is None else init_logits.detach().to(F64)
    theta = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([theta], lr=lr)
    rewards, kls = [], []
    for _ in range(steps):
        logp = theta.log_softmax(-1)  # (V,)
        pi = logp.exp()
        loss = -(pi * reward).sum()
        if kl_in_loss is not None:
            loss = loss + beta * (pi.detach() * kl_estimate(logp, ref_logp, kl_in_loss)).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            rewards.append((pi * reward).sum().item())
            kls.append(exact_kl(logp, ref_logp).item())
    final = theta.detach().log_softmax(-1)
    return {"logp": final, "reward": rewards, "kl": kls,
            "final_reward": (final.exp() * reward).sum().item(),
            "final_kl": exact_kl(final, ref_logp).item()}


def beta_for_target_kl(ref_logp: torch.Tensor, reward: torch.Tensor, target: float,
                       low: float = 1e-4, high: float = 1e4, iterations: int = 200) -> float:
    """The beta whose optimum ref exp(r/beta)/Z has KL(pi* || ref) = target (bisection in
    log beta; the KL falls as beta grows)."""
    lo, hi = math.log(low), math.log(high)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        kl = exact_kl(reverse_kl_optimum(ref_logp, reward, math.exp(mid)), ref_logp).item()
        if kl > target:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


# --------------------------------------------------------------------------------------
# 6. PPO's adaptive KL controller (Ziegler et al. 2019)
# --------------------------------------------------------------------------------------

class AdaptiveKLController:
    """beta <- beta * (1 + clip(KL / target - 1, -0.2, 0.2) * n_steps / horizon).

    Ziegler et al. 2019 (arXiv 1909.08593, section 2.2; lm-human-preferences); TRL's
    ``AdaptiveKLController`` is the same rule (n_steps = the batch size).
    """

    def __init__(self, init_beta: float, target: float, horizon: float):
        if not init_beta > 0 or not target > 0 or not horizon > 0:
            raise ValueError(f"init_beta, target and horizon must be > 0, got "
                             f"{init_beta}, {target}, {horizon}")
        self.value = float(init_beta)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value


def adaptive_kl_run(ref_logp: torch.Tensor, reward: torch.Tensor, target: float = 0.5,
                    init_beta: float = 0.05, horizon: float = 1000.0, batch_size: int = 64,
                    iterations: int = 300, lr: float = 1.0, adaptive: bool = True,
                    seed: int = 0) -> dict[str, list[float]]:
    """A short simulation: a categorical policy, one exact gradient step per iteration on
    E_pi[r] - beta KL(pi || ref) (what k1 in the reward gives in expectation), the KL the
    controller sees estimated from ``batch_size`` samples with k1 (TRL's default), and beta
    updated by ``AdaptiveKLController`` (or kept fixed with ``adaptive=False``).

    Returns per-iteration lists: beta, kl_estimate, kl (exact), reward; and
    ``final_probs``, the policy's probabilities (V,) after the last iteration, as a list.
    """
    generator = torch.Generator().manual_seed(seed)
    ref_logp = ref_logp.detach().to(F64)
    theta = ref_logp.clone().requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=lr)
    controller = AdaptiveKLController(init_beta, target, horizon)
    history = {"beta": [], "kl_estimate": [], "kl": [], "reward": []}
    for _ in range(iterations):
        beta = controller.value
        logp = theta.log_softmax(-1)  # (V,)
        loss = -(logp.exp() * reward).sum() + beta * exact_kl(logp, ref_logp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            logp = theta.log_softmax(-1)
            uniforms = torch.rand(batch_size, generator=generator, dtype=F64)
            tokens = sample_from_logp(logp, uniforms)  # (batch_size,)
            kl_hat = kl_estimate(logp[tokens], ref_logp[tokens], "k1").mean().item()
            history["beta"].append(beta)
            history["kl_estimate"].append(kl_hat)
            history["kl"].append(exact_kl(logp, ref_logp).item())
            history["reward"].append((logp.exp() * reward).sum().item())
        if adaptive:
            controller.update(kl_hat, batch_size)
    history["final_probs"] = theta.detach().softmax(-1).tolist()
    return history


# --------------------------------------------------------------------------------------
# 7. The demo's grpo_kl, at the demo's sizes (smaller vocabulary to stay fast)
# --------------------------------------------------------------------------------------

def demo_kl_trace(steps: int = 20, vocab_size: int = 4096, seed: int = 0,
                  sample_seed: int = 1) -> dict[str, list[float]]:
    """Run the demo's GRPO loop (``rlviz.train_step``, demo Config except ``vocab_size``)
    and record, before each step, on that step's batch (policy = after the previous steps):

    * ``demo_kl``: batch mean of ``grpo_kl`` (k1 averaged over each response's tokens);
    * ``demo_kl_term``: the KL's contribution to ``grpo_loss`` (= grpo_loss with zero
      advantages) = beta * sum_i kl_i / (G * L_i): k1 divided by the length twice;
    * ``paper_kl_term``: DeepSeekMath's beta * mean_i (1/L_i) sum_t k3_it on the same tokens;
    * ``uniform_expectation``: exact mean over the vocabulary of log pi - log ref at the
      batch's positions = KL(U || ref) - KL(U || pi), what ``demo_kl`` estimates;
    * ``exact_kl``: exact KL(pi || ref) per position (sum over the vocabulary), averaged;
    * ``k3_on_policy``: k3 on tokens sampled from pi at the same positions (a real estimate);
    * ``loss``: what ``train_step`` returned (the demo's printed loss).

    Global RNG use is the demo's own (the extra samples use their own generator), so the
    losses equal ``rlviz.run_demo``'s for the same seed and Config.

    Runs torch on one thread (restored afterwards): at these small sizes a second thread
    made it 3x slower on a busy 2-core machine (measured), and barely helps on an idle one.
    """
    with one_torch_thread():
        return _demo_kl_trace(steps, vocab_size, seed, sample_seed)


def _demo_kl_trace(steps: int, vocab_size: int, seed: int, sample_seed: int) -> dict:
    cfg = Config(vocab_size=vocab_size, device="cpu")
    cfg.algo = "grpo"
    set_seed(seed)
    policy = TinyPolicy(cfg)
    ref_policy = TinyPolicy(cfg)
    ref_policy.load_state_dict(policy.state_dict())
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    bs = cfg.group_num * 2  # the demo's num_prompts_per_batch = 2
    generator = torch.Generator().manual_seed(sample_seed)
    keys = ("demo_kl", "demo_kl_term", "paper_kl_term", "uniform_expectation", "exact_kl",
            "k3_on_policy", "loss")
    trace = {key: [] for key in keys}
    for _ in range(steps):
        input_ids, actions, rewards = make_fake_batch(cfg, bs)
        with torch.no_grad():
            logp_all = policy(input_ids).log_softmax(-1)  # (B, T, V)
            ref_all = ref_policy(input_ids).log_softmax(-1)  # (B, T, V)
            logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
            ref_logp = ref_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
            mask = compute_mask(bs, cfg.seq_len, cfg.input_len, "cpu", logp.dtype)  # (B, T)
            len_oi = torch.full((bs,), cfg.seq_len - cfg.input_len, dtype=torch.long)
            n_tokens = mask.sum()
            kl_term = grpo_loss(logp, logp, ref_logp, torch.zeros(bs), mask, len_oi,
                                cfg.group_num, cfg.clip_range, cfg.beta_kl)
            paper = aggregate(kl_estimate(logp, ref_logp, "k3"), mask, "seq-mean-token-mean")
            per_pos_uniform = (logp_all - ref_all).mean(-1)  # (B, T)
            per_pos_kl = exact_kl(logp_all, ref_all)  # (B, T)
            uniforms = torch.rand(bs, cfg.seq_len, 1, generator=generator, dtype=F64)
            cdf = logp_all.to(F64).exp().cumsum(-1)  # (B, T, V)
            sampled = torch.searchsorted(cdf, uniforms).clamp_max(vocab_size - 1)  # (B, T, 1)
            k3_pol = kl_estimate(logp_all.gather(-1, sampled).squeeze(-1),
                                 ref_all.gather(-1, sampled).squeeze(-1), "k3")  # (B, T)
            trace["demo_kl"].append(grpo_kl(logp, ref_logp, mask).mean().item())
            trace["demo_kl_term"].append(kl_term.item())
            trace["paper_kl_term"].append(cfg.beta_kl * paper.item())
            trace["uniform_expectation"].append(((per_pos_uniform * mask).sum() / n_tokens).item())
            trace["exact_kl"].append(((per_pos_kl * mask).sum() / n_tokens).item())
            trace["k3_on_policy"].append(((k3_pol * mask).sum() / n_tokens).item())
        trace["loss"].append(train_step(cfg, policy, ref_policy, optimizer, input_ids, actions,
                                        rewards))
    return trace


def demo_kl_summary(trace: dict[str, list[float]], cfg: Config | None = None) -> dict:
    """What notebook 04, section 8 reads off ``demo_kl_trace``: checks and typical sizes.

    * ``step0_zero``: the demo's KL term is exactly 0 before the first update;
    * ``term_formula``: at every step the term is beta * (B / G) * mean_i kl_i / L (k1
      divided by the length twice; B responses, G per group, all of length L);
    * ``term_negative`` / ``expectation_negative``: in how many of the steps 1..N-1 the
      demo's term, and its expectation KL(U || ref) - KL(U || pi), are negative;
    * ``exact_kl_growing``: exact KL(pi || ref) grows at every step; ``final_exact_kl``;
    * ``k3_over_exact``: sum of k3 on policy samples / sum of the exact KL, steps 1..N-1;
    * ``typical_*``: mean |x| over steps 1..N-1 of ``demo_kl``, ``uniform_expectation``,
      ``demo_kl_term`` and ``paper_kl_term`` (step 0 is exactly 0);
    * ``k1_weight``: the weight beta / (G L^2) with which each token's k1 enters the loss.
    """
    cfg = cfg or Config()
    n_resp, resp_len = cfg.group_num * 2, cfg.seq_len - cfg.input_len
    later = range(1, len(trace["demo_kl"]))
    if len(later) == 0:
        raise ValueError("trace must have at least 2 steps")
    scale = max(abs(term) for term in trace["demo_kl_term"]) or 1.0

    def typical(key):
        return sum(abs(trace[key][s]) for s in later) / len(later)

    formula = [cfg.beta_kl * n_resp / cfg.group_num * kl / resp_len for kl in trace["demo_kl"]]
    return {
        "steps": len(later),
        "step0_zero": trace["demo_kl_term"][0] == 0.0,
        "term_formula": all(abs(term - f) <= 1e-5 * scale
                            for term, f in zip(trace["demo_kl_term"], formula, strict=True)),
        "term_negative": sum(trace["demo_kl_term"][s] < 0 for s in later),
        "expectation_negative": sum(trace["uniform_expectation"][s] < 0 for s in later),
        "exact_kl_growing": all(trace["exact_kl"][s] > trace["exact_kl"][s - 1] for s in later),
        "final_exact_kl": trace["exact_kl"][-1],
        "k3_over_exact": (sum(trace["k3_on_policy"][s] for s in later)
                          / sum(trace["exact_kl"][s] for s in later)),
        "typical_demo_kl": typical("demo_kl"),
        "typical_uniform_expectation": typical("uniform_expectation"),
        "typical_demo_term": typical("demo_kl_term"),
        "typical_paper_term": typical("paper_kl_term"),
        "k1_weight": cfg.beta_kl / (cfg.group_num * resp_len**2),
    }
