"""Experiments of notebook 02: from the policy gradient to PPO with a critic.

Two toy problems small enough to solve exactly, so every estimator can be compared with
the truth:

* **the one-token policy** (``OneTokenProblem``): a categorical policy
  ``pi = softmax(logits)`` over K tokens, each with a fixed reward. The expected reward
  ``J = sum_a pi(a) r(a)`` and its gradient ``pi_k (r_k - J)`` are computed by
  enumeration; the score-function (REINFORCE) estimates are sampled, many independent
  runs ("seeds") at once as a batch dimension.
* **the token chain** (``TokenChain``): a response of T binary tokens sampled with the
  same probability p at every step (one parameter, the logit of p), a terminal outcome
  reward, and the KL to a reference in the per-token reward (InstructGPT style). There
  are only 2**T responses, so the exact gradient, the true values V(t, c) and the exact
  mean and variance of every advantage estimator are sums over all of them.

Pure torch, float64, seeded; no plotting (``rlviz.plots.policy_gradient`` draws).

The package follows the notebook's sections, one module each:

    one_token       1. the one-token policy: REINFORCE and baselines
    importance      2. reusing samples: the importance ratio
    entropy         3. the entropy bonus
    token_chain     4. the critic on a token sequence: values, TD errors, GAE, value loss
    group_baseline  5. GRPO's answer: a group of samples as the baseline, no critic
    ppo_update      6. one "ppo_gae" update on a small batch

Everything public is re-exported here: ``from rlviz.experiments import policy_gradient as pg``.
"""

from .entropy import (
    entropy,
    entropy_bonus_run,
    entropy_gradient,
)
from .group_baseline import (
    estimator_comparison,
    group_baseline_stats,
)
from .importance import (
    EPOCH_LOSSES,
    categorical_kl,
    epochs_on_many_batches,
    epochs_on_one_batch,
    importance_reuse,
    sequence_ratio_second_moment,
    stray_logits,
    surrogate_gradient,
)
from .one_token import (
    BASELINES,
    INIT_LOGITS,
    REWARDS,
    TOKENS,
    OneTokenProblem,
    baseline_variance,
    baseline_weights,
    estimator_stats,
    exact_gradient,
    expected_reward,
    one_token_problem,
    optimal_baseline,
    reinforce_loss_gradient,
    sample_actions,
    score,
    score_function_estimates,
)
from .ppo_update import (
    GOOD_TOKEN,
    TinyActorCritic,
    masked_stats,
    ppo_gae_update,
)
from .token_chain import (
    EXAMPLE_ACTIONS,
    GaeStudy,
    TokenChain,
    all_sequences,
    chain_values,
    critic_values,
    exact_chain_gradient,
    example_episode,
    gae_gradient_stats,
    gae_study,
    monte_carlo_advantages,
    position_values,
    sample_sequences,
    td_errors,
    value_clip_curve,
)

__all__ = [
    "BASELINES",
    "EPOCH_LOSSES",
    "EXAMPLE_ACTIONS",
    "GOOD_TOKEN",
    "INIT_LOGITS",
    "REWARDS",
    "TOKENS",
    "GaeStudy",
    "OneTokenProblem",
    "TinyActorCritic",
    "TokenChain",
    "all_sequences",
    "baseline_variance",
    "baseline_weights",
    "categorical_kl",
    "chain_values",
    "critic_values",
    "entropy",
    "entropy_bonus_run",
    "entropy_gradient",
    "epochs_on_many_batches",
    "epochs_on_one_batch",
    "estimator_comparison",
    "estimator_stats",
    "exact_chain_gradient",
    "exact_gradient",
    "example_episode",
    "expected_reward",
    "gae_gradient_stats",
    "gae_study",
    "group_baseline_stats",
    "importance_reuse",
    "masked_stats",
    "monte_carlo_advantages",
    "one_token_problem",
    "optimal_baseline",
    "position_values",
    "ppo_gae_update",
    "reinforce_loss_gradient",
    "sample_actions",
    "sample_sequences",
    "score",
    "score_function_estimates",
    "sequence_ratio_second_moment",
    "stray_logits",
    "surrogate_gradient",
    "td_errors",
    "value_clip_curve",
]
