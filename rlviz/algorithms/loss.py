"""The loss every algorithm of the family minimises, in one function (``compute_loss``),
the demo's two losses as ordinary entries (``demo_ppo_loss``, ``demo_grpo_loss``), and the
advantages each algorithm asks for (``algo_advantages``).

    loss = agg( policy_term + beta * KL )        policy_term: PPO's clipped surrogate
           - ent_coef * agg( entropy )           agg: rlviz.aggregate(., mask, loss_agg_mode)
           + vf_coef * value_loss                critic algorithms only

Every formula lives in ``rlviz.losses`` (one function each); this module only wires them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import (
    aggregate,
    clipped_surrogate,
    gae,
    group_advantages,
    grpo_loss,
    kl_estimate,
    kl_token_rewards,
    ppo_policy_loss,
    surrogate_metrics,
    token_entropy,
    value_loss,
    value_metrics,
    whiten,
)
from ..losses.checks import check_logits, check_mask, check_same_shape, check_tensor
from .hparams import HParams


@dataclass
class LossBatch:
    """The tensors of one (mini)batch a loss is computed on.

    logp, old_logp, ref_logp, mask:  (B, T) log-probs of the response tokens under the
        policy being trained (with grad), the sampling policy, the reference; 1 on tokens
    advantages:  (B,) one per response, or (B, T) per token (GAE)
    lengths:     (B,) response lengths (the demo's ``len_oi``)
    values, old_values, returns:  (B, T) critic algorithms only
    logits:      (B, T, V) the logits that produced ``logp`` (entropy), optional
    """

    logp: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor | None
    advantages: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor | None = None
    values: torch.Tensor | None = None
    old_values: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    logits: torch.Tensor | None = None


def clip_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    """PPO's clipped surrogate per token, (B, T): ``rlviz.clipped_surrogate`` with the
    algorithm's clip range, dual clip and ratio level (token, or GSPO's sequence)."""
    return clipped_surrogate(batch.logp, batch.old_logp, batch.advantages, hp.eps_low,
                             hp.eps_high, hp.dual_clip, hp.ratio_level, mask)


def compute_loss(batch: LossBatch, hp: HParams, policy_term=clip_policy_term):
    """``(loss, metrics)`` of one algorithm of the family: the whole loss on one screen.

    metrics (Python floats): loss, policy_loss, clipfrac, clipfrac_dual, approx_kl,
    ratio_mean, ratio_max; kl (masked mean of the KL estimator) when ``ref_logp`` is given;
    entropy when ``logits`` are; value_loss, vf_clipfrac, value_mean with a critic.
    """
    check_tensor(batch.logp, "pi_logprob", ndim=2)
    mask = check_mask(batch.mask, batch.logp.shape, dtype=batch.logp.dtype)  # (B, T)
    require_inputs(batch, hp)

    def agg(per_token):  # (B, T) -> scalar, the algorithm's aggregation
        return aggregate(per_token, mask, hp.loss_agg_mode, hp.max_len)

    # 1. the policy term, per token: -min(rho A, clip(rho) A) for the PPO family
    per_token = policy_term(batch, hp, mask)  # (B, T)
    metrics = surrogate_metrics(batch.logp, batch.old_logp, batch.advantages, hp.eps_low,
                                hp.eps_high, hp.dual_clip, hp.ratio_level, mask)
    metrics["policy_loss"] = float(agg(per_token.detach()))

    # 2. the KL to the reference, inside the per-token sum (DeepSeekMath eq. 3)
    if batch.ref_logp is not None:
        check_same_shape(batch.ref_logp, "pi_ref_logprob", batch.logp, "pi_logprob")
        kl = kl_estimate(batch.logp, batch.ref_logp, hp.kl_estimator)  # (B, T)
        metrics["kl"] = float(aggregate(kl.detach(), mask, "token-mean"))
        if kl_in_loss(hp):
            per_token = per_token + hp.beta * kl  # (B, T)
    loss = agg(per_token)

    # 3. the entropy bonus
    if batch.logits is not None:
        entropy = token_entropy(check_logits(batch.logits, batch.logp))  # (B, T)
        metrics["entropy"] = float(aggregate(entropy.detach(), mask, "token-mean"))
        if hp.ent_coef > 0:
            loss = loss - hp.ent_coef * agg(entropy)

    # 4. the critic's clipped value loss (PPO with GAE)
    if hp.needs_critic:
        v_loss = value_loss(batch.values, batch.old_values, batch.returns, mask,
                            hp.vf_clip_range, hp.loss_agg_mode)
        loss = loss + hp.vf_coef * v_loss
        metrics["value_loss"] = float(v_loss.detach())
        metrics.update(value_metrics(batch.values, batch.old_values, batch.returns, mask,
                                     hp.vf_clip_range))
    metrics["loss"] = float(loss.detach())
    return loss, metrics


def kl_in_loss(hp: HParams) -> bool:
    """Whether beta * KL is a term of the loss: beta > 0 and the KL is not in the reward
    (beta > 0 on an algorithm whose spec has no KL puts it in the loss, as TRL's beta)."""
    return hp.kl_in != "reward" and hp.beta > 0


def require_inputs(batch: LossBatch, hp: HParams) -> None:
    """``ValueError`` naming every tensor the algorithm needs and ``batch`` lacks."""
    for name, value in (("beta", hp.beta), ("ent_coef", hp.ent_coef), ("vf_coef", hp.vf_coef)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    missing = []
    if kl_in_loss(hp) and batch.ref_logp is None:
        missing.append(f"pi_ref_logprob (beta = {hp.beta} puts a KL in the loss)")
    if hp.needs_critic:
        missing += [name for name in ("values", "old_values", "returns")
                    if getattr(batch, name) is None]
    if hp.ent_coef > 0 and batch.logits is None:
        missing.append(f"logits (ent_coef = {hp.ent_coef} adds an entropy bonus)")
    if missing:
        raise ValueError(f"algo {hp.algo!r} needs these keyword arguments: " + ", ".join(missing))


# ---- the demo's two losses, called exactly as the demo calls them (bit for bit) ----------

def demo_ppo_loss(batch: LossBatch, hp: HParams):
    """The demo's PPO loss (``rlviz.ppo_policy_loss``) and its diagnostics."""
    loss = ppo_policy_loss(batch.logp, batch.old_logp, batch.advantages, batch.mask,
                           hp.eps_low)
    return loss, demo_metrics(batch, hp, loss)


def demo_grpo_loss(batch: LossBatch, hp: HParams):
    """The demo's GRPO loss (``rlviz.grpo_loss``, with its k1 / L^2 and 1 / group_num)."""
    loss = grpo_loss(pi_logprob=batch.logp, pi_old_logprob=batch.old_logp,
                     pi_ref_logprob=batch.ref_logp, advantage=batch.advantages,
                     mask=batch.mask, len_oi=batch.lengths, group_num=hp.group_size,
                     clip_range=hp.eps_low, beta_kl=hp.beta)
    return loss, demo_metrics(batch, hp, loss)


@torch.no_grad()
def demo_metrics(batch: LossBatch, hp: HParams, loss: torch.Tensor) -> dict:
    """The diagnostics of a demo loss, computed beside it (the loss is unchanged): the
    surrogate's, ``kl`` (masked mean of k1, the demo's estimator) when ``ref_logp`` is given,
    ``entropy`` when ``logits`` are."""
    check_tensor(batch.logp, "pi_logprob", ndim=2)
    mask = check_mask(batch.mask, batch.logp.shape, dtype=batch.logp.dtype)  # (B, T)
    metrics = surrogate_metrics(batch.logp, batch.old_logp, batch.advantages,
                                eps_low=hp.eps_low, mask=mask)
    if batch.ref_logp is not None:
        kl = kl_estimate(batch.logp, batch.ref_logp, "k1")  # (B, T)
        metrics["kl"] = float(aggregate(kl, mask, "token-mean"))
    if batch.logits is not None:
        entropy = token_entropy(check_logits(batch.logits, batch.logp))  # (B, T)
        metrics["entropy"] = float(aggregate(entropy, mask, "token-mean"))
    metrics["policy_loss"] = metrics["loss"] = float(loss.detach())
    return metrics


# ---- advantages --------------------------------------------------------------------------

def batch_centred_advantages(hp, rewards, mask, group_size, values, logp, ref_logp):
    """The demo's: A_i = r_i - mean(r) over the whole batch, (B,)."""
    check_tensor(rewards, "rewards", ndim=1)
    return rewards - rewards.mean(), None


def group_relative_advantages(hp, rewards, mask, group_size, values, logp, ref_logp):
    """GRPO's: ``rlviz.group_advantages(rewards, G, hp.adv_scale)``, (B,)."""
    if group_size is None:
        raise ValueError("group_size is needed for group advantages (cfg.group_num)")
    return group_advantages(rewards, group_size, hp.adv_scale), None


def gae_advantages(hp, rewards, mask, group_size, values, logp, ref_logp):
    """PPO's: per-token rewards carrying -beta * KL (``kl_token_rewards``), GAE on them
    (``rlviz.gae``), advantages whitened over the mask (verl, TRL); returns not. (B, T)."""
    if values is None:
        raise ValueError("values (B, T) are needed for GAE advantages")
    token_rewards = kl_token_rewards(rewards, mask, logp, ref_logp, hp.beta,
                                     hp.kl_estimator)  # (B, T)
    adv, returns = gae(token_rewards, values, mask, hp.gamma, hp.lam)  # (B, T) each
    return whiten(adv, mask), returns


ADVANTAGES = {
    "batch-centred": batch_centred_advantages,
    "group": group_relative_advantages,
    "gae": gae_advantages,
}


@torch.no_grad()
def algo_advantages(hparams: HParams, rewards: torch.Tensor, mask: torch.Tensor, *,
                    group_size: int | None = None, values: torch.Tensor | None = None,
                    logp: torch.Tensor | None = None, ref_logp: torch.Tensor | None = None):
    """``(advantages, returns)`` as algorithm ``hparams.algo`` computes them (returns: GAE
    only, else None). ``hparams`` is ``cfg.hparams()``; ``group_size`` is ``cfg.group_num``.
    Runs without gradient: advantages are constants in the loss."""
    kind = hparams.get("advantage")
    if kind not in ADVANTAGES:
        raise ValueError(f"Unknown advantage kind in hparams: {kind!r}. "
                         f"Valid values: {', '.join(repr(k) for k in ADVANTAGES)}")
    return ADVANTAGES[kind](hparams, rewards, mask, group_size, values, logp, ref_logp)
