"""Notebook 04, section 3: the estimators used as a loss, their gradients in expectation
(by enumeration)."""

from __future__ import annotations

import math

import torch

from ...losses.kl import KL_KINDS, kl_estimate
from .tokens import exact_kl, token_distributions

F64 = torch.float64

# --------------------------------------------------------------------------------------
# 3. Gradients: the estimators used as a loss, in expectation, by enumeration
# --------------------------------------------------------------------------------------

def expected_gradients(policy_logits: torch.Tensor, ref_logp: torch.Tensor) -> dict:
    """Exact expected gradients w.r.t. the policy logits (V,), by summing over the vocabulary.

    A loss "k on samples x ~ pi_theta" has, with the samples held fixed as autograd does,
    expected gradient sum_x pi(x) grad_theta k(x). Keys:

    * ``k1_loss``, ``k2_loss``, ``k3_loss``: that, for each estimator used as a loss;
    * ``k1_reward``: sum_x pi(x) k1(x) grad log pi(x), the score-function (REINFORCE)
      gradient of k1 used as a (detached) per-token penalty in the reward, as PPO does;
    * ``reverse_kl``: grad KL(pi_theta || ref); ``forward_kl``: grad KL(ref || pi_theta);
    * ``k1_loss_uniform``: k1 used as a loss on tokens drawn uniformly (as the demo's
      ``make_fake_batch`` does), (1/V) sum_x grad k1(x); ``uniform_kl``: grad KL(U || pi_theta).

    Expected: k1_loss = 0, k2_loss = reverse_kl = k1_reward, k3_loss = forward_kl, and
    k1_loss_uniform = -uniform_kl (a push away from uniform, not zero).
    """
    logits = policy_logits.detach().to(F64)
    ref_logp = ref_logp.detach().to(F64)

    def grad_of(fn) -> torch.Tensor:
        theta = logits.clone().requires_grad_(True)
        logp = theta.log_softmax(-1)  # (V,)
        (grad,) = torch.autograd.grad(fn(logp), theta)
        return grad  # (V,)

    def as_loss(kind):
        return lambda logp: (logp.exp().detach() * kl_estimate(logp, ref_logp, kind)).sum()

    grads = {f"{kind}_loss": grad_of(as_loss(kind)) for kind in KL_KINDS}
    grads["k1_reward"] = grad_of(lambda logp: (
        logp.exp().detach() * kl_estimate(logp, ref_logp, "k1").detach() * logp).sum())
    grads["reverse_kl"] = grad_of(lambda logp: exact_kl(logp, ref_logp))
    grads["forward_kl"] = grad_of(lambda logp: exact_kl(ref_logp, logp))
    grads["k1_loss_uniform"] = grad_of(lambda logp: kl_estimate(logp, ref_logp, "k1").mean())
    uniform = torch.full_like(ref_logp, -math.log(ref_logp.shape[-1]))  # (V,) log(1/V)
    grads["uniform_kl"] = grad_of(lambda logp: exact_kl(uniform, logp))
    return grads


def gradient_agreement(shifts, vocab_size: int = 50, ref_scale: float = 1.0,
                       seed: int = 0) -> dict[str, list[float]]:
    """How far apart the expected gradients of k2 and k3 (as losses) are as the policy drifts.

    For each logit shift: KL(pi || ref) and ||g_k2 - g_k3|| / ||g_k2||, which goes to 0
    (linearly) as pi -> ref: the two agree to first order near the reference.
    """
    kls, rel_diffs, cosines = [], [], []
    for shift in shifts:
        policy_logp, ref_logp = token_distributions(vocab_size, float(shift), 1.0, ref_scale,
                                                    seed)
        grads = expected_gradients(policy_logp, ref_logp)
        g2, g3 = grads["k2_loss"], grads["k3_loss"]
        kls.append(exact_kl(policy_logp, ref_logp).item())
        rel_diffs.append(((g2 - g3).norm() / g2.norm()).item())
        cosines.append(torch.nn.functional.cosine_similarity(g2, g3, dim=0).item())
    return {"shift": [float(s) for s in shifts], "kl": kls, "relative_difference": rel_diffs,
            "cosine": cosines}
