"""``LOSS_FN_REGISTRY``: algorithm name -> ``AlgoSpec``, and ``policy_loss_wrapper``.

A spec says everything a trainer needs to run an algorithm: the loss, how advantages
are computed, where the KL goes, whether a critic is needed, and its default
hyper-parameters. Calling a spec calls its loss, so ``LOSS_FN_REGISTRY[algo](...)``
still works the way the demo's prose describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..config import Config
from .demo import grpo_loss, ppo_policy_loss

# Fields of Config that override an algorithm's default hyper-parameters when not None.
OVERRIDE_FIELDS = (
    "eps_low", "eps_high", "dual_clip", "beta", "kl_estimator", "adv_scale",
    "loss_agg_mode", "max_len", "gamma", "lam",
)


@dataclass(frozen=True)
class AlgoSpec:
    """One algorithm of the family.

    name:          registry key (``cfg.algo``)
    loss_fn:       the policy loss (demo algorithms: the demo's function and arguments)
    advantage:     "batch-centred" (the demo's r - mean(r)), "group" or "gae"
    kl_in:         where the KL to the reference goes: "loss", "reward" or "none"
    needs_critic:  True when the algorithm trains a value head
    defaults:      default hyper-parameters (keys of ``OVERRIDE_FIELDS`` and the demo's)
    paper, trl, verl, summary: for the loss table in the README and notebooks
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
}


def get_spec(algo: str) -> AlgoSpec:
    """The registry entry for ``algo``; a ``ValueError`` listing the known names otherwise."""
    if not isinstance(algo, str) or algo not in LOSS_FN_REGISTRY:
        known = ", ".join(repr(k) for k in LOSS_FN_REGISTRY)
        raise ValueError(f"Unknown algo: {algo!r}. Known algorithms: {known}")
    return LOSS_FN_REGISTRY[algo]


def resolve_hparams(cfg: Config) -> dict:
    """The hyper-parameters ``cfg.algo`` runs with: the spec's defaults, the demo's
    ``clip_range`` / ``beta_kl`` for the demo algorithms, then every non-None override."""
    spec = get_spec(cfg.algo)
    hp = dict(spec.defaults)
    if spec.is_demo:
        hp["eps_low"] = hp["eps_high"] = cfg.clip_range
        if spec.kl_in != "none":
            hp["beta"] = cfg.beta_kl
    for name in OVERRIDE_FIELDS:
        value = getattr(cfg, name)
        if value is not None:
            hp[name] = value
    if hp.get("eps_high") is None and "eps_low" in hp:
        hp["eps_high"] = hp["eps_low"]
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
):
    """One interface for every algorithm: only ``cfg.algo`` changes.

    Dispatches through ``LOSS_FN_REGISTRY`` (the demo used an if/elif); an unknown
    ``algo`` raises ``ValueError`` listing the known ones.
    """
    spec = get_spec(algo)
    if algo == "ppo":
        # PPO uses no reference, len_oi or group_num
        return spec(pi_logprob, pi_old_logprob, advantage, mask, cfg.clip_range)
    return spec(
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
