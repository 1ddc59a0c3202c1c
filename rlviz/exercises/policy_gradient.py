"""Self-checks of notebook 02: the score function, GAE on a short episode, the clipped
value loss. Each runs the reader's function on a few cases, compares with the package,
prints "Correct: ..." when all match, and otherwise raises ``ExerciseError`` naming the
usual mistake when it recognises one (or the first case that differs).

They return None, so a notebook cell ending with the call shows only the printed line."""

from __future__ import annotations

import torch

from ..losses import gae, value_loss
from .common import ExerciseError, check_close, passed

__all__ = ["check_gae", "check_score_function", "check_value_loss"]


def _call(fn, what: str, *args):
    try:
        out = fn(*args)
    except Exception as error:  # the reader's bug, shown with the case that raised it
        raise ExerciseError(f"{what}: your function raised {type(error).__name__}: {error}") \
            from error
    try:
        return torch.as_tensor(out, dtype=torch.float64)
    except Exception as error:
        raise ExerciseError(f"{what}: return numbers (a list or a tensor), got "
                            f"{type(out).__name__}") from error


def _same(a: torch.Tensor, b, atol: float = 1e-6) -> bool:
    b = torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=atol, rtol=0))


# ---------------------------------------------------------------------------------------


SCORE_CASES = [([0.0, 0.0, 0.0], 0), ([1.0, -0.5, 0.3, 2.0], 3), ([2.0, 0.0, -1.0], 2)]


def _diagnose(what: str, cases: list, answers: list, expected: list, mistakes: dict,
              hint: str) -> None:
    """Pass if every answer is right. Otherwise name the mistake whose wrong answers match
    the reader's on every case, or show the first case that differs. ``mistakes``:
    message -> the wrong answer for each case."""
    if all(_same(got, exp) for got, exp in zip(answers, expected)):
        return
    for message, wrong in mistakes.items():
        if all(_same(got, bad) for got, bad in zip(answers, wrong)):
            raise ExerciseError(f"{what}: {message}")
    for case, got, exp in zip(cases, answers, expected):
        check_close(f"{what} ({case})", got, exp, hint=hint)


def check_score_function(fn) -> None:
    """``fn(logits, action) -> grad`` : d log softmax(logits)[action] / d logits, (K,).

    Expected: ``onehot(action) - softmax(logits)``.
    """
    cases, answers, expected = [], [], []
    mistakes = {
        "the sign is flipped. log pi(a) grows with its own logit: the entry at the action "
        "is 1 - pi(a) > 0.": [],
        "you returned onehot(a) only. The log-softmax also depends on every logit through "
        "log sum exp: subtract pi.": [],
        "only the chosen logit's entry is right. The others are -pi(k), not 0.": [],
    }
    for logits, action in SCORE_CASES:
        case = f"logits={logits}, action={action}"
        z = torch.tensor(logits, dtype=torch.float64)
        cases.append(case)
        answers.append(_call(fn, f"score for {case}", z.clone(), action))
        probs = z.softmax(-1)
        onehot = torch.nn.functional.one_hot(torch.tensor(action), len(logits)).double()
        expected.append(onehot - probs)
        wrong = list(mistakes.values())
        wrong[0].append(probs - onehot)
        wrong[1].append(onehot)
        wrong[2].append(onehot * (1 - probs))
    _diagnose("score function", cases, answers, expected, mistakes,
              hint="grad log pi(a) = onehot(a) - softmax(logits).")
    passed("grad log pi(a) = onehot(a) - pi. The REINFORCE estimate is "
                  "(r - b) times this, averaged over samples.")


# ---------------------------------------------------------------------------------------

GAE_EPISODE = {"rewards": [0.0, -0.1, 0.0, 1.0], "values": [0.5, 0.6, 0.4, 0.8]}
GAE_CASES = [(1.0, 1.0), (1.0, 0.0), (0.9, 0.95), (1.0, 0.5)]


def _backward(delta, factor):
    out, running = [0.0] * len(delta), 0.0
    for t in reversed(range(len(delta))):
        running = delta[t] + factor * running
        out[t] = running
    return out


