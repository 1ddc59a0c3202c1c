"""The original demo's fake data, advantage and training loop, reproduced exactly.

``main`` prints the demo's lines ("Using algo: grpo", "step 0: loss = -0.0000", ...).
"""

from __future__ import annotations

import torch

from .algorithms import policy_loss_wrapper
from .config import Config
from .losses.checks import check_one_of
from .masks import compute_mask
from .models import TinyPolicy


def make_fake_batch(cfg: Config, bs: int):
    """A random batch: input_ids (B, T), actions (B, T), rewards (B,).

    Differs from a real rollout: actions are uniform random tokens (not sampled from the
    policy), every row has its own random prompt (no group shares one), and rewards are
    N(0, 1) noise unrelated to the actions (notebooks 04 and 06).
    """
    device = cfg.device
    seq_len = cfg.seq_len
    vocab = cfg.vocab_size

    input_ids = torch.randint(0, vocab, (bs, seq_len), device=device)  # (B, T)
    actions = torch.randint(0, vocab, (bs, seq_len), device=device)  # (B, T)

    rewards = torch.randn(bs, device=device)  # (B,)
    return input_ids, actions, rewards


def compute_advantage_from_reward(rewards: torch.Tensor):
    """The demo's advantage: A = r - mean(r) over the whole batch, (B,).

    Differs from GRPO: centred over the batch, not per prompt group, and not divided by
    a std (notebook 05; ``rlviz.group_advantages`` is the standard form).
    """
    adv = rewards - rewards.mean()
    return adv


def train_step(
    cfg: Config,
    policy: TinyPolicy,
    ref_policy: TinyPolicy,
    optimizer: torch.optim.Optimizer,
    input_ids,
    actions,
    rewards,
):
    """One optimisation step of the demo; returns ``loss.item()``.

    Differs from PPO/GRPO: ``pi_old`` is the current policy under ``no_grad`` in the same
    step (the demo's docstring says it comes from ``ref_policy``; its code uses
    ``policy``), so rho = 1 on every token and clipping never acts (notebook 01).
    """
    device = cfg.device

    # old policy and reference: no gradient
    with torch.no_grad():
        pi_old_logprob = policy.log_prob(input_ids, actions)  # (B, T), the "old" policy
        pi_ref_logprob = ref_policy.log_prob(input_ids, actions)  # (B, T), used by GRPO

    pi_logprob = policy.log_prob(input_ids, actions)  # (B, T), with gradient

    advantage = compute_advantage_from_reward(rewards)  # (B,)

    bs, seq_len = pi_logprob.shape
    mask = compute_mask(bs, seq_len, cfg.input_len, device, pi_logprob.dtype)  # (B, T)

    # every response has the same length here
    len_oi = torch.full((bs,), seq_len - cfg.input_len, device=device, dtype=torch.long)

    loss = policy_loss_wrapper(
        algo=cfg.algo,
        pi_logprob=pi_logprob,
        pi_old_logprob=pi_old_logprob,
        pi_ref_logprob=pi_ref_logprob,
        advantage=advantage,
        mask=mask,
        len_oi=len_oi,
        cfg=cfg,
    )

    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

    return loss.item()


def demo_models(cfg: Config, optimizer: str = "adam", dtype: torch.dtype | None = None):
    """The demo's set-up: a ``TinyPolicy`` on ``cfg.device``, a frozen reference copy of it
    (the same weights, never trained) and the policy's optimizer at ``cfg.lr`` ("adam", as
    the demo, or "sgd"). Returns ``(policy, ref_policy, optimizer)``."""
    optimizers = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    check_one_of(optimizer, "optimizer", optimizers)
    policy = TinyPolicy(cfg).to(device=cfg.device, dtype=dtype)
    ref_policy = TinyPolicy(cfg).to(device=cfg.device, dtype=dtype)
    ref_policy.load_state_dict(policy.state_dict())  # same start; the reference stays frozen
    return policy, ref_policy, optimizers[optimizer](policy.parameters(), lr=cfg.lr)


def run_demo(algo: str = "grpo", steps: int = 10, cfg: Config | None = None, print_fn=print):
    """The demo's loop: build policy and frozen reference, then ``steps`` train steps.

    ``run_demo()`` is the demo's ``main`` (algo "grpo", 10 steps); it also returns
    ``(losses, policy)`` so notebooks and tests can look at what happened.
    """
    cfg = Config() if cfg is None else cfg
    cfg.algo = algo
    print_fn("Using algo:", cfg.algo)

    policy, ref_policy, optimizer = demo_models(cfg)

    num_prompts_per_batch = 2
    bs = cfg.group_num * num_prompts_per_batch

    losses = []
    for step in range(steps):
        input_ids, actions, rewards = make_fake_batch(cfg, bs)
        loss = train_step(
            cfg=cfg,
            policy=policy,
            ref_policy=ref_policy,
            optimizer=optimizer,
            input_ids=input_ids,
            actions=actions,
            rewards=rewards,
        )
        losses.append(loss)
        print_fn(f"step {step}: loss = {loss:.4f}")
    return losses, policy


def main():
    """The demo's entry point: ``run_demo("grpo", 10)``, printing its lines."""
    run_demo("grpo", 10)
