"""torch.autograd.gradcheck in float64 for every loss and block that has a gradient.

Inputs are seeded and kept away from the kinks of clip/max (a finite difference across a
kink is not a derivative): log-ratios of scale 0.5 against clip edges at 0.2 / 0.28.
"""

import pytest
import torch
from torch.autograd import gradcheck

import rlviz

D = torch.float64


def _inputs(seed=0, batch=4, seq_len=5):
    g = torch.Generator().manual_seed(seed)
    logp = (torch.randn(batch, seq_len, generator=g, dtype=D) - 1.0).requires_grad_()
    old = logp.detach() + 0.5 * torch.randn(batch, seq_len, generator=g, dtype=D)
    ref = logp.detach() + 0.5 * torch.randn(batch, seq_len, generator=g, dtype=D)
    adv = torch.randn(batch, generator=g, dtype=D)
    mask = rlviz.mask_from_lengths(torch.tensor([5, 3, 1, 0])[:batch], seq_len, dtype=D)
    return logp, old, ref, adv, mask


@pytest.mark.parametrize("kind", ["k1", "k2", "k3"])
def test_kl_estimate(kind):
    logp, _, ref, _, _ = _inputs()
    ref = ref.requires_grad_()
    assert gradcheck(lambda a, b: rlviz.kl_estimate(a, b, kind), (logp, ref))


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages(scale):
    rewards = torch.tensor([0.3, 1.2, -0.5, 0.9, 2.0, 0.1], dtype=D, requires_grad=True)
    assert gradcheck(lambda r: rlviz.group_advantages(r, 3, scale), (rewards,))


@pytest.mark.parametrize("kwargs", [
    {},
    {"eps_high": 0.28},
    {"dual_clip": 1.5},
    {"level": "sequence"},
])
def test_clipped_surrogate(kwargs):
    logp, old, _, adv, mask = _inputs()
    adv = adv.clone().requires_grad_()
    assert gradcheck(
        lambda lp, a: rlviz.clipped_surrogate(lp, old, a, mask=mask, **kwargs), (logp, adv))


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum",
                                  "seq-mean-token-sum-norm"])
def test_aggregate(mode):
    logp, *_, mask = _inputs()
    assert gradcheck(lambda x: rlviz.aggregate(x, mask, mode), (logp,))


def test_gae_whiten_value_loss():
    logp, old, ref, _, mask = _inputs()
    rewards = ref.clone().requires_grad_()
    values = old.clone().requires_grad_()
    assert gradcheck(lambda r, v: rlviz.gae(r, v, mask, 0.9, 0.8), (rewards, values))
    assert gradcheck(lambda x: rlviz.whiten(x, mask), (logp,))
    old_values = values.detach() + 0.5 * torch.randn(values.shape, dtype=D,
                                                      generator=torch.Generator().manual_seed(9))
    returns = rewards.detach()
    assert gradcheck(lambda v: rlviz.value_loss(v, old_values, returns, mask, 0.2), (values,))


def test_token_entropy_and_selective_log_prob():
    logits = torch.randn(2, 3, 6, dtype=D, generator=torch.Generator().manual_seed(4))
    logits.requires_grad_()
    tokens = torch.randint(0, 6, (2, 3), generator=torch.Generator().manual_seed(5))
    assert gradcheck(rlviz.token_entropy, (logits,))
    assert gradcheck(lambda x: rlviz.selective_log_prob(x, tokens), (logits,))


def test_demo_losses():
    logp, old, ref, adv, mask = _inputs()
    len_oi = mask.sum(1)
    assert gradcheck(lambda lp: rlviz.ppo_policy_loss(lp, old, adv, mask, 0.2), (logp,))
    assert gradcheck(lambda lp: rlviz.grpo_loss(lp, old, ref, adv, mask, len_oi, 2, 0.2, 0.01),
                     (logp,))


@pytest.mark.parametrize("algo", ["grpo_paper", "dr_grpo", "dapo", "gspo", "ppo_gae"])
def test_family_losses_through_the_wrapper(algo):
    logp, old, ref, adv, mask = _inputs()
    cfg = rlviz.Config(algo=algo, group_num=2)
    if algo == "gspo":
        cfg.eps_low, cfg.eps_high = 0.2, 0.2  # GSPO's 3e-4 would put every response on the clip
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(4, 5, 3, dtype=D, generator=g).requires_grad_()
    values = torch.randn(4, 5, dtype=D, generator=g).requires_grad_()
    old_values = values.detach() + 0.5 * torch.randn(4, 5, dtype=D, generator=g)
    returns = torch.randn(4, 5, dtype=D, generator=g)

    def loss(lp, lg, v):
        return rlviz.policy_loss_wrapper(algo, lp, old, ref, adv, mask, None, cfg, values=v,
                                         old_values=old_values, returns=returns, logits=lg)

    if algo == "ppo_gae":  # entropy bonus and value loss: gradients to logits and values too
        assert gradcheck(loss, (logp, logits, values))
    else:
        assert gradcheck(lambda lp: loss(lp, logits.detach(), values.detach()), (logp,))


def test_kl_token_rewards():
    logp, _, ref, _, mask = _inputs()
    rewards = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=D, requires_grad=True)
    ref = ref.requires_grad_()
    assert gradcheck(lambda r, lp, rf: rlviz.kl_token_rewards(r, mask, lp, rf, beta=0.1),
                     (rewards, logp, ref))