def _gae_mistakes(rewards, values, gamma, lam):
    """Common wrong answers for one case, computed with plain loops, name -> list."""
    n = len(rewards)
    nxt = values[1:] + [0.0]
    delta = [rewards[t] + gamma * nxt[t] - values[t] for t in range(n)]
    fwd, running = [0.0] * n, 0.0
    for t in range(n):
        running = delta[t] + gamma * lam * running  # accumulated the wrong way
        fwd[t] = running
    boot = values[1:] + [values[-1]]  # bootstrapped from V_{T-1} after the last token
    delta_b = [rewards[t] + gamma * boot[t] - values[t] for t in range(n)]
    correct = _backward(delta, gamma * lam)
    return {
        "returns": [a + v for a, v in zip(correct, values)],
        "td": delta,
        "no_gamma": _backward(delta, lam),
        "forward": fwd,
        "bootstrap": _backward(delta_b, gamma * lam),
    }


GAE_MESSAGES = {
    "returns": "these are the returns A_t + V_t. The advantage is the return minus the value.",
    "td": "these are the one-step TD errors delta_t (the lam = 0 answer). Accumulate them "
          "backwards: A_t = delta_t + gamma * lam * A_{t+1}.",
    "no_gamma": "the recursion needs gamma * lam, not lam alone.",
    "forward": "you accumulated from the first token forward. An advantage looks at the "
               "future: loop t from T-1 down to 0.",
    "bootstrap": "after the last token the episode is over: use V_T = 0, not the last value "
                 "again.",
}


def check_gae(fn) -> None:
    """``fn(rewards, values, gamma, lam) -> advantages`` for ONE episode (lists of length T),
    with the value after the last token taken as 0:

        delta_t = r_t + gamma V_{t+1} - V_t,   A_t = delta_t + gamma lam A_{t+1}.
    """
    rewards, values = GAE_EPISODE["rewards"], GAE_EPISODE["values"]
    r = torch.tensor([rewards], dtype=torch.float64)
    v = torch.tensor([values], dtype=torch.float64)
    mask = torch.ones_like(r)
    cases, answers, expected = [], [], []
    mistakes = {message: [] for message in GAE_MESSAGES.values()}
    for gamma, lam in GAE_CASES:
        case = f"gamma={gamma}, lam={lam}"
        got = _call(fn, f"GAE with {case}", list(rewards), list(values), gamma, lam)
        cases.append(case)
        answers.append(got)
        adv, _ = gae(r, v, mask, gamma=gamma, lam=lam)
        expected.append(adv[0])
        for name, wrong in _gae_mistakes(rewards, values, gamma, lam).items():
            mistakes[GAE_MESSAGES[name]].append(wrong)
    _diagnose("GAE", cases, answers, expected, mistakes,
              hint="delta_t = r_t + gamma V_{t+1} - V_t with V_T = 0; "
                   "A_t = delta_t + gamma lam A_{t+1}, from the last token back.")
    passed("GAE on the 4-step episode, at lam = 1 (Monte Carlo), lam = 0 (TD) "
                  "and in between.")


# ---------------------------------------------------------------------------------------

VALUE_CASES = [  # (V, V_old, R, clip)
    (0.5, 0.5, 1.0, 0.2), (0.9, 0.5, 1.0, 0.2), (1.5, 0.5, 1.0, 0.2),
    (0.1, 0.5, 1.0, 0.2), (-0.4, 0.0, -1.0, 0.2), (2.0, 1.0, 0.0, 0.5),
]


def check_value_loss(fn) -> None:
    """``fn(v, v_old, ret, clip) -> loss`` for ONE token (floats):

        0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)
    """
    cases, answers, expected = [], [], []
    mistakes = {
        "you took the min. PPO's value loss takes the max (the pessimistic one), like the "
        "policy loss.": [],
        "the factor 0.5 is missing.": [],
        "this is the plain squared error 0.5 (V - R)^2: the clipped term never wins. Clip V "
        "around the OLD value V_old (clipping around the return R never binds).": [],
    }
    for v, v_old, ret, clip in VALUE_CASES:
        case = f"V={v}, V_old={v_old}, R={ret}, clip={clip}"
        got = _call(fn, f"value loss for {case}", v, v_old, ret, clip).reshape(-1)
        cases.append(case)
        answers.append(got)
        one = torch.ones(1, 1, dtype=torch.float64)
        expected.append(value_loss(v * one, v_old * one, ret * one, one,
                                   clip_range=clip).reshape(1))
        unclipped = (v - ret) ** 2
        clipped = (min(max(v, v_old - clip), v_old + clip) - ret) ** 2
        wrong = list(mistakes.values())
        wrong[0].append([0.5 * min(unclipped, clipped)])
        wrong[1].append([max(unclipped, clipped)])
        wrong[2].append([0.5 * unclipped])
    _diagnose("value loss", cases, answers, expected, mistakes,
              hint="0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)")
    passed("the clipped value loss, including the cases where its gradient is 0.")
