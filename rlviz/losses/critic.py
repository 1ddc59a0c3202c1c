"""PPO with a critic: per-token rewards carrying the KL, GAE advantages, whitening and the
clipped value loss."""

from __future__ import annotations

import torch

from .aggregation import aggregate
from .checks import check_mask, check_number, check_same_shape, check_tensor
from .kl import kl_estimate


def gae(token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
        gamma: float = 1.0, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (arXiv 1506.02438): ``(advantages, returns)``, (B, T).

        delta_t = r_t + gamma V_{t+1} - V_t
        A_t     = delta_t + gamma lam A_{t+1}
        R_t     = A_t + V_t

    ``token_rewards``, ``values`` and ``mask`` are (B, T). Positions with mask 0 (prompt,
    padding) are skipped: ``t + 1`` means the next response token, and the value after
    each response's last token is 0 (the episode ends there). Both outputs are 0 where the
    mask is 0, and not whitened (see ``whiten``). Run it under ``torch.no_grad()`` in
    training; it is differentiable all the same.

    Defaults: gamma = 1 as in TRL and verl; lam = 0.95 as TRL's PPO trainers (``lam=0.95``
    in ``PPOConfig`` from TRL 0.12 to ``trl.experimental.ppo`` in 1.9; TRL 1.16.0 has no PPO
    trainer). verl's ``algorithm.lam`` is 1.0 in every release from 0.2 to 0.9.1
    (0.9.1: ``trainer/config/_generated_ppo_trainer.yaml:860`` ``lam: 1.0``): pass
    ``lam=1.0`` to match it. See docs/library-defaults.md.
    """
    check_tensor(token_rewards, "token_rewards", ndim=2)
    check_tensor(values, "values", ndim=2)
    check_same_shape(values, "values", token_rewards, "token_rewards")
    mask = check_mask(mask, token_rewards.shape, dtype=token_rewards.dtype)  # (B, T)
    gamma = check_number(gamma, "gamma", low=0.0, high=1.0, low_open=False, high_open=False)
    lam = check_number(lam, "lam", low=0.0, high=1.0, low_open=False, high_open=False)

    batch, seq_len = token_rewards.shape
    next_value = torch.zeros(batch, dtype=values.dtype, device=values.device)  # (B,)
    next_adv = torch.zeros_like(next_value)  # (B,)
    advantages = [None] * seq_len
    for t in reversed(range(seq_len)):
        on = mask[:, t] > 0  # (B,)
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        adv_t = delta + gamma * lam * next_adv  # (B,)
        advantages[t] = torch.where(on, adv_t, torch.zeros_like(adv_t))
        # a masked position passes the next response token's value and advantage through
        next_value = torch.where(on, values[:, t], next_value)
        next_adv = torch.where(on, adv_t, next_adv)
    adv = torch.stack(advantages, dim=1)  # (B, T)
    returns = torch.where(mask > 0, adv + values, torch.zeros_like(adv))  # (B, T)
    return adv, returns


def whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked whitening, (B, T): ``(x - mean_m(x)) / sqrt(var_m(x) + 1e-8)``.

    Mean and unbiased (n - 1) variance over the entries where ``mask`` is 1, as verl's
    ``masked_whiten``. With fewer than two masked entries (no variance to speak of) it
    returns the centred values. Entries where the mask is 0 come back as 0.
    """
    check_tensor(x, "x")
    mask = check_mask(mask, x.shape, dtype=x.dtype)
    on = mask > 0
    count = mask.sum()
    masked = torch.where(on, x, torch.zeros_like(x))
    mean = masked.sum() / count.clamp_min(1.0)
    centred = torch.where(on, x - mean, torch.zeros_like(x))
    if count < 2:
        return centred
    var = (centred**2).sum() / (count - 1.0)
    return centred * torch.rsqrt(var + 1e-8)


def _check_value_inputs(values, old_values, returns, clip_range):
    check_tensor(values, "values", ndim=2)
    check_tensor(old_values, "old_values")
    check_tensor(returns, "returns")
    check_same_shape(old_values, "old_values", values, "values")
    check_same_shape(returns, "returns", values, "values")
    if clip_range is not None:
        clip_range = check_number(clip_range, "clip_range", low=0.0)
    return clip_range


