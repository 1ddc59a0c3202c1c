"""An independent re-statement of the original demo's code (grpo_ppo_demo.txt), in plain
torch, used only by the parity tests. It is written from the demo, not imported from rlviz,
so a change in rlviz that alters any number shows up as a mismatch."""

import torch
from torch import nn


class RefConfig:
    def __init__(self, **overrides):
        self.algo = "ppo"
        self.lr = 1e-4
        self.clip_range = 0.2
        self.beta_kl = 0.01
        self.vf_coef = 0.5
        self.ent_coef = 0.01
        self.group_num = 4
        self.input_len = 8
        self.seq_len = 32
        self.vocab_size = 50257
        self.hidden_size = 256
        self.device = "cpu"
        for key, value in overrides.items():
            setattr(self, key, value)


class RefPolicy(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.ln = nn.LayerNorm(cfg.hidden_size)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)

    def forward(self, input_ids):
        return self.head(self.ln(self.embed(input_ids)))

    def log_prob(self, input_ids, actions):
        logprobs = self.forward(input_ids).log_softmax(dim=-1)
        return logprobs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def ref_mask(bs, seq_len, input_len, device, dtype):
    mask = torch.zeros(bs, seq_len, device=device, dtype=dtype)
    mask[:, input_len:] = 1.0
    return mask


def ref_ppo(pi, old, adv, mask, clip):
    bs, _ = pi.shape
    ratio = torch.exp(pi - old)
    ratio_clip = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    adv = adv.view(bs, 1)
    token = -torch.minimum(ratio * adv, ratio_clip * adv)
    token = token * mask
    return token.sum() / mask.sum().clamp_min(1.0)


def ref_kl(pi, ref, mask):
    log_ratio = (pi - ref) * mask
    return log_ratio.sum(dim=1, keepdim=True) / mask.sum(dim=1, keepdim=True).clamp_min(1.0)


def ref_grpo(pi, old, ref, adv, mask, len_oi, group_num, clip, beta):
    bs, _ = pi.shape
    ratio = torch.exp(pi - old)
    ratio_clip = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    adv = adv.view(bs, 1)
    pg = torch.minimum(ratio * adv, ratio_clip * adv) * mask
    kl = ref_kl(pi, ref, mask)
    valid = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    kl_token = (kl / valid) * mask
    objective = pg - beta * kl_token
    len_oi = len_oi.view(bs, 1).to(device=pi.device, dtype=pi.dtype).clamp_min(1.0)
    return ((-1.0 / group_num) * (1.0 / len_oi) * objective).sum()


def ref_wrapper(algo, pi, old, ref, adv, mask, len_oi, cfg):
    if algo == "ppo":
        return ref_ppo(pi, old, adv, mask, cfg.clip_range)
    if algo == "grpo":
        return ref_grpo(pi, old, ref, adv, mask, len_oi, cfg.group_num, cfg.clip_range,
                        cfg.beta_kl)
    raise ValueError(algo)


def ref_fake_batch(cfg, bs):
    input_ids = torch.randint(0, cfg.vocab_size, (bs, cfg.seq_len), device=cfg.device)
    actions = torch.randint(0, cfg.vocab_size, (bs, cfg.seq_len), device=cfg.device)
    rewards = torch.randn(bs, device=cfg.device)
    return input_ids, actions, rewards


def ref_advantage(rewards):
    return rewards - rewards.mean()


def ref_train_step(cfg, policy, ref_policy, optimizer, input_ids, actions, rewards):
    with torch.no_grad():
        old = policy.log_prob(input_ids, actions)
        ref = ref_policy.log_prob(input_ids, actions)
    pi = policy.log_prob(input_ids, actions)
    adv = ref_advantage(rewards)
    bs, seq_len = pi.shape
    mask = ref_mask(bs, seq_len, cfg.input_len, cfg.device, pi.dtype)
    len_oi = torch.full((bs,), seq_len - cfg.input_len, device=cfg.device, dtype=torch.long)
    loss = ref_wrapper(cfg.algo, pi, old, ref, adv, mask, len_oi, cfg)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def ref_main(cfg, steps=10, lines=None):
    """The demo's main() for a given config; returns (printed lines, losses, policy)."""
    lines = [] if lines is None else lines
    lines.append(f"Using algo: {cfg.algo}")
    policy = RefPolicy(cfg)
    ref_policy = RefPolicy(cfg)
    ref_policy.load_state_dict(policy.state_dict())
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    bs = cfg.group_num * 2
    losses = []
    for step in range(steps):
        input_ids, actions, rewards = ref_fake_batch(cfg, bs)
        loss = ref_train_step(cfg, policy, ref_policy, optimizer, input_ids, actions, rewards)
        losses.append(loss)
        lines.append(f"step {step}: loss = {loss:.4f}")
    return lines, losses, policy
