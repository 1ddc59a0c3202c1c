"""The 2025 additions to the family: RLOO, REINFORCE++ (and its group-baseline variant),
CISPO, SAPO and GMPO. Each is a registry entry; the per-token math is in
``rlviz.losses.policy_terms`` (pure torch), this module only wires it into ``compute_loss``
and ``algo_advantages`` and records the TRL 1.16.0 / verl 0.9.1 settings as data.

    loss = agg( policy_term + beta * KL ) - ent_coef * agg(entropy)       (compute_loss)

with ``policy_term`` the clipped surrogate (RLOO, REINFORCE++), CISPO's
``-sg(clip(rho)) A log pi``, SAPO's ``-(4/tau) sigmoid(tau (rho - 1)) A``, or GMPO's
per-sequence geometric mean (spread over the sequence's tokens, so that
seq-mean-token-mean gives GMPO's mean over sequences).
"""

from __future__ import annotations

import torch

from ..losses.policy_terms import (
    cispo_term,
    clip_cov_term,
    gmpo_sequence_loss,
    kl_cov_term,
    reinforce_pp_advantages,
    rloo_advantages,
    sapo_term,
)
from .hparams import HParams
from .library import ACTOR, trl, unsupported, verl
from .loss import ADVANTAGES, LossBatch, compute_loss
from .registry import NO_CRITIC_COEFS, VERL_DUAL_CLIP, AlgoSpec, register

# ---- advantages -------------------------------------------------------------------------


def leave_one_out_advantages(hp, rewards, mask, group_size, values, logp, ref_logp):
    """RLOO's, (B,): with ``kl_in="reward"`` and beta > 0 the sequence's summed k1,
    beta * sum_t (log pi_old - log pi_ref), is first taken off its reward (TRL 1.16.0
    ``RLOOTrainer``: ``per_token_kl = old_per_token_logps - ref_per_token_logps``,
    ``rewards = rewards - self.beta * kl``); then r_i - mean_{j != i} r_j."""
    if group_size is None:
        raise ValueError("group_size is needed for RLOO advantages (cfg.group_num)")
    if hp.kl_in == "reward" and hp.beta > 0:
        if logp is None or ref_logp is None:
            raise ValueError("logp and ref_logp are needed for the KL in RLOO's reward")
        rewards = rewards - hp.beta * ((logp - ref_logp) * mask).sum(dim=1)  # (B,)
    return rloo_advantages(rewards, group_size), None


def reinforce_pp_global(hp, rewards, mask, group_size, values, logp, ref_logp):
    """REINFORCE++'s: returns of the final reward, whitened over the batch, (B, T)."""
    return reinforce_pp_advantages(rewards, mask, None, hp.gamma), None


def reinforce_pp_group_baseline(hp, rewards, mask, group_size, values, logp, ref_logp):
    """REINFORCE++-baseline's: reward minus the group mean, whitened over the batch, (B, T)."""
    if group_size is None:
        raise ValueError("group_size is needed for REINFORCE++-baseline (cfg.group_num)")
    return reinforce_pp_advantages(rewards, mask, group_size, hp.gamma), None


ADVANTAGES.update({
    "rloo": leave_one_out_advantages,
    "reinforce_pp": reinforce_pp_global,
    "reinforce_pp_baseline": reinforce_pp_group_baseline,
})

# ---- policy terms ---------------------------------------------------------------------


def cispo_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    return cispo_term(batch.logp, batch.old_logp, batch.advantages, hp.eps_low, hp.eps_high)


def sapo_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    return sapo_term(batch.logp, batch.old_logp, batch.advantages, hp.tau_pos, hp.tau_neg)


def gmpo_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    """GMPO's per-sequence loss on every token of its sequence, (B, T): aggregated with
    seq-mean-token-mean this is the mean over sequences, GMPO's (and verl's) batch loss."""
    per_sequence = gmpo_sequence_loss(batch.logp, batch.old_logp, batch.advantages, mask,
                                      hp.eps_low, hp.eps_high)  # (B,)
    return per_sequence[:, None] * mask  # (B, T)


def clip_cov_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    """Clip-Cov's tokens are drawn with a generator seeded by the number of valid tokens,
    so a run is deterministic (verl draws with the global torch.randperm)."""
    generator = torch.Generator().manual_seed(int(mask.sum()))
    return clip_cov_term(batch.logp, batch.old_logp, batch.advantages, mask, hp.eps_low,
                         hp.eps_high, hp.clip_cov_ratio, hp.clip_cov_lb, hp.clip_cov_ub,
                         generator)


def kl_cov_policy_term(batch: LossBatch, hp: HParams, mask: torch.Tensor) -> torch.Tensor:
    return kl_cov_term(batch.logp, batch.old_logp, batch.advantages, mask, hp.kl_cov_ratio,
                       hp.ppo_kl_coef)


def clip_cov_loss(batch: LossBatch, hp: HParams):
    return compute_loss(batch, hp, policy_term=clip_cov_policy_term)


def kl_cov_loss(batch: LossBatch, hp: HParams):
    return compute_loss(batch, hp, policy_term=kl_cov_policy_term)


