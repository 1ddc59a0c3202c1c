"""Per-token policy terms beyond PPO's clipped surrogate, and the advantages of RLOO and
REINFORCE++. Each returns the *loss* per token (B, T) (minimise it; the objective is its
negative), to be aggregated by ``rlviz.aggregate`` like the clipped surrogate; GMPO's is
per sequence (B,). rho = exp(logp - old_logp) is the importance ratio, A the advantage.

Library versions quoted: TRL 1.16.0 (``trl/trainer/grpo_trainer.py``) and verl 0.9.1
(``verl/trainer/ppo/core_algos.py``).
"""

from __future__ import annotations

import torch

from .checks import (
    check_mask,
    check_number,
    check_positive_int,
    check_same_shape,
    check_tensor,
    per_response,
)


def _ratio_inputs(logp, old_logp, advantages):
    check_tensor(logp, "logp", ndim=2)
    check_same_shape(old_logp, "old_logp", logp, "logp")
    adv = per_response(advantages, "advantages", logp.shape[0], logp.shape)  # (B, 1)/(B, T)
    log_rho = (logp - old_logp).clamp(-20.0, 20.0)  # (B, T), as verl clamps before exp
    return log_rho, adv


def cispo_term(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
               eps_low: float, eps_high: float) -> torch.Tensor:
    """CISPO (MiniMax-M1, arXiv 2506.13585, eq. 4-5): clip the importance-sampling weight,
    not the update, and stop its gradient, so every token keeps a gradient:

        loss_t = - sg( clip(rho_t, 1 - eps_low, 1 + eps_high) ) * A * log pi(y_t)

    The gradient is -clip(rho) * A * grad log pi: REINFORCE weighted by the clipped ratio
    (the clipped surrogate instead sends 0 through tokens on its clipped branch).
    verl 0.9.1 ``compute_policy_loss_cispo``: ``clipped_ratio = torch.clamp(ratio, 1 -
    clip_ratio_low, 1 + clip_ratio_high)``, ``pg_losses = -clipped_ratio_sg * advantages *
    log_prob``. TRL 1.16.0 ``loss_type="cispo"``: ``torch.clamp(coef_1,
    max=self.epsilon_high).detach()``: an upper bound on rho itself (epsilon_high is
    ScaleRL's eps_max there, not 1 + eps), no lower bound."""
    eps_low = check_number(eps_low, "eps_low", low=0.0, low_open=False)
    eps_high = check_number(eps_high, "eps_high", low=0.0, low_open=False)
    log_rho, adv = _ratio_inputs(logp, old_logp, advantages)
    weight = log_rho.exp().clamp(1.0 - eps_low, 1.0 + eps_high).detach()  # (B, T)
    return -weight * adv * logp  # (B, T)


def sapo_term(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
              tau_pos: float = 1.0, tau_neg: float = 1.05) -> torch.Tensor:
    """SAPO (Soft Adaptive Policy Optimization, arXiv 2511.20347): a smooth gate instead of
    the hard clip,

        loss_t = - f_tau(rho_t) * A,    f_tau(x) = (4 / tau) * sigmoid(tau * (x - 1)),

    with tau = tau_pos where A > 0 and tau_neg otherwise. f'(1) = 1, so on-policy the
    gradient equals PPO's; far from rho = 1 the gate flattens and the gradient fades
    smoothly (a larger tau fades faster). verl 0.9.1 ``compute_policy_loss_sapo``:
    ``torch.sigmoid(tau * (x - 1.0)) * (4.0 / tau)``, ``tau_pos: 1.0``, ``tau_neg: 1.05``
    (actor.yaml); TRL 1.16.0 ``loss_type="sapo"``: ``torch.sigmoid(temperatures * (coef_1
    - 1)) * 4 / temperatures`` with ``sapo_temperature_pos=1.0``,
    ``sapo_temperature_neg=1.05``."""
    tau_pos = check_number(tau_pos, "tau_pos", low=0.0)
    tau_neg = check_number(tau_neg, "tau_neg", low=0.0)
    log_rho, adv = _ratio_inputs(logp, old_logp, advantages)
    tau = torch.where(adv > 0, torch.full_like(adv, tau_pos),
                      torch.full_like(adv, tau_neg))  # (B, 1) or (B, T)
    gate = torch.sigmoid(tau * (log_rho.exp() - 1.0)) * (4.0 / tau)  # (B, T)
    return -gate * adv  # (B, T)


