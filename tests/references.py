"""Slow, obviously correct references shared by several test files (plain Python floats)."""

import itertools
import statistics


def loop_gae(rewards, values, gamma, lam):
    """GAE of one episode by the backward recursion, value 0 after the last step:
    A_t = r_t + gamma V_{t+1} - V_t + gamma lam A_{t+1}."""
    adv, running = [0.0] * len(rewards), 0.0
    for t in reversed(range(len(rewards))):
        nxt = values[t + 1] if t + 1 < len(values) else 0.0
        running = rewards[t] + gamma * nxt - values[t] + gamma * lam * running
        adv[t] = running
    return adv


def ref_aggregate(loss, mask, mode, max_len=None):
    """One of the four aggregation modes by loops over rows and tokens (0 for no tokens)."""
    loss, mask = loss.tolist(), mask.tolist()
    batch, seq_len = len(loss), len(loss[0])
    sums, lengths = [], []
    for row_l, row_m in zip(loss, mask, strict=True):
        sums.append(sum(v for v, m in zip(row_l, row_m, strict=True) if m))
        lengths.append(sum(row_m))
    if mode == "token-mean":
        total = sum(lengths)
        return sum(sums) / total if total else 0.0
    if mode == "seq-mean-token-sum-norm":
        return sum(sums) / (batch * (max_len or seq_len))
    per_seq = []
    for s, n in zip(sums, lengths, strict=True):
        if n == 0:
            continue
        per_seq.append(s / n if mode == "seq-mean-token-mean" else s)
    return sum(per_seq) / len(per_seq) if per_seq else 0.0


def ref_token_weights(mask, mode, max_len=None):
    """d loss / d l_it of one batch, by hand from each mode's formula: token-mean 1/N,
    seq-mean-token-mean 1/(B' L_i), seq-mean-token-sum 1/B', seq-mean-token-sum-norm
    1/(B max_len), with N the token count and B' the non-empty responses; 0 off the mask."""
    mask = mask.tolist()
    batch, seq_len = len(mask), len(mask[0])
    lengths = [sum(row) for row in mask]
    tokens = sum(lengths)
    non_empty = sum(1 for n in lengths if n > 0)
    weights = []
    for row, length in zip(mask, lengths, strict=True):
        if mode == "token-mean":
            w = 1.0 / tokens if tokens else 0.0
        elif mode == "seq-mean-token-mean":
            w = 1.0 / (non_empty * length) if length else 0.0
        elif mode == "seq-mean-token-sum":
            w = 1.0 / non_empty if non_empty else 0.0
        else:
            w = 1.0 / (batch * (max_len or seq_len))
        weights.append([w if m else 0.0 for m in row])
    return weights


def loop_group_advantages(rewards, group_size, scale="group", eps=1e-6, batch_std=None):
    """Group advantages, one group of ``group_size`` consecutive rewards at a time:
    A_i = (r_i - mean_g) / (std_g + eps) for scale "group" (unbiased std, n - 1),
    (r_i - mean_g) / (batch_std + eps) for "batch" (``batch_std``: the unbiased std of all
    the rewards unless given), r_i - mean_g for "none"; 0 for every response of a group
    of one or of equal rewards."""
    rewards = [float(r) for r in rewards]
    if batch_std is None:
        batch_std = statistics.stdev(rewards) if len(rewards) > 1 else 0.0
    out = []
    for start in range(0, len(rewards), group_size):
        group = rewards[start:start + group_size]
        mean = sum(group) / len(group)
        if len(group) == 1 or max(group) == min(group):
            out += [0.0] * len(group)
            continue
        divisor = {"group": statistics.stdev(group) + eps, "batch": batch_std + eps,
                   "none": 1.0}[scale]
        out += [(r - mean) / divisor for r in group]
    return out


def loop_expected_abs_advantage(p, group_size, scale, eps, batch_std=0.5):
    """E[sum_i |A_i|] of one group of 0/1 rewards with success rate p, by enumerating all
    2^G outcomes (scale "batch": a batch whose reward std is ``batch_std``)."""
    total = 0.0
    for outcome in itertools.product((0.0, 1.0), repeat=group_size):
        k = int(sum(outcome))
        advantages = loop_group_advantages(outcome, group_size, scale, eps, batch_std)
        total += p**k * (1 - p) ** (group_size - k) * sum(abs(a) for a in advantages)
    return total


def loop_is_weights(old, rollout, mask, cap, level, kind, low=None):
    """TIS / MIS weights by plain loops over lists of lists (float64 Python floats):
    w = pi_old / pi_rollout per token, or the product over a response's tokens; TIS:
    min(w, cap); MIS: w if low <= w <= cap else 0 (low = 1 / cap by default); 0 off the mask."""
    import math

    low = 1.0 / cap if low is None else low
    out = []
    for o_row, r_row, m_row in zip(old, rollout, mask):
        if level == "sequence":
            total = sum(o - r for o, r, m in zip(o_row, r_row, m_row) if m)
            raw = [math.exp(min(max(total, -20.0), 20.0))] * len(o_row)
        else:
            raw = [math.exp(min(max(o - r, -20.0), 20.0)) for o, r in zip(o_row, r_row)]
        row = []
        for w, m in zip(raw, m_row):
            if not m:
                row.append(0.0)
            elif kind == "tis":
                row.append(min(w, cap))
            else:
                row.append(w if low <= w <= cap else 0.0)
        out.append(row)
    return out


def loop_clipped_loss(rho, adv, eps):
    """-min(rho A, clip(rho, 1 - eps, 1 + eps) A) for one token (PPO, arXiv 1707.06347)."""
    return -min(rho * adv, min(max(rho, 1.0 - eps), 1.0 + eps) * adv)