def cispo_loss(batch: LossBatch, hp: HParams):
    return compute_loss(batch, hp, policy_term=cispo_policy_term)


def sapo_loss(batch: LossBatch, hp: HParams):
    return compute_loss(batch, hp, policy_term=sapo_policy_term)


def gmpo_loss(batch: LossBatch, hp: HParams):
    return compute_loss(batch, hp, policy_term=gmpo_policy_term)


# ---- the registry entries -------------------------------------------------------------

register(AlgoSpec(
    name="rloo", advantage="rloo", kl_in="reward", needs_critic=False,
    defaults={"beta": 0.05, "kl_estimator": "k1", "loss_agg_mode": "token-mean"},
    config_names=NO_CRITIC_COEFS,
    table_notes={"advantages": "r - mean of the other G - 1 rewards of the group",
                 "kl": "- beta * sum_t k1 off the response's reward, beta = 0.05"},
    paper="RLOO: Ahmadian et al. 2024, 'Back to Basics', arXiv 2402.14740 (leave-one-out "
          "baseline, Kool et al. 2019)",
    summary="A_i = r_i - mean of the other G-1 rewards (= G/(G-1) x GRPO's centring, no std); "
            "beta * sum k1 off the reward",
    trl=unsupported("trl", "RLOO is TRL 1.16.0's RLOOTrainer (RLOOConfig: beta=0.05, "
                           "epsilon=0.2, normalize_advantages=False), not a GRPOConfig "
                           "loss_type"),
    verl=verl({"algorithm.adv_estimator": "rloo", "algorithm.use_kl_in_reward": True,
               "algorithm.kl_penalty": "kl", "algorithm.kl_ctrl.kl_coef": 0.05,
               f"{ACTOR}.use_kl_loss": False, f"{ACTOR}.loss_agg_mode": "token-mean"},
              VERL_DUAL_CLIP,
              "verl puts the KL on every token's reward (use_kl_in_reward); the summed "
              "score is the same"),
))


def reinforce_pp_spec(name: str, verl_estimator: str, advantages: str, summary: str,
                      paper: str) -> AlgoSpec:
    """A REINFORCE++ entry: PPO's clipped surrogate on batch-whitened advantages, token-mean,
    no KL; verl's ``algorithm.adv_estimator`` names the variant (TRL 1.16.0 has none)."""
    return AlgoSpec(
        name=name, advantage=name, kl_in="none", needs_critic=False,
        defaults={"loss_agg_mode": "token-mean"}, config_names=NO_CRITIC_COEFS,
        table_notes={"advantages": advantages}, paper=paper, summary=summary,
        trl=unsupported("trl", "TRL 1.16.0 has no REINFORCE++ estimator"),
        verl=verl({"algorithm.adv_estimator": verl_estimator, f"{ACTOR}.use_kl_loss": False,
                   f"{ACTOR}.loss_agg_mode": "token-mean"}, VERL_DUAL_CLIP))


register(reinforce_pp_spec(
    "reinforce_pp", "reinforce_plus_plus", "return of r, whitened over the batch",
    "returns of the reward, whitened over the whole batch (no critic, no group std)",
    "REINFORCE++: Hu et al. 2025, arXiv 2501.03262 (global advantage normalisation)"))
register(reinforce_pp_spec(
    "reinforce_pp_baseline", "reinforce_plus_plus_baseline",
    "r - group mean, whitened over the batch",
    "reward minus the group mean, then whitened over the whole batch",
    "REINFORCE++-baseline: Hu et al. 2025, arXiv 2501.03262"))
