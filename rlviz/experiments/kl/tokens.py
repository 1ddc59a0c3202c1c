"""Notebook 04, section 2: on tokens, a categorical policy and reference over a vocabulary."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...losses.checks import check_int, check_number
from ...losses.kl import KL_KINDS, kl_estimate
from .gaussian import histogram

F64 = torch.float64

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
    check_int(vocab_size, "vocab_size", low=2)
    generator = torch.Generator().manual_seed(seed)
    ref_logits = ref_scale * torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    direction = torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    return ref_logits, direction


def _drifted(ref_logits, direction, shift, temperature):
    check_number(temperature, "temperature", 0.0)
    policy_logits = (ref_logits + shift * direction) / temperature  # (V,)
    return policy_logits.log_softmax(-1), ref_logits.log_softmax(-1)


def sample_from_logp(logp: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Tokens x ~ exp(logp) by inverse CDF: x is the first token whose cumulative
    probability exceeds u. ``logp`` (V,) with ``uniforms`` in [0, 1) of any shape, or
    ``logp`` (..., V) with ``uniforms`` (..., n) of the same leading shape (one
    distribution per position, n draws from each); the tokens have the uniforms' shape."""
    cdf = logp.exp().cumsum(-1)  # (..., V)
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
        n = check_int(int(samples_per_step), "samples_per_step", 1, self.max_samples)
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
    hists = {name: histogram(values, low, high, bins)["density"]
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
