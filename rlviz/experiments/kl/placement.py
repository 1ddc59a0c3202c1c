"""Notebook 04, section 4: where the KL goes, in the reward (PPO) or in the loss (GRPO)."""

from __future__ import annotations

import math

import torch

from ...losses.advantages import group_advantages
from ...losses.aggregation import aggregate
from ...losses.critic import gae
from ...losses.kl import kl_estimate
from ...losses.surrogate import clipped_surrogate
from ...masks import mask_from_lengths
from .tokens import exact_kl, sample_from_logp

F64 = torch.float64

# --------------------------------------------------------------------------------------
# 4. Where the KL goes: in the reward (PPO) or in the loss (GRPO), on one batch
# --------------------------------------------------------------------------------------

def kl_placement_batch(beta: float = 0.1, lengths=(8, 5, 7, 3), vocab_size: int = 50,
                       shift: float = 1.5, seed: int = 0) -> dict:
    """One batch of G responses to one prompt, scored both ways.

    Tokens are sampled from the policy at each position (each position has its own
    context distribution); rewards are one scalar per response.

    * PPO (InstructGPT; DeepSeekMath eq. 2): token reward r_t = -beta k1_t, plus the
      scalar reward on the response's last token; advantages by ``gae`` with zero values,
      gamma = lam = 1 (so A_t is the sum of future rewards; no whitening, to keep it
      readable); loss = clipped surrogate, token-mean.
    * GRPO (DeepSeekMath eq. 3): group advantages of the scalar rewards; per-token loss
      = surrogate + beta k3_t; seq-mean-token-mean.

    Returns per-token (B, T) tensors (k1, k3, token rewards, advantages with and without
    the KL, gradient of each loss w.r.t. logp and its KL part) and summary numbers, among
    them GRPO's sampled ``grpo_mean_k3`` = mean_i (1/L_i) sum_t k3_it, its exact expectation
    ``grpo_expected_k3`` (the same weights on the exact per-position KL) and its standard
    error ``grpo_k3_stderr`` (from the exact per-position variance of k3 under pi: one
    sample per position, so the sampled value is noisy).
    """
    lengths = list(lengths)
    batch, seq_len = len(lengths), max(lengths)
    generator = torch.Generator().manual_seed(seed)
    ref_logits = 2.0 * torch.randn(batch, seq_len, vocab_size, generator=generator, dtype=F64)
    policy_logits = ref_logits + shift * torch.randn(batch, seq_len, vocab_size,
                                                     generator=generator, dtype=F64)
    policy_all = policy_logits.log_softmax(-1)  # (B, T, V)
    ref_all = ref_logits.log_softmax(-1)  # (B, T, V)
    uniforms = torch.rand(batch, seq_len, 1, generator=generator, dtype=F64)
    tokens = sample_from_logp(policy_all, uniforms)  # (B, T, 1)
    logp0 = policy_all.gather(-1, tokens).squeeze(-1)  # (B, T)
    ref_logp = ref_all.gather(-1, tokens).squeeze(-1)  # (B, T)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0] * (batch // 4 + 1), dtype=F64)[:batch]  # (B,)
    mask = mask_from_lengths(torch.tensor(lengths), seq_len).to(F64)  # (B, T)
    last = torch.tensor(lengths) - 1  # (B,) index of each response's last token

    k1 = kl_estimate(logp0, ref_logp, "k1") * mask  # (B, T)
    k3 = kl_estimate(logp0, ref_logp, "k3") * mask  # (B, T)

    def ppo(beta_):
        token_rewards = -beta_ * k1  # (B, T)
        token_rewards = token_rewards.index_put((torch.arange(batch), last),
                                                token_rewards[torch.arange(batch), last] + rewards)
        adv, _ = gae(token_rewards, torch.zeros_like(token_rewards), mask, gamma=1.0, lam=1.0)
        logp = logp0.clone().requires_grad_(True)
        loss = aggregate(clipped_surrogate(logp, logp0, adv), mask, "token-mean")
        (grad,) = torch.autograd.grad(loss, logp)
        return token_rewards, adv, loss.item(), grad

    def grpo(beta_):
        adv = group_advantages(rewards, batch)  # (B,)
        logp = logp0.clone().requires_grad_(True)
        per_token = clipped_surrogate(logp, logp0, adv) + beta_ * kl_estimate(logp, ref_logp)
        loss = aggregate(per_token, mask, "seq-mean-token-mean")
        (grad,) = torch.autograd.grad(loss, logp)
        return adv, loss.item(), grad

    ppo_rewards, ppo_adv, ppo_loss, ppo_grad = ppo(beta)
    _, ppo_adv0, ppo_loss0, ppo_grad0 = ppo(0.0)
    grpo_adv, grpo_loss_value, grpo_grad = grpo(beta)
    _, grpo_loss0, grpo_grad0 = grpo(0.0)
    lengths_t = torch.tensor(lengths, dtype=F64)
    weights = mask / (lengths_t.view(-1, 1) * batch)  # (B, T) seq-mean-token-mean weights
    kl_all = exact_kl(policy_all, ref_all)  # (B, T) exact KL(pi || ref) per position
    d_all = ref_all - policy_all  # (B, T, V) log r for every token of the vocabulary
    k3_all = torch.expm1(d_all) - d_all  # (B, T, V)
    k3_var = (policy_all.exp() * k3_all**2).sum(-1) - kl_all**2  # (B, T) Var_pi[k3]
    return {
        "beta": beta, "lengths": lengths, "mask": mask, "rewards": rewards,
        "logp": logp0, "ref_logp": ref_logp, "k1": k1, "k3": k3,
        "policy_logp_all": policy_all, "ref_logp_all": ref_all,  # (B, T, V) per position
        "exact_kl": (exact_kl(policy_all, ref_all) * mask).sum().item() / mask.sum().item(),
        "ppo_token_rewards": ppo_rewards, "ppo_advantages": ppo_adv,
        "ppo_advantages_no_kl": ppo_adv0, "ppo_loss": ppo_loss, "ppo_loss_no_kl": ppo_loss0,
        "ppo_grad": ppo_grad, "ppo_kl_grad": ppo_grad - ppo_grad0,
        "ppo_sequence_k1": k1.sum(-1),  # (B,) what -beta * (.) subtracts from each return
        "grpo_advantages": grpo_adv, "grpo_loss": grpo_loss_value, "grpo_loss_no_kl": grpo_loss0,
        "grpo_grad": grpo_grad, "grpo_kl_grad": grpo_grad - grpo_grad0,
        "grpo_mean_k3": ((k3.sum(-1) / lengths_t).mean()).item(),
        "grpo_expected_k3": (weights * kl_all).sum().item(),
        "grpo_k3_stderr": math.sqrt((weights**2 * k3_var).sum().item()),
    }


