"""Slow, obviously correct references shared by several test files (plain Python floats)."""


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
