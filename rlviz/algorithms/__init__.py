"""Algorithms: which loss, which advantages, which defaults, and what TRL and verl call it.

Sits between the math (``rlviz.losses``, pure torch) and everything that trains:

    cfg.hparams()                     -> HParams (defaults of cfg.algo, then cfg's overrides)
    algo_advantages(hp, rewards, ...) -> the advantages cfg.algo asks for
    policy_loss_wrapper(cfg.algo, ...) -> LOSS_FN_REGISTRY[cfg.algo].loss_fn(batch, hp)
    compute_loss(batch, hp)           -> the loss of the whole family, on one screen
"""

from __future__ import annotations

from dataclasses import replace

from . import recent  # noqa: F401  (registers rloo, reinforce_pp, cispo, sapo, gmpo, ...)
from .hparams import HPARAM_NAMES, OVERRIDABLE, HParams, resolve
from .library import TRL_VERSION, VERL_VERSION, LibraryRecipe
from .loss import ADVANTAGES, LossBatch, algo_advantages, clip_policy_term, compute_loss
from .registry import LOSS_FN_REGISTRY, AlgoSpec, get_spec, register
from .table import loss_table, loss_table_markdown


def resolve_hparams(cfg, algo: str | None = None) -> HParams:
    """The ``HParams`` algorithm ``algo`` (default ``cfg.algo``) runs with under ``cfg``:
    ``HParams``' defaults, the algorithm's own (``get_spec(algo).defaults``), then every
    field of ``cfg`` of the same name that is not None (see ``AlgoSpec.config_names``)."""
    return resolve(get_spec(cfg.algo if algo is None else algo), vars(cfg))


def policy_loss_wrapper(algo, pi_logprob, pi_old_logprob, pi_ref_logprob, advantage, mask,
                        len_oi, cfg, *, values=None, old_values=None, returns=None,
                        logits=None, ent_coef: float | None = None,
                        return_metrics: bool = False):
    """One interface for every algorithm: only ``algo`` (usually ``cfg.algo``) changes.

    Looks ``algo`` up in ``LOSS_FN_REGISTRY`` (the demo used an if/elif; an unknown name
    raises ``ValueError`` listing the known ones) and calls its ``loss_fn`` with the
    hyper-parameters ``resolve_hparams(cfg, algo)``. The demo's ``"ppo"`` / ``"grpo"``
    compute exactly the demo's losses (bit for bit); the keyword arguments only feed
    their metrics. The family needs ``pi_ref_logprob`` when beta > 0; ``"ppo_gae"`` also
    ``values`` (with grad), ``old_values``, ``returns`` (B, T), and ``logits`` (B, T, V)
    whenever an entropy bonus is on. ``ent_coef`` overrides the entropy weight.
    ``return_metrics=True`` returns ``(loss, metrics)`` (see ``compute_loss``).
    """
    spec = get_spec(algo)
    hp = resolve_hparams(cfg, algo)
    if ent_coef is not None:  # the demo's losses have no entropy term and ignore it
        hp = replace(hp, ent_coef=ent_coef)
    batch = LossBatch(pi_logprob, pi_old_logprob, pi_ref_logprob, advantage, mask, len_oi,
                      values, old_values, returns, logits)
    loss, metrics = spec.loss_fn(batch, hp)
    return (loss, metrics) if return_metrics else loss


__all__ = [
    "ADVANTAGES", "AlgoSpec", "HPARAM_NAMES", "HParams", "LOSS_FN_REGISTRY", "LibraryRecipe",
    "LossBatch", "OVERRIDABLE", "TRL_VERSION", "VERL_VERSION", "algo_advantages",
    "clip_policy_term", "compute_loss", "get_spec", "loss_table", "loss_table_markdown", "policy_loss_wrapper", "register",
    "resolve_hparams",
]
