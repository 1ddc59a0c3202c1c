"""Per-token estimators of KL(pi_theta || pi_ref) from the sampled tokens' log-probs."""

from __future__ import annotations

import torch

from .checks import check_one_of, check_same_shape, check_tensor

KL_KINDS = ("k1", "k2", "k3")

# exp() of a log-ratio is taken after clamping it to [-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP],
# as verl does (kl_penalty "low_var_kl" and the PPO ratio): exp(20) ~ 4.9e8 stays finite
# in float32 and bf16 and its square does too. Inside the range nothing changes.
LOG_RATIO_CLAMP = 20.0


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token KL estimate, (B, T) (any shape, as long as both inputs share it).

    With ``d = ref_logp - logp`` (log of r = pi_ref / pi_theta at the sampled token):

    * ``"k1"``: ``logp - ref_logp`` = -d        (unbiased, high variance, can be < 0)
    * ``"k2"``: ``(logp - ref_logp)**2 / 2``     (biased, low variance, >= 0)
    * ``"k3"``: ``exp(d) - d - 1``               (unbiased, low variance, >= 0)

    They estimate the *value* of KL(pi_theta || pi_ref) on tokens sampled from pi_theta
    (Schulman 2020, "Approximating KL Divergence"). DeepSeekMath's GRPO uses k3 in the loss;
    PPO for LLMs uses k1 in the reward. As a loss their expected *gradients* differ (one
    token, on-policy: k1 -> 0, k2 -> reverse KL, k3 -> forward KL; notebook 04), and two
    library switches change k3's gradient: TRL 1.16.0 ``use_bias_correction_kl=True`` (the
    default) multiplies k3 by the ratio pi_theta / pi_old (``per_token_kl = per_token_kl *
    coef_1``, grpo_trainer.py:3104-3105), verl 0.9.1 ``kl_loss_type="k3+"`` keeps k3's value
    with k2's gradient (core_algos.py:2188-2213).

    k3 clamps ``d`` to [-20, 20] before ``exp`` (verl 0.9.1's ``low_var_kl`` does the same,
    core_algos.py:2242), so log-ratios of +-1000 give finite values; k1 and k2 need no clamp.
    verl also clamps the k3 *value* to [-10, 10] (``torch.clamp(kld, min=-10, max=10)``,
    core_algos.py:2245); this function does not.

    ``kl_estimate(old_logp, logp, "k3")`` = ``(rho - 1) - log rho`` is CleanRL's ``approx_kl``.
    """
    check_tensor(logp, "logp")
    check_tensor(ref_logp, "ref_logp")
    check_same_shape(ref_logp, "ref_logp", logp, "logp")
    check_one_of(kind, "kind", KL_KINDS)
    if kind == "k1":
        return logp - ref_logp  # (B, T)
    if kind == "k2":
        return 0.5 * (logp - ref_logp) ** 2  # (B, T)
    d = (ref_logp - logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    # expm1(d) - d is exp(d) - 1 - d without the cancellation of 1 + tiny - 1
    return torch.expm1(d) - d  # (B, T)