def gmpo_sequence_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                       mask: torch.Tensor, eps_low: float = 0.4,
                       eps_high: float = 0.4) -> torch.Tensor:
    """GMPO (Geometric-Mean Policy Optimization, arXiv 2507.20673, eq. 5): the geometric
    mean of the token ratios, clipped token by token in log space, per sequence (B,):

        loss_i = - A_i * exp( (1/|o_i|) sum_t sgn(A_i) min(sgn(A_i) log rho_t,
                                                           sgn(A_i) clip(log rho_t, -eps_low, eps_high)) )

    One outlier token moves a geometric mean less than an arithmetic one, so a wider clip
    (GMPO: (e^-0.4, e^0.4)) stays stable. The batch loss is the mean over sequences.
    verl 0.9.1 ``compute_policy_loss_geo_mean`` (``loss_mode="geo_mean"``): the same, with
    the clip range taken from ``clip_ratio_low/high`` and ``pg_loss = torch.mean(pg_losses)``;
    A is the masked mean of the per-token advantages. TRL 1.16.0 has no GMPO loss."""
    eps_low = check_number(eps_low, "eps_low", low=0.0, low_open=False)
    eps_high = check_number(eps_high, "eps_high", low=0.0, low_open=False)
    check_tensor(logp, "logp", ndim=2)
    check_same_shape(old_logp, "old_logp", logp, "logp")
    mask = check_mask(mask, logp.shape, dtype=logp.dtype)  # (B, T)
    check_tensor(advantages, "advantages", ndim=(1, 2))
    lengths = mask.sum(dim=1)  # (B,)
    if advantages.dim() == 2:
        check_same_shape(advantages, "advantages", logp, "logp")
        adv = (advantages * mask).sum(dim=1) / lengths.clamp_min(1.0)  # (B,)
    else:
        if advantages.shape[0] != logp.shape[0]:
            raise ValueError(f"advantages must have B = {logp.shape[0]} rows, "
                             f"got {tuple(advantages.shape)}")
        adv = advantages
    sign = torch.sign(adv)[:, None]  # (B, 1)
    log_rho = logp - old_logp  # (B, T)
    clipped = log_rho.clamp(-eps_low, eps_high)  # (B, T)
    pessimistic = sign * torch.minimum(sign * log_rho, sign * clipped)  # (B, T)
    mean_log = (pessimistic * mask).sum(dim=1) / lengths.clamp_min(1.0)  # (B,)
    return -adv * mean_log.clamp(max=20.0).exp()  # (B,)


def rloo_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024, arXiv 2402.14740): each response's baseline is the mean
    reward of the *other* G - 1 responses to its prompt, (B,):

        A_i = r_i - (1 / (G - 1)) sum_{j != i} r_j  =  G / (G - 1) * (r_i - mean_group(r)),

    GRPO's mean-centred advantage (without the std) times G / (G - 1). verl 0.9.1
    ``compute_rloo_outcome_advantage``: ``scores[i] * response_num / (response_num - 1) -
    id2mean[index[i]] * response_num / (response_num - 1)``. G = 1 gives 0 (no other
    response to compare with; verl keeps the raw score there)."""
    check_tensor(rewards, "rewards", ndim=1)
    group_size = check_positive_int(group_size, "group_size")
    if rewards.shape[0] % group_size:
        raise ValueError(f"the batch size B = {rewards.shape[0]} of rewards must be a "
                         f"multiple of group_size = {group_size}")
    if group_size == 1:
        return torch.zeros_like(rewards)
    grouped = rewards.view(-1, group_size)  # (num_groups, G)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # (num_groups, G)
    return (grouped - others).reshape(-1)  # (B,)


def _masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over the masked entries of the whole batch, 0 off the
    mask (verl's ``masked_whiten``: unbiased variance)."""
    count = mask.sum()
    mean = (x * mask).sum() / count.clamp_min(1.0)
    var = (((x - mean) * mask) ** 2).sum() / (count - 1.0).clamp_min(1.0)
    return (x - mean) * torch.rsqrt(var + eps) * mask


def reinforce_pp_advantages(rewards: torch.Tensor, mask: torch.Tensor,
                            group_size: int | None = None, gamma: float = 1.0) -> torch.Tensor:
    """REINFORCE++ (Hu et al. 2025, arXiv 2501.03262): per-token advantages, (B, T),
    normalised over the whole *batch* (global normalisation), no critic, no group std.

    * ``group_size=None`` (``reinforce_plus_plus``): the reward sits on the last token,
      the return G_t = sum_{s >= t} gamma^(s-t) r_s, then masked whitening of the returns
      over the batch. verl 0.9.1 ``compute_reinforce_plus_plus_outcome_advantage``:
      ``advantages = verl_F.masked_whiten(returns, response_mask)``.
    * ``group_size=G`` (``reinforce_plus_plus_baseline``): subtract the group's mean reward
      first (the score is the same on every token), then whiten over the batch. verl 0.9.1
      ``compute_reinforce_plus_plus_baseline_outcome_advantage``:
      ``scores[i] - id2mean[index[i]]``, then ``masked_whiten(scores, response_mask)``.
    """
    check_tensor(rewards, "rewards", ndim=1)
    check_tensor(mask, "mask", ndim=2)
    mask = check_mask(mask, (rewards.shape[0], mask.shape[1]), dtype=rewards.dtype)  # (B, T)
    gamma = check_number(gamma, "gamma", low=0.0, high=1.0, low_open=False, high_open=False)
    if group_size is not None:
        group_size = check_positive_int(group_size, "group_size")
        if rewards.shape[0] % group_size:
            raise ValueError(f"the batch size B = {rewards.shape[0]} of rewards must be a "
                             f"multiple of group_size = {group_size}")
        grouped = rewards.view(-1, group_size)  # (num_groups, G)
        centred = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)  # (B,)
        if group_size == 1:
            centred = rewards  # verl: a lone response keeps its score (mean taken as 0)
        return _masked_whiten(centred[:, None] * mask, mask)  # (B, T)
    lengths = mask.sum(dim=1).long()  # (B,)
    steps = torch.arange(mask.shape[1], device=rewards.device)  # (T,)
    # reward on the last real token; the return at t is gamma^(L - 1 - t) * r
    to_end = (lengths[:, None] - 1 - steps).clamp_min(0).to(rewards.dtype)  # (B, T)
    returns = rewards[:, None] * gamma ** to_end * mask  # (B, T)
    return _masked_whiten(returns, mask)  # (B, T)