register(AlgoSpec(
    name="cispo", advantage="group", kl_in="none", needs_critic=False,
    # MiniMax-M1 sets no lower bound ("a large value" for eps_low); 0.99 (rho >= 0.01) is
    # the largest the clip checks accept (eps_low < 1)
    defaults={"eps_low": 0.99, "eps_high": 4.0, "adv_scale": "group",
              "loss_agg_mode": "token-mean"},
    loss_fn=cispo_loss, config_names=NO_CRITIC_COEFS,
    paper="CISPO: MiniMax-M1, arXiv 2506.13585 (eq. 4-5; no lower bound on the weight); "
          "eps_high 4 (rho <= 5) is ScaleRL's eps_max = 5, arXiv 2510.13786",
    summary="-sg(clip(rho, 1-eps_low, 1+eps_high)) * A * log pi: every token keeps a gradient",
    trl=trl({"loss_type": "cispo", "epsilon_high": 5.0, "beta": 0.0},
            "TRL's epsilon_high is the bound on rho itself (clamp(coef_1, max=epsilon_high)), "
            "not 1 + eps; it has no lower bound",
            "TRL's 'cispo' normalises like 'dapo' (tokens of the whole accumulated batch)"),
    verl=verl({**{"algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False},
               f"{ACTOR}.policy_loss.loss_mode": "cispo", f"{ACTOR}.use_kl_loss": False,
               f"{ACTOR}.loss_agg_mode": "token-mean",
               f"{ACTOR}.clip_ratio_low": 0.99, f"{ACTOR}.clip_ratio_high": 4.0}),
))
register(AlgoSpec(
    name="sapo", advantage="group", kl_in="none", needs_critic=False,
    defaults={"tau_pos": 1.0, "tau_neg": 1.05, "adv_scale": "group",
              "loss_agg_mode": "seq-mean-token-mean"},
    loss_fn=sapo_loss, config_names=NO_CRITIC_COEFS,
    table_notes={"defaults": "tau 1.0 (A > 0) / 1.05 (A <= 0), no clip"},
    paper="SAPO: Soft Adaptive Policy Optimization, arXiv 2511.20347",
    summary="-(4/tau) sigmoid(tau (rho - 1)) * A: a soft gate, tau 1.0 (A > 0) / 1.05",
    trl=trl({"loss_type": "sapo", "sapo_temperature_pos": 1.0,
             "sapo_temperature_neg": 1.05, "beta": 0.0}),
    verl=verl({"algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False,
               f"{ACTOR}.policy_loss.loss_mode": "sapo", f"{ACTOR}.tau_pos": 1.0,
               f"{ACTOR}.tau_neg": 1.05, f"{ACTOR}.use_kl_loss": False},
              "verl's sapo always aggregates seq-mean-token-mean (loss_agg_mode is "
              "ignored: agg_loss(..., loss_agg_mode=\"seq-mean-token-mean\"))"),
))
register(AlgoSpec(
    name="gmpo", advantage="group", kl_in="none", needs_critic=False,
    defaults={"eps_low": 0.4, "eps_high": 0.4, "adv_scale": "group",
              "loss_agg_mode": "seq-mean-token-mean"},
    loss_fn=gmpo_loss, config_names=NO_CRITIC_COEFS,
    table_notes={"defaults": "log-ratio clip -0.4 / 0.4 (rho in e^-0.4 .. e^0.4)"},
    paper="GMPO: Geometric-Mean Policy Optimization, arXiv 2507.20673 (eq. 5; clip "
          "(e^-0.4, e^0.4) in log space)",
    summary="-A * exp(mean_t clipped log rho): the geometric mean of the token ratios",
    trl=unsupported("trl", "TRL 1.16.0 has no geometric-mean loss"),
    verl=verl({"algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False,
               f"{ACTOR}.policy_loss.loss_mode": "geo_mean", f"{ACTOR}.use_kl_loss": False,
               f"{ACTOR}.clip_ratio_low": 0.4, f"{ACTOR}.clip_ratio_high": 0.4},
              "verl's geo_mean averages over sequences with torch.mean and ignores "
              "loss_agg_mode"),
))

COV_PAPER = ("Clip-Cov / KL-Cov: Cui et al. 2025, 'The Entropy Mechanism of Reinforcement "
             "Learning for Reasoning Language Models', arXiv 2505.22617")
COV_VERL = {"algorithm.adv_estimator": "grpo", "algorithm.use_kl_in_reward": False,
            f"{ACTOR}.use_kl_loss": False, f"{ACTOR}.loss_agg_mode": "token-mean"}
register(AlgoSpec(
    name="clip_cov", advantage="group", kl_in="none", needs_critic=False,
    defaults={"adv_scale": "group", "loss_agg_mode": "token-mean"},
    loss_fn=clip_cov_loss, config_names=NO_CRITIC_COEFS,
    table_notes={"defaults": "eps 0.2 / 0.2; drops max(1, 2e-4 x tokens) tokens with "
                             "1 < cov < 5"},
    paper=COV_PAPER,
    summary="clipped surrogate, minus the loss of a few high-covariance tokens (entropy)",
    trl=unsupported("trl", "TRL 1.16.0 has no Clip-Cov loss"),
    verl=verl({**COV_VERL, f"{ACTOR}.policy_loss.loss_mode": "clip_cov",
               f"{ACTOR}.policy_loss.clip_cov_ratio": 2e-4,
               f"{ACTOR}.policy_loss.clip_cov_lb": 1.0, f"{ACTOR}.policy_loss.clip_cov_ub": 5.0},
              "verl draws the dropped tokens with the global torch.randperm; rlviz seeds "
              "a generator per minibatch"),
))
register(AlgoSpec(
    name="kl_cov", advantage="group", kl_in="none", needs_critic=False,
    defaults={"adv_scale": "group", "loss_agg_mode": "token-mean"},
    loss_fn=kl_cov_loss, config_names=NO_CRITIC_COEFS,
    table_notes={"defaults": "no clip; + 1.0 x |log rho| on the top 2e-4 x tokens by cov"},
    paper=COV_PAPER,
    summary="unclipped -A rho, + |log rho| on the highest-covariance tokens (entropy)",
    trl=unsupported("trl", "TRL 1.16.0 has no KL-Cov loss"),
    verl=verl({**COV_VERL, f"{ACTOR}.policy_loss.loss_mode": "kl_cov",
               f"{ACTOR}.policy_loss.kl_cov_ratio": 2e-4,
               f"{ACTOR}.policy_loss.ppo_kl_coef": 1.0}),
))