def _value_losses(values, old_values, returns, clip_range):
    loss_unclipped = (values - returns) ** 2  # (B, T)
    if clip_range is None:
        return loss_unclipped, loss_unclipped
    values_clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)  # (B, T)
    loss_clipped = (values_clipped - returns) ** 2  # (B, T)
    return loss_unclipped, loss_clipped


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               mask: torch.Tensor, clip_range: float | None = 0.2,
               mode: str = "token-mean") -> torch.Tensor:
    """Clipped value loss, a scalar:

        0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)   per token,

    aggregated with ``aggregate(..., mode)``. ``values`` (with grad), ``old_values`` (the
    critic when the batch was collected) and ``returns`` (from ``gae``) are (B, T);
    ``clip_range=None`` gives the plain squared error. Source: PPO2 in OpenAI baselines;
    verl 0.9.1 ``critic.cliprange_value`` (0.5 by default, ``_generated_ppo_trainer.yaml:617``;
    ``vf_loss = 0.5 * agg_loss(...)``, ``core_algos.py:2175``); TRL's former PPO trainer
    ``cliprange_value=0.2`` (absent from TRL 1.16.0).
    """
    clip_range = _check_value_inputs(values, old_values, returns, clip_range)
    loss_unclipped, loss_clipped = _value_losses(values, old_values, returns, clip_range)
    per_token = 0.5 * torch.maximum(loss_unclipped, loss_clipped)  # (B, T)
    return aggregate(per_token, mask, mode)


@torch.no_grad()
def value_metrics(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                  mask: torch.Tensor, clip_range: float | None = 0.2) -> dict:
    """``vf_clipfrac``: masked share of tokens where the clipped value loss is the larger
    one (verl's ``vf_clipfrac``); ``value_mean``: masked mean of V. Python floats."""
    clip_range = _check_value_inputs(values, old_values, returns, clip_range)
    mask = check_mask(mask, values.shape, dtype=values.dtype)
    on = mask > 0
    count = max(int(on.sum()), 1)
    loss_unclipped, loss_clipped = _value_losses(values, old_values, returns, clip_range)
    return {
        "vf_clipfrac": float(((loss_clipped > loss_unclipped) & on).sum()) / count,
        "value_mean": float(torch.where(on, values, torch.zeros_like(values)).sum()) / count,
    }


def kl_token_rewards(rewards: torch.Tensor, mask: torch.Tensor, logp: torch.Tensor | None = None,
                     ref_logp: torch.Tensor | None = None, beta: float = 0.0,
                     kind: str = "k1") -> torch.Tensor:
    """Per-token rewards for PPO with the KL in the reward (InstructGPT; DeepSeekMath eq. 2):

        r_t = -beta * k_t  on every response token,  + r_i  on the last one,

    (B, T), with ``rewards`` r_i (B,) one scalar per response, ``k = kl_estimate(logp,
    ref_logp, kind)`` (k1 by default, as TRL's and verl's PPO) and 0 off the mask. A
    response with no tokens gets no reward. verl: ``use_kl_in_reward=True``,
    ``kl_penalty="kl"``.
    """
    check_tensor(rewards, "rewards", ndim=1)
    check_tensor(mask, "mask", ndim=2, floating=False)
    if mask.shape[0] != rewards.shape[0]:
        raise ValueError(f"mask must have B = {rewards.shape[0]} rows (one per reward), "
                         f"got shape {tuple(mask.shape)}")
    mask = check_mask(mask, mask.shape, dtype=rewards.dtype)  # (B, T)
    beta = check_number(beta, "beta", low=0.0, low_open=False)
    seq_len = mask.shape[1]
    positions = torch.arange(seq_len, device=mask.device).expand_as(mask)  # (B, T)
    last = torch.where(mask > 0, positions, torch.full_like(positions, -1)).amax(dim=1)  # (B,)
    is_last = (positions == last.unsqueeze(1)) & (mask > 0)  # (B, T)
    token_rewards = torch.where(is_last, rewards.unsqueeze(1).expand_as(mask),
                                torch.zeros_like(mask))  # (B, T)
    if beta > 0:
        if logp is None or ref_logp is None:
            raise ValueError("logp and ref_logp are needed when beta > 0 (the KL in the reward)")
        check_same_shape(logp, "logp", mask, "mask")
        kl = kl_estimate(logp, ref_logp, kind)  # (B, T)
        token_rewards = token_rewards - beta * torch.where(mask > 0, kl, torch.zeros_like(kl))
    return token_rewards
