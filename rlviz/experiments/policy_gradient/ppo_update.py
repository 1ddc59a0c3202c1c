"""Notebook 02, section 6: one "ppo_gae" update on a small batch."""

from __future__ import annotations

import torch
from torch import nn

from ...algorithms import policy_loss_wrapper
from ...config import Config
from ...formatting import fmt  # noqa: F401 (re-exported for the notebook)
from ...losses import (
    gae,
    kl_token_rewards,
    selective_log_prob,
    whiten,
)
from ...masks import mask_from_lengths
from ...threads import one_torch_thread

DTYPE = torch.float64

# ---------------------------------------------------------------------------------------
# 6. Putting it together: one "ppo_gae" update on a small batch
# ---------------------------------------------------------------------------------------


class TinyActorCritic(nn.Module):
    """A bigram language model with a value head on the same trunk.

    Input at position t: the previous token (BOS at t = 0) and the position t. Outputs
    ``logits`` (B, T, V): pi(a_t | a_{t-1}, t), and ``values`` (B, T): V(s_t), the value
    of the state before token t is chosen (the convention ``rlviz.gae`` expects).
    """

    def __init__(self, vocab_size: int = 6, hidden_size: int = 16, max_len: int = 6):
        super().__init__()
        self.vocab_size = vocab_size
        self.bos = vocab_size
        self.token = nn.Embedding(vocab_size + 1, hidden_size)
        self.position = nn.Embedding(max_len, hidden_size)
        self.ln = nn.LayerNorm(hidden_size)
        self.policy_head = nn.Linear(hidden_size, vocab_size)
        self.value_head = nn.Linear(hidden_size, 1)

    def inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) response tokens -> (B, T) previous tokens, BOS first."""
        bos = torch.full_like(tokens[:, :1], self.bos)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        prev = self.inputs(tokens)  # (B, T)
        positions = torch.arange(tokens.shape[1], device=tokens.device)  # (T,)
        x = self.ln(self.token(prev) + self.position(positions))  # (B, T, H)
        return self.policy_head(x), self.value_head(x).squeeze(-1)  # (B, T, V), (B, T)

    @torch.no_grad()
    def sample(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """(B, length) tokens sampled one position at a time."""
        tokens = torch.zeros(batch, length, dtype=torch.long)
        for t in range(length):
            logits, _ = self.forward(tokens[:, : t + 1])  # (B, t + 1, V)
            probs = logits[:, t].softmax(-1)  # (B, V)
            tokens[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return tokens


GOOD_TOKEN = 1  # the outcome reward counts this token


@one_torch_thread()
def ppo_gae_update(epochs: int = 4, lr: float = 0.1, lengths=(6, 4, 5, 3),
                   vocab_size: int = 6, seed: int = 0, cfg: Config | None = None) -> dict:
    """One PPO-with-a-critic update (``"ppo_gae"``) on a batch of ``len(lengths)`` responses.

    1. rollout (no grad): sample responses from the policy, record ``old_logp``,
       ``old_values`` and the frozen reference's ``ref_logp``; the outcome reward of a
       response is the share of its tokens equal to ``GOOD_TOKEN``.
    2. per-token rewards ``-beta * k1`` (+ outcome on the last token), GAE, returns,
       whitened advantages (``kl_token_rewards``, ``gae``, ``whiten``).
    3. ``epochs`` full-batch gradient-descent steps on ``policy_loss_wrapper("ppo_gae", ...,
       return_metrics=True)``, the metrics recorded before each step.

    The policy starts as the reference plus a little noise (as after some training),
    so the KL to the reference is not zero. Returns the batch tensors, ``raw_advantages``,
    ``advantages`` (whitened), ``returns``, ``hparams`` and ``metrics`` (one dict per
    epoch).
    """
    cfg = Config(algo="ppo_gae", device="cpu") if cfg is None else cfg
    hparams = cfg.hparams()
    lengths = torch.as_tensor(lengths)
    max_len = int(lengths.max())
    with torch.random.fork_rng(devices=[]):  # seeded weights, the caller's RNG untouched
        torch.manual_seed(seed)
        reference = TinyActorCritic(vocab_size, max_len=max_len)
        model = TinyActorCritic(vocab_size, max_len=max_len)
        model.load_state_dict(reference.state_dict())
        with torch.no_grad():
            for param in model.parameters():
                param.add_(0.15 * torch.randn_like(param))
    generator = torch.Generator().manual_seed(seed)

    # 1. rollout
    tokens = model.sample(len(lengths), max_len, generator)  # (B, T)
    mask = mask_from_lengths(lengths, max_len)  # (B, T)
    with torch.no_grad():
        logits, old_values = model(tokens)  # (B, T, V), (B, T)
        old_logp = selective_log_prob(logits, tokens)  # (B, T)
        ref_logits, _ = reference(tokens)
        ref_logp = selective_log_prob(ref_logits, tokens)  # (B, T)
    good = ((tokens == GOOD_TOKEN).float() * mask).sum(1)  # (B,)
    rewards = good / lengths.float()  # (B,)

    # 2. per-token rewards, GAE, whitening
    token_rewards = kl_token_rewards(rewards, mask, old_logp, ref_logp, beta=hparams["beta"],
                                     kind=hparams["kl_estimator"])  # (B, T)
    raw_adv, returns = gae(token_rewards, old_values, mask, gamma=hparams["gamma"],
                           lam=hparams["lam"])  # (B, T) each
    advantages = whiten(raw_adv, mask)  # (B, T)

    # 3. epochs of clipped-surrogate + value loss - entropy bonus
    params = list(model.parameters())
    history = []
    for _ in range(epochs):
        logits, values = model(tokens)  # (B, T, V), (B, T)
        logp = selective_log_prob(logits, tokens)  # (B, T)
        loss, metrics = policy_loss_wrapper(
            "ppo_gae", logp, old_logp, ref_logp, advantages, mask, lengths, cfg,
            values=values, old_values=old_values, returns=returns, logits=logits,
            return_metrics=True)
        history.append(metrics)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():  # plain gradient descent (torch.optim would import torch._dynamo)
            for param, grad in zip(params, grads):
                param -= lr * grad
    return {
        "tokens": tokens, "mask": mask, "lengths": lengths, "rewards": rewards,
        "old_logp": old_logp, "ref_logp": ref_logp, "old_values": old_values,
        "token_rewards": token_rewards, "raw_advantages": raw_adv, "advantages": advantages,
        "returns": returns, "hparams": hparams, "metrics": history,
    }


def masked_stats(x: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """Mean and unbiased std of ``x`` over the entries where ``mask`` is 1."""
    values = x[mask > 0]
    return float(values.mean()), float(values.std())