def kl_placement_gradient_checks(batch: dict, atol: float = 1e-12) -> dict[str, bool]:
    """Do the KL parts of the gradients in ``kl_placement_batch``'s output (autograd) match
    the formulas of notebook 04, section 5?

    * ``ppo``: d loss / d logp_t = beta * sum_{t' >= t} k1_t' / N_tokens (PPO, token-mean,
      KL in the reward: the KL of everything after t enters A_t);
    * ``grpo``: beta * (1 - r_t) / (G L_i) with r_t = ref / pi at token t (GRPO, k3 in the
      loss, seq-mean-token-mean).
    """
    beta, mask, k1 = batch["beta"], batch["mask"], batch["k1"]
    future_k1 = k1.flip(-1).cumsum(-1).flip(-1)  # (B, T) sum over t' >= t
    ppo = beta * future_k1 * mask / mask.sum()  # (B, T)
    lengths = mask.sum(-1, keepdim=True)  # (B, 1)
    ratio = torch.exp(batch["ref_logp"] - batch["logp"])  # (B, T)
    grpo = beta * (1 - ratio) * mask / (lengths * mask.shape[0])  # (B, T)
    return {"ppo": torch.allclose(batch["ppo_kl_grad"], ppo, atol=atol),
            "grpo": torch.allclose(batch["grpo_kl_grad"], grpo, atol=atol)}
