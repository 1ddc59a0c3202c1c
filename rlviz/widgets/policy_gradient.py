"""Panels of notebook 02: GAE's gamma and lambda on one episode with the bias/variance
trade-off measured on sampled episodes, and what ``ent_coef`` does to the entropy."""

from __future__ import annotations

import math

from ..experiments import policy_gradient as pg
from ..plots.policy_gradient import EntropyFigure, GaeFigure, episode_ylim_of
from .common import Panel, register_panel, slider

__all__ = ["entropy_bonus_panel", "gae_panel"]

LAM_GRID = [i / 20 for i in range(21)]


@register_panel("gae", notebook="02")
def gae_panel(gamma: float = 1.0, lam: float = 0.95, critic_error: float = 0.5,
              num_episodes: int = 20000) -> Panel:
    """GAE on the token chain (``rlviz.experiments.policy_gradient.TokenChain``).

    Left: the example episode's token rewards, critic values and advantages, between the
    one-step TD error (lambda = 0) and the Monte-Carlo return minus the value (lambda = 1).
    Right: bias^2, variance and MSE of the one-episode policy-gradient estimate
    sum_t A_t (a_t - p) against lambda, exact (lines, all 2^8 responses weighted by their
    probability) and measured on ``num_episodes`` sampled episodes (dots).
    """
    study = pg.gae_study(num_episodes=num_episodes)
    # the episode's y-range over the corners and middles of the sliders' ranges (a finer
    # grid gives the same range): that axis then never changes
    corners = [pg.example_episode(study, g, lam_, c) for g in (0.5, 0.75, 1.0)
               for lam_ in (0.0, 0.5, 1.0) for c in (0.0, 0.5, 1.0)]
    figure = GaeFigure(study.chain.length, len(LAM_GRID), legend=False,
                       numbers_in_title=False, episode_ylim=episode_ylim_of(corners, legend=False),
                       dpi=72)
    curves: dict = {}  # (gamma, critic_error) -> stats over LAM_GRID

    def update(gamma, lam, critic_error):
        key = (round(gamma, 6), round(critic_error, 6))
        if key not in curves:
            curves[key] = pg.gae_gradient_stats(study, gamma, LAM_GRID, critic_error)
        stats = curves[key]
        on_grid = [i for i, x in enumerate(LAM_GRID) if abs(x - lam) < 1e-9]
        here = ({k: v[on_grid] for k, v in stats.items()} if on_grid  # the slider's steps
                else pg.gae_gradient_stats(study, gamma, [lam], critic_error))
        episode = pg.example_episode(study, gamma, lam, critic_error)
        figure.update(episode, stats, lam, gamma, critic_error)
        best = int(stats["mse"].argmin())
        return {
            "A_0 (this lambda)": float(episode["advantages"][0]),
            "A_0 at lambda=0 (TD)": float(episode["td"][0]),
            "A_0 at lambda=1 (MC)": float(episode["mc"][0]),
            "bias^2": float(here["bias2"][0]),
            "variance": float(here["variance"][0]),
            "MSE": float(here["mse"][0]),
            "variance (sampled)": float(here["variance_sampled"][0]),
            "lambda with lowest MSE": LAM_GRID[best],
            "exact gradient": study.exact_gradient,
        }

    controls = {
        "gamma": slider("gamma", gamma, 0.5, 1.0, 0.01),
        "lam": slider("lambda", lam, 0.0, 1.0, 0.05),
        "critic_error": slider("critic error", critic_error, 0.0, 1.0, 0.1),
    }
    return Panel(
        "GAE: from one-step TD (lambda = 0) to Monte Carlo (lambda = 1)",
        controls, figure, update,
        description=("Critic error 0: the true values; 1: a critic that only knows the "
                     "position. Left: grey bars = token rewards, squares = critic V(s_t), "
                     "blue = GAE advantage, dashed orange = lambda 0 (TD error), dashed "
                     "purple = lambda 1 (return - V). Right, for the policy-gradient "
                     "estimate from one episode: red = bias^2, blue = variance, black = "
                     "MSE, dots = measured on sampled episodes, star = lowest MSE, green = "
                     "this lambda."),
    )


@register_panel("entropy_bonus", notebook="02")
def entropy_bonus_panel(ent_coef: float = 0.1, steps: int = 100, num_seeds: int = 16) -> Panel:
    """REINFORCE on the one-token policy with an entropy bonus ``ent_coef * H(pi)``:
    entropy over training (mean over seeds) and the final policy next to softmax(r / c),
    the policy that maximises J + c H. All runs are computed once, up front (one batched
    run over the slider's 21 settings)."""
    problem = pg.one_token_problem()
    grid = [i / 20 for i in range(21)]
    runs = pg.entropy_bonus_run(problem, grid, steps=steps, num_seeds=num_seeds)
    figure = EntropyFigure(steps, problem.tokens, legend=False)

    def update(ent_coef):
        k = min(range(len(grid)), key=lambda i: abs(grid[i] - ent_coef))
        c = grid[k]
        target = (problem.rewards / c).softmax(-1) if c > 0 else \
            (problem.rewards == problem.rewards.max()).to(problem.rewards.dtype)
        figure.update(runs["entropy"][k], runs["entropy"][0], float(runs["limit_entropy"][k]),
                      runs["probs"][k], target)
        return {
            "ent_coef": c,
            "entropy after training": float(runs["entropy"][k, -1]),
            "entropy of softmax(r / c)": float(runs["limit_entropy"][k]),
            "max entropy log K": math.log(len(problem.tokens)),
            "expected reward J": float(runs["expected_reward"][k, -1]),
            "pi('great')": float(runs["probs"][k, 0]),
        }

    controls = {"ent_coef": slider("ent_coef", ent_coef, 0.0, 1.0, 0.05)}
    return Panel(
        "The entropy bonus: loss = policy loss - ent_coef * H(pi)",
        controls, figure, update,
        description=(f"{num_seeds} seeds x {steps} steps of REINFORCE (8 samples per step, "
                     "leave-one-out baseline); the bonus is in units of reward. Left: blue = "
                     "entropy with this ent_coef, red = without the bonus, dashed = entropy "
                     "of softmax(r / c). Right: blue = the policy after training, grey = "
                     "softmax(r / c)."),
    )
