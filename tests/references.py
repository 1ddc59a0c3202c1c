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