def _token_covariance(logp: torch.Tensor, adv: torch.Tensor, on: torch.Tensor) -> torch.Tensor:
    """cov_t = (A_t - mean A)(log pi_t - mean log pi) over the valid tokens, (B, T), no grad
    (the centred product whose batch mean drives the entropy change, arXiv 2505.22617)."""
    adv = adv.expand_as(logp).detach()  # (B, T)
    logp = logp.detach()
    return (adv - adv[on].mean()) * (logp - logp[on].mean())  # (B, T)


def clip_cov_term(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                  mask: torch.Tensor, eps_low: float, eps_high: float, ratio: float = 2e-4,
                  low: float = 1.0, high: float = 5.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Clip-Cov (Cui et al. 2025, 'The Entropy Mechanism of RL for Reasoning LMs', arXiv
    2505.22617): PPO's clipped surrogate, except that a few tokens of high covariance
    cov_t = (A_t - mean A)(log pi_t - mean log pi) lose their loss (and so their gradient):
    among the valid tokens the clip has not already cut with ``low < cov_t < high``,
    max(1, int(ratio * n_valid)) are drawn at random (``generator``) and zeroed, (B, T).
    verl 0.9.1 ``compute_policy_loss_clip_cov``: ``corr[top_k_idx[:, 0], top_k_idx[:, 1]] =
    0``, ``pg_losses = torch.maximum(pg_losses1, pg_losses2) * corr`` (no dual clip);
    defaults ``clip_cov_ratio: 0.0002``, ``clip_cov_lb: 1.0``, ``clip_cov_ub: 5.0``."""
    ratio = check_number(ratio, "ratio", low=0.0, high=1.0, high_open=False)
    log_rho, adv = _ratio_inputs(logp, old_logp, advantages)
    on = check_mask(mask, logp.shape, dtype=logp.dtype) > 0  # (B, T)
    rho = log_rho.exp()  # (B, T)
    plain = -adv * rho  # (B, T)
    clipped = -adv * rho.clamp(1.0 - eps_low, 1.0 + eps_high)  # (B, T)
    cov = _token_covariance(logp, adv, on)  # (B, T)
    candidates = torch.nonzero(on & ~(clipped > plain) & (cov > low) & (cov < high))  # (n, 2)
    keep = torch.ones_like(logp)  # (B, T)
    if len(candidates):
        count = max(int(ratio * int(on.sum())), 1)
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:count]]
        keep[chosen[:, 0], chosen[:, 1]] = 0.0
    return torch.maximum(plain, clipped) * keep  # (B, T)


def kl_cov_term(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, ratio: float = 2e-4, kl_coef: float = 1.0) -> torch.Tensor:
    """KL-Cov (arXiv 2505.22617): the unclipped surrogate -A rho on every token, plus a
    penalty kl_coef * |log rho| on the max(1, int(ratio * n_valid)) valid tokens of largest
    covariance cov_t, (B, T). verl 0.9.1 ``compute_policy_loss_kl_cov``: ``pg_losses_kl =
    -advantages * ratio + ppo_kl_coef * abs_kl`` on ``torch.topk(cov_lst_all,
    k_percent_nums, largest=True)``; defaults ``kl_cov_ratio: 0.0002``, ``ppo_kl_coef: 1``."""
    ratio = check_number(ratio, "ratio", low=0.0, high=1.0, high_open=False)
    kl_coef = check_number(kl_coef, "kl_coef", low=0.0, low_open=False)
    log_rho, adv = _ratio_inputs(logp, old_logp, advantages)
    on = check_mask(mask, logp.shape, dtype=logp.dtype) > 0  # (B, T)
    loss = -adv * log_rho.exp()  # (B, T)
    if not bool(on.any()):
        return loss
    cov = _token_covariance(logp, adv, on).masked_fill(~on, -torch.inf)  # (B, T)
    count = max(int(ratio * int(on.sum())), 1)
    top = torch.topk(cov.flatten(), count).indices  # (count,)
    penalty = torch.zeros_like(loss).flatten()
    penalty[top] = kl_coef
    return loss + penalty.view_as(loss) * log_rho.abs()  # (B, T)
