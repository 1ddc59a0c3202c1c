"""The loss family built from the blocks: one function for every non-demo algorithm.

``family_loss`` assembles, from the resolved hyper-parameters of an algorithm
(``cfg.hparams()``), the policy term, the KL term, the value loss and the entropy bonus,
and returns the loss with its diagnostics. ``algo_advantages`` computes the advantages
each algorithm expects (group-relative, or GAE on per-token rewards carrying the KL).
"""

from __future__ import annotations

import torch

from .advantages import group_advantages
from .aggregation import aggregate
from .checks import check_logits, check_mask, check_number, check_same_shape, check_tensor
from .critic import gae, value_loss, value_metrics, whiten
from .kl import kl_estimate
from .logprob import token_entropy
from .surrogate import clipped_surrogate, surrogate_metrics


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    """Masked mean over all tokens as a Python float (0 for an empty mask)."""
    return float(aggregate(x.detach(), mask, "token-mean"))


def family_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    hparams: dict,
    *,
    kl_in: str = "loss",
    needs_critic: bool = False,
    values: torch.Tensor | None = None,
    old_values: torch.Tensor | None = None,
    returns: torch.Tensor | None = None,
    logits: torch.Tensor | None = None,
    ent_coef: float | None = None,
) -> tuple[torch.Tensor, dict]:
    """``(loss, metrics)`` of one algorithm of the family.

        loss = agg(l^clip + beta * k)                       [beta * k unless kl_in == "reward"]
               + vf_coef * value_loss                        [critic algorithms]
               - ent_coef * agg(entropy)                     [if ent_coef > 0]

    where ``l^clip = clipped_surrogate(logp, old_logp, advantages, eps_low, eps_high,
    dual_clip, ratio_level, mask)``, ``k = kl_estimate(logp, ref_logp, kl_estimator)`` and
    ``agg = aggregate(., mask, loss_agg_mode, max_len)`` (DeepSeekMath eq. 3 puts beta * k3
    inside the per-token sum, aggregated like the policy term).

    Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask`` (B, T); ``advantages`` (B,) or
    (B, T); ``values``, ``old_values``, ``returns`` (B, T); ``logits`` (B, T, V) aligned with
    ``logp`` (the logits that produced ``logp``). ``hparams`` is ``cfg.hparams()``.
    ``ent_coef`` overrides ``hparams["ent_coef"]`` (0 for the GRPO family, ``cfg.ent_coef``
    for ``"ppo_gae"``).

    metrics (Python floats): ``loss``, ``policy_loss``, ``clipfrac``, ``clipfrac_dual``,
    ``approx_kl``, ``ratio_mean``, ``ratio_max``; ``kl`` (masked mean of the algorithm's KL
    estimator to the reference) when ``ref_logp`` is given; ``entropy`` when ``logits``
    are; ``value_loss``, ``vf_clipfrac``, ``value_mean`` for critic algorithms.
    """
    check_tensor(logp, "pi_logprob", ndim=2)
    mask = check_mask(mask, logp.shape, dtype=logp.dtype)  # (B, T)
    beta = check_number(hparams.get("beta", 0.0), "beta", low=0.0, low_open=False)
    estimator = hparams.get("kl_estimator") or "k3"
    mode = hparams["loss_agg_mode"]
    max_len = hparams.get("max_len")
    if ent_coef is None:
        ent_coef = hparams.get("ent_coef", 0.0)
    ent_coef = check_number(ent_coef, "ent_coef", low=0.0, low_open=False)

    kl_in_loss = kl_in != "reward" and beta > 0  # beta > 0 on a "none" algorithm: TRL-style
    missing = []
    if kl_in_loss and ref_logp is None:
        missing.append(f"pi_ref_logprob (beta = {beta} puts a KL in the loss)")
    if needs_critic:
        missing += [name for name, x in (("values", values), ("old_values", old_values),
                                         ("returns", returns)) if x is None]
    if ent_coef > 0 and logits is None:
        missing.append(f"logits (ent_coef = {ent_coef} adds an entropy bonus)")
    if missing:
        raise ValueError(f"algo {hparams.get('algo', '?')!r} needs these keyword arguments: "
                         + ", ".join(missing))

    clip_args = dict(eps_low=hparams["eps_low"], eps_high=hparams.get("eps_high"),
                     dual_clip=hparams.get("dual_clip"),
                     level=hparams.get("ratio_level", "token"), mask=mask)
    per_token = clipped_surrogate(logp, old_logp, advantages, **clip_args)  # (B, T)
    policy_loss = aggregate(per_token, mask, mode, max_len)
    metrics = surrogate_metrics(logp, old_logp, advantages, **clip_args)

    loss_per_token = per_token
    if ref_logp is not None:
        check_tensor(ref_logp, "pi_ref_logprob")
        check_same_shape(ref_logp, "pi_ref_logprob", logp, "pi_logprob")
        kl = kl_estimate(logp, ref_logp, estimator)  # (B, T)
        metrics["kl"] = _masked_mean(kl.detach(), mask)
        if kl_in_loss:
            loss_per_token = per_token + beta * kl  # (B, T)
    loss = aggregate(loss_per_token, mask, mode, max_len)

    if logits is not None:
        check_logits(logits, logp)
        entropy = token_entropy(logits)  # (B, T)
        metrics["entropy"] = _masked_mean(entropy.detach(), mask)
        if ent_coef > 0:
            loss = loss - ent_coef * aggregate(entropy, mask, mode, max_len)

    if needs_critic:
        vf_clip = hparams.get("vf_clip_range")
        vf_coef = check_number(hparams.get("vf_coef", 0.5), "vf_coef", low=0.0, low_open=False)
        v_loss = value_loss(values, old_values, returns, mask, vf_clip, mode)
        loss = loss + vf_coef * v_loss
        metrics["value_loss"] = float(v_loss.detach())
        metrics.update(value_metrics(values, old_values, returns, mask, vf_clip))

    metrics["policy_loss"] = float(policy_loss.detach())
    metrics["loss"] = float(loss.detach())
    return loss, metrics


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


