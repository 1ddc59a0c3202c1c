"""The registry entries rloo, reinforce_pp, reinforce_pp_baseline, cispo, sapo and gmpo:
their losses and advantages through the public interface, against float64 loops."""

import math

import pytest
import torch

import rlviz
from rlviz import Config, algo_advantages, policy_loss_wrapper

NEW = ("rloo", "reinforce_pp", "reinforce_pp_baseline", "cispo", "sapo", "gmpo", "clip_cov",
       "kl_cov")


def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(4, 3, generator=g, dtype=torch.float64) * 2
    old = logp + 0.3 * torch.randn(4, 3, generator=g, dtype=torch.float64)
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.float64)
    return logp, old, adv, mask


def loss_of(algo, logp, old, adv, mask):
    return policy_loss_wrapper(algo, logp, old, None, adv, mask, mask.sum(1),
                               Config(algo=algo, device="cpu"), ent_coef=0.0)


def test_every_new_algorithm_is_registered_with_library_data():
    for algo in NEW:
        spec = rlviz.get_spec(algo)
        assert spec.paper and spec.summary and spec.trl is not None and spec.verl is not None


def test_cispo_loss_is_the_token_mean_of_the_loop():
    logp, old, adv, mask = batch()
    terms = [-min(max(math.exp(logp[i, t] - old[i, t]), 0.01), 5.0) * adv[i] * logp[i, t]
             for i in range(4) for t in range(3) if mask[i, t]]
    assert loss_of("cispo", logp, old, adv, mask).item() == pytest.approx(sum(terms) / len(terms))


def test_sapo_loss_is_the_seq_mean_token_mean_of_the_loop():
    logp, old, adv, mask = batch(1)
    per_sequence = []
    for i in range(4):
        tau = 1.0 if adv[i] > 0 else 1.05
        terms = [-(4 / tau) / (1 + math.exp(-tau * (math.exp(logp[i, t] - old[i, t]) - 1)))
                 * adv[i].item() for t in range(3) if mask[i, t]]
        per_sequence.append(sum(terms) / len(terms))
    assert loss_of("sapo", logp, old, adv, mask).item() == pytest.approx(sum(per_sequence) / 4)


def test_gmpo_loss_is_the_mean_over_sequences_of_the_loop():
    logp, old, adv, mask = batch(2)
    losses = []
    for i in range(4):
        a = adv[i].item()
        sign = (a > 0) - (a < 0)
        logs = [sign * min(sign * lr, sign * min(max(lr, -0.4), 0.4))
                for lr in ((logp[i, t] - old[i, t]).item() for t in range(3) if mask[i, t])]
        losses.append(-a * math.exp(sum(logs) / len(logs)))
    assert loss_of("gmpo", logp, old, adv, mask).item() == pytest.approx(sum(losses) / 4)


def test_rloo_takes_the_summed_k1_off_the_reward_then_leaves_one_out():
    logp, _, _, mask = batch(3)
    ref = logp - 0.5 * torch.ones_like(logp)  # k1 = 0.5 per token
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5], dtype=torch.float64)
    hp = rlviz.TrainConfig(algo="rloo").hparams()
    adv, returns = algo_advantages(hp, rewards, mask, group_size=2, logp=logp, ref_logp=ref)
    shaped = [rewards[i].item() - hp.beta * 0.5 * mask[i].sum().item() for i in range(4)]
    expected = [shaped[0] - shaped[1], shaped[1] - shaped[0],
                shaped[2] - shaped[3], shaped[3] - shaped[2]]
    assert returns is None and adv.tolist() == pytest.approx(expected)


def test_reinforce_pp_by_hand():
    mask = torch.ones(2, 2, dtype=torch.float64)
    rewards = torch.tensor([1.0, 0.0], dtype=torch.float64)
    hp = rlviz.TrainConfig(algo="reinforce_pp").hparams()
    adv, _ = algo_advantages(hp, rewards, mask, group_size=2)
    # returns [[1, 1], [0, 0]]: mean 1/2, unbiased variance (4 * 1/4) / 3 = 1/3
    value = 0.5 / math.sqrt(1 / 3 + 1e-8)
    assert adv.flatten().tolist() == pytest.approx([value, value, -value, -value])


@pytest.mark.parametrize("algo", NEW)
def test_the_cli_accepts_every_new_algorithm(algo):
    from rlviz.cli import build_parser

    args = build_parser().parse_args(["train", "--algo", algo])
    assert args.algo == algo
