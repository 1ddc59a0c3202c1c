"""Notebook 02's panels: drive the sliders and check the numbers they show against
independent computations (plain loops over all 2^8 responses of the token chain)."""

import itertools
import math

import pytest
from references import loop_gae

from rlviz.experiments import policy_gradient as pg
from rlviz.widgets import PANEL_REGISTRY, entropy_bonus_panel, gae_panel


def chain_rewards(chain, seq):
    out = []
    for a in seq:
        p, q = (chain.p_policy, chain.p_ref) if a else (1 - chain.p_policy, 1 - chain.p_ref)
        out.append(-chain.beta * math.log(p / q))
    out[-1] += float(sum(seq) >= chain.threshold)
    return out


def value_by_enumeration(chain, prefix, gamma):
    t, total = len(prefix), 0.0
    for rest in itertools.product((0, 1), repeat=chain.length - t):
        seq = list(prefix) + list(rest)
        r = chain_rewards(chain, seq)
        prob = math.prod(chain.p_policy if a else 1 - chain.p_policy for a in rest)
        total += prob * sum(gamma ** (k - t) * r[k] for k in range(t, chain.length))
    return total


def reference_numbers(gamma, lam, error):
    """A_0 of the example episode and bias^2 / variance of the one-episode gradient."""
    chain = pg.TokenChain()
    cache = {}

    def v(prefix):
        key = tuple(prefix)
        if key not in cache:
            cache[key] = value_by_enumeration(chain, prefix, gamma)
        return cache[key]

    def position_avg(t):
        return sum(math.prod(chain.p_policy if a else 1 - chain.p_policy for a in pre) * v(pre)
                   for pre in itertools.product((0, 1), repeat=t))

    avg = [position_avg(t) for t in range(chain.length)]

    def critic(seq):
        return [(1 - error) * v(seq[:t]) + error * avg[t] for t in range(chain.length)]

    example = list(pg.EXAMPLE_ACTIONS)
    ex_adv = loop_gae(chain_rewards(chain, example), critic(example), gamma, lam)
    ex_td = loop_gae(chain_rewards(chain, example), critic(example), gamma, 0.0)
    mean = second = exact = 0.0
    for seq in itertools.product((0, 1), repeat=chain.length):
        seq = list(seq)
        prob = math.prod(chain.p_policy if a else 1 - chain.p_policy for a in seq)
        score = [a - chain.p_policy for a in seq]
        adv = loop_gae(chain_rewards(chain, seq), critic(seq), gamma, lam)
        g = sum(x * s for x, s in zip(adv, score))
        mean += prob * g
        second += prob * g * g
        exact += prob * sum(chain_rewards(chain, seq)) * sum(score)
    return {"A0": ex_adv[0], "td0": ex_td[0], "bias2": (mean - exact) ** 2,
            "variance": second - mean * mean, "exact": exact}


def test_both_panels_are_registered_for_notebook_02():
    for name in ("gae", "entropy_bonus"):
        assert name in PANEL_REGISTRY
        assert PANEL_REGISTRY[name][1] == "02"


@pytest.fixture(scope="module")
def gae():
    return gae_panel(num_episodes=5000)


@pytest.mark.parametrize("gamma,lam,error", [(1.0, 0.95, 0.5), (0.9, 0.0, 1.0),
                                              (0.97, 0.5, 0.0), (0.5, 1.0, 0.3)])
def test_gae_panel_numbers_against_loops(gae, gamma, lam, error):
    values = gae.set(gamma=gamma, lam=lam, critic_error=error)
    ref = reference_numbers(gamma, lam, error)
    assert values["A_0 (this lambda)"] == pytest.approx(ref["A0"], abs=1e-10)
    assert values["A_0 at lambda=0 (TD)"] == pytest.approx(ref["td0"], abs=1e-10)
    assert values["bias^2"] == pytest.approx(ref["bias2"], abs=1e-10)
    assert values["variance"] == pytest.approx(ref["variance"], abs=1e-10)
    assert values["MSE"] == pytest.approx(ref["bias2"] + ref["variance"], abs=1e-10)
    assert values["exact gradient"] == pytest.approx(ref["exact"], abs=1e-10)
    # 5000 sampled episodes: the measured variance is close to the exact one
    assert values["variance (sampled)"] == pytest.approx(ref["variance"], rel=0.1)
    assert gae.errors == []


def test_gae_panel_ends_of_lambda_are_td_and_mc(gae):
    low = gae.set(gamma=1.0, lam=0.0, critic_error=0.5)
    assert low["A_0 (this lambda)"] == pytest.approx(low["A_0 at lambda=0 (TD)"], abs=1e-12)
    high = gae.set(lam=1.0)
    assert high["A_0 (this lambda)"] == pytest.approx(high["A_0 at lambda=1 (MC)"], abs=1e-12)
    assert high["bias^2"] == pytest.approx(0.0, abs=1e-20)  # gamma = 1, lambda = 1: unbiased


def test_gae_panel_best_lambda_is_the_argmin_of_the_mse(gae):
    values = gae.set(gamma=1.0, lam=0.95, critic_error=0.5)
    grid = [i / 20 for i in range(21)]
    mses = []
    for lam in grid:
        ref = reference_numbers(1.0, lam, 0.5)
        mses.append(ref["bias2"] + ref["variance"])
    assert values["lambda with lowest MSE"] == grid[mses.index(min(mses))]


def test_gae_panel_moves_its_artists():
    panel = gae_panel(num_episodes=1000)
    (line,) = [ln for ln in panel.figure.axes[0].lines if ln.get_label() == "GAE advantage"]
    before = list(line.get_ydata())
    panel.controls["lam"].value = 0.0
    after = list(line.get_ydata())
    assert before != after
    assert panel.image.value[:4] == b"\x89PNG"


def test_entropy_panel_numbers():
    panel = entropy_bonus_panel(num_seeds=8)
    rewards = pg.REWARDS
    seen = []
    for c in (0.0, 0.1, 0.5, 1.0):
        values = panel.set(ent_coef=c)
        assert values["ent_coef"] == c
        if c > 0:
            z = [math.exp(r / c) for r in rewards]
            target = [x / sum(z) for x in z]
            limit = -sum(p * math.log(p) for p in target)
        else:
            limit = 0.0
        assert values["entropy of softmax(r / c)"] == pytest.approx(limit, abs=1e-12)
        assert values["max entropy log K"] == pytest.approx(math.log(5))
        assert 0.0 <= values["entropy after training"] <= math.log(5) + 1e-12
        seen.append(values["entropy after training"])
    # more bonus, more entropy left after training
    assert seen == sorted(seen)
    assert seen[0] < 0.15 and abs(seen[-1] - panel.values["entropy of softmax(r / c)"]) < 0.1


def test_entropy_panel_snaps_to_its_grid():
    panel = entropy_bonus_panel(num_seeds=4)
    values = panel.set(ent_coef=0.3)
    assert values["ent_coef"] == pytest.approx(0.3)
