"""The original demo's two losses, kept operation for operation (bit-for-bit parity).

Where the demo departs from the standard form, each docstring says so in one line and
names the notebook that explains it; ``rlviz.losses`` also offers the standard forms.
"""

from __future__ import annotations

import torch


def ppo_policy_loss(pi_logprob, pi_old_logprob, advantage, mask, clip_range):
    """The demo's PPO policy loss: clipped surrogate, token-mean over the mask.

    loss = sum_{i,t} m_it * -min(rho_it A_i, clip(rho_it, 1-eps, 1+eps) A_i) / sum m,
    rho_it = exp(logp_it - old_it).  Shapes: logprobs and mask (B, T), advantage (B,).

    Differs from PPO: no critic, value loss or entropy term although ``Config`` declares
    ``vf_coef`` and ``ent_coef`` (notebook 02 adds them: algorithm ``"ppo_gae"``).
    """
    bs, seq_len = pi_logprob.shape

    ratio = torch.exp(pi_logprob - pi_old_logprob)  # (B, T)
    ratio_clip = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)

    advantage = advantage.view(bs, 1)  # (B, 1)
    pg_unclipped = ratio * advantage
    pg_clipped = ratio_clip * advantage

    pg_loss_token = -torch.minimum(pg_unclipped, pg_clipped)  # (B, T)
    pg_loss_token = pg_loss_token * mask

    valid_tokens = mask.sum().clamp_min(1.0)
    pg_loss = pg_loss_token.sum() / valid_tokens
    return pg_loss


def grpo_kl(pi_logprob, pi_ref_logprob, mask):
    """The demo's KL: per response, the masked mean of k1 = logp - ref, shape (B, 1).

    Differs from GRPO: k1 (DeepSeekMath uses k3), and on the demo's random actions it is
    not a KL estimate at all, since they were not sampled from the policy (notebook 04).
    """
    log_ratio = (pi_logprob - pi_ref_logprob) * mask  # (B, T)
    valid_token = mask.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1)
    kl_per_sample = log_ratio.sum(dim=1, keepdim=True) / valid_token  # (B, 1)
    return kl_per_sample


def grpo_loss(
    pi_logprob,
    pi_old_logprob,
    pi_ref_logprob,
    advantage,
    mask,
    len_oi,  # (B,)
    group_num,
    clip_range,
    beta_kl,
):
    """The demo's GRPO loss.

    loss = -(1/G) sum_i (1/L_i) sum_t m_it [min(rho A_i, clip(rho) A_i) - beta * KL_i / L_i]
    with KL_i = ``grpo_kl`` (k1 averaged over response i).

    Differs from DeepSeekMath: each response's KL enters as beta * sum_t k1_t / (G L^2),
    one factor 1/L more than the paper's beta * sum_t k3_t / (G L), and the loss is
    summed over prompts, so its scale grows with their number (notebooks 04 and 05).
    """
    device = pi_logprob.device
    dtype = pi_logprob.dtype
    bs, seq_len = pi_logprob.shape

    ratio = torch.exp(pi_logprob - pi_old_logprob)  # (B, T)
    ratio_clip = torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)

    advantage = advantage.view(bs, 1)  # (B, 1)
    pg_unclipped = ratio * advantage
    pg_clipped = ratio_clip * advantage
    policy_gradient = torch.minimum(pg_unclipped, pg_clipped) * mask  # (B, T)

    # KL: per response first, then spread back over its tokens
    kl_per_sample = grpo_kl(pi_logprob, pi_ref_logprob, mask)  # (B, 1)
    valid_token = mask.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1)
    kl_token = (kl_per_sample / valid_token) * mask  # (B, T)

    objective_token = policy_gradient - beta_kl * kl_token  # (B, T)

    # length normalisation
    len_oi = len_oi.view(bs, 1).to(device=device, dtype=dtype).clamp_min(1.0)  # (B, 1)
    loss_token = (-1.0 / group_num) * (1.0 / len_oi) * objective_token  # (B, T)

    loss = loss_token.sum()
    return loss
