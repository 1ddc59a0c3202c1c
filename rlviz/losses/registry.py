"""``LOSS_FN_REGISTRY``: algorithm name -> ``AlgoSpec``, and ``policy_loss_wrapper``.

A spec says everything a trainer needs to run an algorithm: the loss, how advantages
are computed, where the KL goes, whether a critic is needed, and its default
hyper-parameters. Calling a spec calls its loss, so ``LOSS_FN_REGISTRY[algo](...)``
still works the way the demo's prose describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch

from ..config import Config
from .aggregation import aggregate
from .checks import check_logits, check_mask, check_tensor
from .demo import grpo_loss, ppo_policy_loss
from .family import family_loss
from .kl import kl_estimate
from .logprob import token_entropy
from .surrogate import surrogate_metrics

# Fields of Config that override an algorithm's default hyper-parameters when not None.
OVERRIDE_FIELDS = (
    "eps_low", "eps_high", "dual_clip", "beta", "kl_estimator", "adv_scale",
    "loss_agg_mode", "max_len", "gamma", "lam", "vf_clip_range",
)


@dataclass(frozen=True)
class AlgoSpec:
    """One algorithm of the family.

    name:          registry key (``cfg.algo``)
    loss_fn:       the loss. Demo algorithms: the demo's function, with the demo's
                   arguments. The family: ``family_loss(logp, old_logp, ref_logp,
                   advantages, mask, hparams, ...)`` returning ``(loss, metrics)``
    advantage:     "batch-centred" (the demo's r - mean(r)), "group" or "gae"
                   (``rlviz.algo_advantages`` computes each)
    kl_in:         where the KL to the reference goes: "loss", "reward" or "none" (beta
                   defaults to 0; a beta override puts the KL in the loss, as TRL's beta)
    needs_critic:  True when the algorithm trains a value head
    defaults:      default hyper-parameters: keys of ``OVERRIDE_FIELDS``, plus
                   ``ratio_level`` ("token" / "sequence") for the family
    is_demo:       True for the demo's "ppo" and "grpo" (their knobs: clip_range, beta_kl)
    paper, trl, verl, summary: for the loss table (``rlviz.loss_table``)
    """

    name: str
    loss_fn: Callable
    advantage: str
    kl_in: str
    needs_critic: bool
    defaults: Mapping = field(default_factory=dict)
    is_demo: bool = False
    paper: str = ""
    trl: str = ""
    verl: str = ""
    summary: str = ""

    def __call__(self, *args, **kwargs):
        return self.loss_fn(*args, **kwargs)


LOSS_FN_REGISTRY: dict[str, AlgoSpec] = {
    "ppo": AlgoSpec(
        name="ppo",
        loss_fn=ppo_policy_loss,
        advantage="batch-centred",
        kl_in="none",
        needs_critic=False,
        defaults={"eps_low": 0.2, "eps_high": 0.2, "beta": 0.0, "loss_agg_mode": "token-mean"},
        is_demo=True,
        paper="the original demo (PPO's clipped surrogate, arXiv 1707.06347)",
        trl="-",
        verl="-",
        summary="demo: clipped surrogate, token-mean, no critic, A = r - mean(r)",
    ),
    "grpo": AlgoSpec(
        name="grpo",
        loss_fn=grpo_loss,
        advantage="batch-centred",
        kl_in="loss",
        needs_critic=False,
        defaults={"eps_low": 0.2, "eps_high": 0.2, "beta": 0.01, "kl_estimator": "k1",
                  "loss_agg_mode": "seq-mean-token-mean"},
        is_demo=True,
        paper="the original demo (GRPO-style, arXiv 2402.03300)",
        trl="-",
        verl="-",
        summary="demo: clipped surrogate - beta * k1 / L^2, summed over prompts / G",
    ),
    "grpo_paper": AlgoSpec(
        name="grpo_paper",
        loss_fn=family_loss,
        advantage="group",
        kl_in="loss",
        needs_critic=False,
        defaults={"eps_low": 0.2, "eps_high": 0.2, "dual_clip": None, "beta": 0.04,
                  "kl_estimator": "k3", "adv_scale": "group",
                  "loss_agg_mode": "seq-mean-token-mean", "max_len": None,
                  "ratio_level": "token"},
        paper="DeepSeekMath, arXiv 2402.03300 (eq. 3)",
        trl='loss_type="grpo", scale_rewards="group", beta=0.04, epsilon=0.2',
        verl=("adv_estimator=grpo, norm_adv_by_std_in_grpo=True, use_kl_loss=True, "
              "kl_loss_coef=0.04, kl_loss_type=low_var_kl, loss_agg_mode=seq-mean-token-mean"),
        summary="GRPO: group advantages / std, + beta * k3 in the loss, seq-mean-token-mean",
    ),
    "dr_grpo": AlgoSpec(
        name="dr_grpo",
        loss_fn=family_loss,
        advantage="group",
        kl_in="none",
        needs_critic=False,
        defaults={"eps_low": 0.2, "eps_high": 0.2, "dual_clip": None, "beta": 0.0,
                  "kl_estimator": "k3", "adv_scale": "none",
                  "loss_agg_mode": "seq-mean-token-sum-norm", "max_len": None,
                  "ratio_level": "token"},
        paper="Dr. GRPO, 'Understanding R1-Zero-Like Training', arXiv 2503.20783",
        trl='loss_type="dr_grpo", scale_rewards="none", beta=0.0',
        verl=("adv_estimator=grpo, norm_adv_by_std_in_grpo=False, use_kl_loss=False, "
              "loss_agg_mode=seq-mean-token-sum-norm"),
        summary="GRPO without the std and the 1/L: sum over tokens / (B * max_len), no KL",
    ),
    "dapo": AlgoSpec(
        name="dapo",
        loss_fn=family_loss,
        advantage="group",
        kl_in="none",
        needs_critic=False,
        defaults={"eps_low": 0.2, "eps_high": 0.28, "dual_clip": None, "beta": 0.0,
                  "kl_estimator": "k3", "adv_scale": "group", "loss_agg_mode": "token-mean",
                  "max_len": None, "ratio_level": "token"},
        paper="DAPO, arXiv 2503.14476 (clip-higher and the token-level loss)",
        trl='loss_type="dapo", epsilon=0.2, epsilon_high=0.28, beta=0.0',
        verl=("clip_ratio_low=0.2, clip_ratio_high=0.28, loss_agg_mode=token-mean, "
              "use_kl_loss=False, use_kl_in_reward=False"),
        summary="GRPO with clip-higher 0.2 / 0.28, token-mean, no KL",
    ),
    "gspo": AlgoSpec(
        name="gspo",
        loss_fn=family_loss,
        advantage="group",
        kl_in="none",
        needs_critic=False,
        defaults={"eps_low": 3e-4, "eps_high": 4e-4, "dual_clip": None, "beta": 0.0,
                  "kl_estimator": "k3", "adv_scale": "group",
                  "loss_agg_mode": "seq-mean-token-mean", "max_len": None,
                  "ratio_level": "sequence"},
        paper="GSPO, arXiv 2507.18071 (sequence-level ratio, section 5.1 clip range)",
        trl=('importance_sampling_level="sequence", loss_type="grpo", epsilon=3e-4, '
             "epsilon_high=4e-4, beta=0.0"),
        verl=("policy_loss.loss_mode=gspo, clip_ratio_low=3e-4, clip_ratio_high=4e-4, "
              "loss_agg_mode=seq-mean-token-mean"),
        summary="sequence ratio s_i = exp(mean_t log rho), clip 3e-4 / 4e-4, no KL",
    ),
    "ppo_gae": AlgoSpec(
        name="ppo_gae",
        loss_fn=family_loss,
        advantage="gae",
        kl_in="reward",
        needs_critic=True,
        defaults={"eps_low": 0.2, "eps_high": 0.2, "dual_clip": None, "beta": 0.05,
                  "kl_estimator": "k1", "adv_scale": None, "loss_agg_mode": "token-mean",
                  "max_len": None, "gamma": 1.0, "lam": 0.95, "vf_clip_range": 0.2,
                  "ratio_level": "token"},
        paper="PPO, arXiv 1707.06347; GAE, arXiv 1506.02438; KL in the reward: InstructGPT",
        trl=("PPOTrainer: cliprange=0.2, cliprange_value=0.2, kl_coef=0.05, "
             'kl_estimator="k1", gamma=1.0, lam=0.95 (vf_coef=0.1)'),
        verl=("adv_estimator=gae, use_kl_in_reward=True, kl_penalty=kl, clip_ratio=0.2, "
              "critic.cliprange_value, entropy_coeff, loss_agg_mode=token-mean (lam=1.0)"),
        summary="critic + GAE (whitened), -beta * k1 in the reward, clipped value loss, entropy",
    ),
}


def get_spec(algo: str) -> AlgoSpec:
    """The registry entry for ``algo``; a ``ValueError`` listing the known names otherwise."""
    if not isinstance(algo, str) or algo not in LOSS_FN_REGISTRY:
        known = ", ".join(repr(k) for k in LOSS_FN_REGISTRY)
        raise ValueError(f"Unknown algo: {algo!r}. Known algorithms: {known}")
    return LOSS_FN_REGISTRY[algo]


def resolve_hparams(cfg: Config, algo: str | None = None) -> dict:
    """The hyper-parameters algorithm ``algo`` (default ``cfg.algo``) runs with.

    * demo algorithms (``"ppo"``, ``"grpo"``): the spec's defaults with the demo's knobs
      ``cfg.clip_range`` (eps_low = eps_high) and ``cfg.beta_kl``; the loss-family
      overrides do not apply to them (their loss is the demo's, called with the demo's
      arguments, so reporting an override it ignores would mislead).
    * the family: the spec's defaults, then every ``cfg`` field of ``OVERRIDE_FIELDS``
      that is not None, then ``eps_high = eps_low`` if only eps_low is set. Critic
      algorithms also get ``cfg.vf_coef``; ``ent_coef`` is ``cfg.ent_coef`` for them
      and 0 for the others (a trainer may pass ``ent_coef=`` to ``policy_loss_wrapper``).

    Every result also carries ``algo``, ``advantage``, ``kl_in`` and ``needs_critic``.
    """
    spec = get_spec(cfg.algo if algo is None else algo)
    hp = dict(spec.defaults)
    if spec.is_demo:
        hp["eps_low"] = hp["eps_high"] = cfg.clip_range
        if spec.kl_in != "none":
            hp["beta"] = cfg.beta_kl
    else:
        user_set = {name: getattr(cfg, name) for name in OVERRIDE_FIELDS}
        for name, value in user_set.items():
            if value is not None:
                hp[name] = value
        if user_set["eps_low"] is not None and user_set["eps_high"] is None:
            hp["eps_high"] = hp["eps_low"]
        hp["ent_coef"] = cfg.ent_coef if spec.needs_critic else 0.0
        if spec.needs_critic:
            hp["vf_coef"] = cfg.vf_coef
    if hp.get("eps_high") is None and "eps_low" in hp:
        hp["eps_high"] = hp["eps_low"]
    hp.update(algo=spec.name, advantage=spec.advantage, kl_in=spec.kl_in,
              needs_critic=spec.needs_critic)
    return hp


def policy_loss_wrapper(
    algo: str,
    pi_logprob,
    pi_old_logprob,
    pi_ref_logprob,
    advantage,
    mask,
    len_oi,
    cfg: Config,
    *,
    values=None,
    old_values=None,
    returns=None,
    logits=None,
    ent_coef: float | None = None,
    return_metrics: bool = False,
):
    """One interface for every algorithm: only ``algo`` (usually ``cfg.algo``) changes.

    Dispatches through ``LOSS_FN_REGISTRY`` (the demo used an if/elif); an unknown
    ``algo`` raises ``ValueError`` listing the known ones.

    * ``"ppo"`` / ``"grpo"``: the demo's losses, called exactly as the demo does (same
      arguments, same operations: bit-for-bit). The keyword arguments only feed metrics.
    * the family (``"grpo_paper"``, ``"dr_grpo"``, ``"dapo"``, ``"gspo"``, ``"ppo_gae"``):
      ``family_loss`` with ``resolve_hparams(cfg, algo)``. ``len_oi`` is not used (the
      lengths come from ``mask``); ``pi_ref_logprob`` may be None when beta = 0.
      ``advantage`` is (B,) for the group algorithms, (B, T) (whitened GAE) for
      ``"ppo_gae"``, which also needs ``values`` (B, T, with grad), ``old_values`` and
      ``returns`` (B, T), and ``logits`` (B, T, V) for its entropy bonus when
      ``cfg.ent_coef > 0``. A missing one raises ``ValueError`` naming it.

    ``ent_coef`` overrides the entropy-bonus weight of a family algorithm.
    ``return_metrics=True`` returns ``(loss, metrics)``: ``clipfrac`` (verl's pg_clipfrac),
    ``approx_kl`` (k3 of old vs new, CleanRL), ``kl`` to the reference when it is given,
    ``entropy`` when ``logits`` are, ``value_loss`` / ``vf_clipfrac`` for ``"ppo_gae"``
    (see ``family_loss``); for the demo algorithms they are computed on the side and the
    loss is unchanged.
    """
    spec = get_spec(algo)
    if not spec.is_demo:
        hparams = resolve_hparams(cfg, algo)
        loss, metrics = spec(
            pi_logprob, pi_old_logprob, pi_ref_logprob, advantage, mask, hparams,
            kl_in=spec.kl_in, needs_critic=spec.needs_critic, values=values,
            old_values=old_values, returns=returns, logits=logits, ent_coef=ent_coef,
        )
        return (loss, metrics) if return_metrics else loss

    if algo == "ppo":
        # PPO uses no reference, len_oi or group_num
        loss = spec(pi_logprob, pi_old_logprob, advantage, mask, cfg.clip_range)
    else:
        loss = spec(
            pi_logprob=pi_logprob,
            pi_old_logprob=pi_old_logprob,
            pi_ref_logprob=pi_ref_logprob,
            advantage=advantage,
            mask=mask,
            len_oi=len_oi,
            group_num=cfg.group_num,
            clip_range=cfg.clip_range,
            beta_kl=cfg.beta_kl,
        )
    if not return_metrics:
        return loss
    return loss, demo_metrics(spec, pi_logprob, pi_old_logprob, pi_ref_logprob, advantage,
                              mask, cfg, loss, logits)


@torch.no_grad()
def demo_metrics(spec: AlgoSpec, pi_logprob, pi_old_logprob, pi_ref_logprob, advantage, mask,
                 cfg: Config, loss, logits=None) -> dict:
    """The diagnostics of a demo algorithm, computed beside its (unchanged) loss:
    ``loss``, ``clipfrac``, ``clipfrac_dual``, ``approx_kl``, ``ratio_mean``, ``ratio_max``,
    ``kl`` (masked mean of k1, the demo's estimator) when ``pi_ref_logprob`` is given,
    ``entropy`` when ``logits`` are."""
    check_tensor(pi_logprob, "pi_logprob", ndim=2)
    mask = check_mask(mask, pi_logprob.shape, dtype=pi_logprob.dtype)
    metrics = surrogate_metrics(pi_logprob, pi_old_logprob, advantage,
                                eps_low=cfg.clip_range, mask=mask)
    if pi_ref_logprob is not None:
        kl = kl_estimate(pi_logprob, pi_ref_logprob, "k1")  # (B, T)
        metrics["kl"] = float(aggregate(kl, mask, "token-mean"))
    if logits is not None:
        check_logits(logits, pi_logprob)
        metrics["entropy"] = float(aggregate(token_entropy(logits), mask, "token-mean"))
    metrics["loss"] = float(loss.detach())
    return metrics
