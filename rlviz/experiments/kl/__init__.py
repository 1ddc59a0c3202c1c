"""Notebook 04's computations: the k1 / k2 / k3 KL estimators, where the KL goes, and what
the demo's ``grpo_kl`` measures. Pure torch, numpy and math; figures live in ``rlviz.plots.kl``.

Conventions (``../shared/reference/formulas.md``, Schulman 2020 "Approximating KL
Divergence"): samples x ~ q, ratio r = p(x) / q(x), target KL[q, p]. In LLM RL q = pi_theta
(the sampler) and p = pi_ref, so ``rlviz.kl_estimate(logp=log q, ref_logp=log p, kind)``:

    k1 = -log r                (unbiased, high variance, < 0 on some samples)
    k2 = (log r)^2 / 2         (biased, low variance, >= 0)
    k3 = (r - 1) - log r       (unbiased, low variance, >= 0 because log r <= r - 1)

The package follows the notebook's sections, one module each:

    gaussian    1. Schulman's Gaussian experiment, q = N(0, 1), p = N(mu, 1)
    tokens      2. a categorical policy and reference over a vocabulary; inverse-CDF sampling
    gradients   3. the estimators used as a loss: their expected gradients
    placement   4. where the KL goes: in the reward (PPO) or in the loss (GRPO)
    beta        5-6. the effect of beta, and PPO's adaptive KL controller
    demo        7. the demo's grpo_kl at the demo's sizes

Everything public is re-exported here: ``from rlviz.experiments import kl as kle``.
"""

from ...losses.kl import KL_KINDS
from .beta import (
    AdaptiveKLController,
    adaptive_kl_run,
    beta_for_target_kl,
    beta_sweep,
    forward_kl_optimum,
    reverse_kl_optimum,
    toy_bandit,
    train_toy_policy,
)
from .demo import (
    demo_kl_summary,
    demo_kl_trace,
)
from .gaussian import (
    SCHULMAN_MUS,
    SCHULMAN_PUBLISHED,
    format_schulman_table,
    gaussian_closed_form,
    gaussian_estimates,
    gaussian_estimator_moments,
    gaussian_log_probs,
    gaussian_panel_data,
    running_mean,
    schulman_table,
)
from .gradients import (
    expected_gradients,
    gradient_agreement,
)
from .placement import (
    kl_placement_batch,
    kl_placement_gradient_checks,
)
from .tokens import (
    TokenKLExperiment,
    exact_kl,
    sample_from_logp,
    token_distributions,
    token_experiment,
    token_panel_data,
    uniform_expectations,
)

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