@torch.no_grad()
def algo_advantages(
    hparams: dict,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    *,
    group_size: int | None = None,
    values: torch.Tensor | None = None,
    logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(advantages, returns)`` as algorithm ``hparams["algo"]`` computes them.

    * advantage ``"batch-centred"`` (the demo's): ``r - mean(r)``, (B,); returns None.
    * ``"group"``: ``group_advantages(rewards, group_size, hparams["adv_scale"])``, (B,);
      returns None.
    * ``"gae"``: per-token rewards ``kl_token_rewards(rewards, mask, logp, ref_logp, beta)``
      (the KL in the reward), then ``gae(.., values, mask, gamma, lam)``; the advantages
      are whitened over the mask (verl, TRL), the returns are not. Both (B, T). Needs
      ``values`` (and ``logp``/``ref_logp`` when beta > 0).

    ``hparams`` is ``cfg.hparams()`` (it carries ``"advantage"``); ``group_size`` is
    ``cfg.group_num``. Runs without gradient: advantages are constants in the loss.
    """
    kind = hparams.get("advantage")
    if kind == "batch-centred":
        check_tensor(rewards, "rewards", ndim=1)
        return rewards - rewards.mean(), None
    if kind == "group":
        if group_size is None:
            raise ValueError("group_size is needed for group advantages (cfg.group_num)")
        return group_advantages(rewards, group_size, hparams.get("adv_scale") or "group"), None
    if kind == "gae":
        if values is None:
            raise ValueError("values (B, T) are needed for GAE advantages")
        token_rewards = kl_token_rewards(rewards, mask, logp, ref_logp,
                                         hparams.get("beta", 0.0),
                                         hparams.get("kl_estimator") or "k1")  # (B, T)
        adv, returns = gae(token_rewards, values, mask, hparams.get("gamma", 1.0),
                           hparams.get("lam", 0.95))  # (B, T) each
        return whiten(adv, mask), returns
    raise ValueError(f"Unknown advantage kind in hparams: {kind!r}. "
                     "Valid values: 'batch-centred', 'group', 'gae'")
