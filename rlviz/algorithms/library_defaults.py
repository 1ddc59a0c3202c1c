"""What TRL and verl did by default, release by release: the data behind docs/library-defaults.md.

Pure data (imports nothing), beside the recipes of ``rlviz.algorithms.library``. Each ``Default`` says: in ``library``, from release
``from_version`` through ``to_version`` (inclusive; ``None`` = up to the pinned release, TRL
1.16.0 / verl 0.9.1), ``setting`` had ``value``; ``source`` says where that was read. The
pinned releases were read from their installed sources (file:line), older ones from the
libraries' git tags (``git show vX.Y.Z:path``). "-" in ``value`` means the setting did not
exist in those releases (the behaviour is described in ``note``).

Regenerate the document after editing the data:

    python -m rlviz.algorithms.library_defaults > docs/library-defaults.md

``tests/test_library_defaults.py`` checks that the committed document equals the generated text.
"""

from __future__ import annotations

from dataclasses import dataclass

TRL_PINNED = "1.16.0"
VERL_PINNED = "0.9.1"


@dataclass(frozen=True)
class Default:
    library: str  # "trl" or "verl"
    setting: str  # GRPOConfig / PPOConfig keyword (TRL) or full Hydra key (verl)
    value: str  # as the library spells it
    from_version: str
    to_version: str | None  # None: still so in the pinned release
    source: str
    note: str = ""


# verl prefix of the actor (policy-loss) settings
A = "actor_rollout_ref.actor"

DEFAULTS: tuple[Default, ...] = (
    # ---- TRL GRPOTrainer (first released in 0.14) ----
    Default("trl", "beta", "0.04", "0.14", "0.18", "tags v0.14.0..v0.18.0, grpo_config.py",
            "KL weight; k3 in the loss"),
    Default("trl", "beta", "0.0", "0.19", None,
            "v0.19.0 grpo_config.py:412-413; 1.16.0 trl/trainer/grpo_config.py:681-682",
            "no KL term and no reference model unless set"),
    Default("trl", "(aggregation, no option)", "seq-mean-token-mean", "0.14", "0.15",
            "v0.15.0 grpo_trainer.py:710 `((per_token_loss * completion_mask).sum(dim=1) / "
            "completion_mask.sum(dim=1)).mean()`"),
    Default("trl", "(aggregation, no option)", "token-mean", "0.16", "0.16",
            "v0.16.0 grpo_trainer.py:932 `(per_token_loss * completion_mask).sum() / "
            "completion_mask.sum()`"),
    Default("trl", "loss_type", '"bnpo"', "0.17", "0.21", "v0.17.0 grpo_config.py:123",
            'options "grpo", "bnpo", "dr_grpo"'),
    Default("trl", "loss_type", '"dapo"', "0.22", None,
            "v0.22.0; 1.16.0 trl/trainer/grpo_config.py:801-802",
            '"dapo" added in 0.22; 1.16.0 also has "cispo", "sapo", "luspo", "vespo"'),
    Default("trl", "epsilon / num_iterations", "-", "0.14", "0.15",
            "v0.15.0 grpo_trainer.py:708 (ratio exp(logp - logp.detach()), no clip)",
            "one update per batch, nothing to clip"),
    Default("trl", "epsilon", "0.2", "0.16", None,
            "v0.16.0; 1.16.0 trl/trainer/grpo_config.py:693-694",
            "epsilon_high (None = epsilon) from 0.16 too"),
    Default("trl", "num_iterations", "1", "0.16", None,
            "v0.16.0; 1.16.0 trl/trainer/grpo_config.py:689-690",
            "one update per generation batch: rho = 1 unless steps_per_generation > "
            "gradient_accumulation_steps"),
    Default("trl", "scale_rewards", "True", "0.16", "0.21", "v0.16.0 grpo_config.py:289",
            "bool: divide by the group std or not"),
    Default("trl", "scale_rewards", '"group"', "0.22", None,
            "1.16.0 trl/trainer/grpo_config.py:789-790; True/False mapped at :1078",
            '"group", "batch" or "none"'),
    Default("trl", "importance_sampling_level", '"token"', "0.20", None,
            "v0.20.0; 1.16.0 trl/trainer/grpo_config.py:760-761",
            '"sequence" = GSPO\'s ratio'),
    Default("trl", "mask_truncated_completions", "False", "0.17", None,
            "v0.17.0; 1.16.0 trl/trainer/grpo_config.py:836-837",
            "True = DAPO's overlong filtering"),
    Default("trl", "use_bias_correction_kl", "False", "0.26", "1.9",
            "tags v0.26.0..v1.9.0 (PR huggingface/trl#4638)",
            "k3 multiplied by the ratio pi_theta / pi_old when True"),
    Default("trl", "use_bias_correction_kl", "True", "1.10", None,
            "1.16.0 trl/trainer/grpo_config.py:972-973, grpo_trainer.py:3104-3105 "
            "(PR huggingface/trl#6503; first release with True not checked against a tag)",
            "changes the KL gradient whenever beta != 0, on-policy too (notebook 04)"),
    Default("trl", "PPOTrainer (adap_kl_ctrl, AdaptiveKLController)", "adap_kl_ctrl=True",
            "0.1", "0.11", "v0.11.4 trl/trainer/ppo_config.py:75",
            "the original PPOTrainer; AdaptiveKLController stayed exported, unused, to 0.13"),
    Default("trl", "PPOTrainer: lam / kl_coef / cliprange_value / vf_coef",
            "0.95 / 0.05 / 0.2 / 0.1", "0.12", "0.28",
            "v0.11.4 trl/trainer/ppov2_config.py:57-62 (PPOv2, renamed PPOTrainer in 0.12)",
            "trl.PPOTrainer; a deprecated alias of trl.experimental.ppo in 0.26-0.28"),
    Default("trl", "experimental.ppo.PPOTrainer: lam / kl_coef / kl_estimator",
            '0.95 / 0.05 / "k1"', "0.26", "1.9",
            "v1.9.0 trl/experimental/ppo/ppo_config.py (PR huggingface/trl#4482)",
            "moved to trl.experimental in 0.26"),
    Default("trl", "PPOTrainer", "-", "1.16", None,
            "1.16.0: no trl/experimental/ppo in the wheel (PR huggingface/trl#7020)",
            "removed: TRL 1.16.0 has no PPO trainer"),
    # the rollout/trainer mismatch corrections of notebook 07 (only the pinned release read)
    Default("trl", "vllm_importance_sampling_correction", "True", "1.16", None,
            "1.16.0 trl/trainer/grpo_config.py:925-926 (older releases not checked)",
            "applies only when generating with vLLM"),
    Default("trl", "vllm_importance_sampling_mode", '"sequence_mask"', "1.16", None,
            "1.16.0 trl/trainer/grpo_config.py:934-935 (older releases not checked)",
            "masked IS at sequence level (rlviz: mis, level sequence)"),
    Default("trl", "vllm_importance_sampling_clip_max", "3.0", "1.16", None,
            "1.16.0 trl/trainer/grpo_config.py:947-948 (older releases not checked)",
            "the cap C of the truncate / mask modes"),
    Default("trl", "vllm_importance_sampling_clip_min", "None", "1.16", None,
            "1.16.0 trl/trainer/grpo_config.py:955-956 (older releases not checked)"),
    # ---- verl ----
    Default("verl", "algorithm.lam", "1.0", "0.2", None,
            "every tag v0.2..v0.7 and main 0.8.dev ppo_trainer.yaml; 0.9.1 "
            "trainer/config/_generated_ppo_trainer.yaml:860",
            "GAE lambda (TRL's PPO used 0.95)"),
    Default("verl", "algorithm.gamma", "1.0", "0.2", None,
            "0.9.1 trainer/config/_generated_ppo_trainer.yaml:859"),
    Default("verl", f"{A}.entropy_coeff", "0.001", "0.2", "0.3",
            "v0.3.0.post1 trainer/config/ppo_trainer.yaml"),
    Default("verl", f"{A}.entropy_coeff", "0", "0.4", None,
            "0.9.1 trainer/config/_generated_ppo_trainer.yaml:103"),
    Default("verl", f"{A}.clip_ratio_c", "-", "0.2", "0.3",
            "v0.3.0.post1 trainer/ppo/core_algos.py:272-303", "no dual clip"),
    Default("verl", f"{A}.clip_ratio_c", "3.0", "0.4", None,
            "0.9.1 _generated_ppo_trainer.yaml:100; core_algos.py:1323-1361 "
            "(`assert clip_ratio_c > 1.0`)",
            "dual clip, always on in the vanilla policy loss (absent from the gspo loss)"),
    Default("verl", f"{A}.clip_ratio_low / clip_ratio_high", "0.2 / 0.2", "0.4", None,
            "0.9.1 _generated_ppo_trainer.yaml:86-87; core_algos.py:1320-1321",
            "set explicitly, so overriding clip_ratio alone changes nothing"),
    Default("verl", f"{A}.loss_agg_mode", "-", "0.2", "0.3", "v0.3.0.post1 core_algos.py",
            "token-mean, hard-coded"),
    Default("verl", f"{A}.loss_agg_mode", "token-mean", "0.4", None,
            "0.9.1 _generated_ppo_trainer.yaml:101"),
    Default("verl", "seq-mean-token-sum-norm divisor", "T (per micro-batch)", "0.4", "0.8",
            "v0.4.0 core_algos.py:442-449; v0.7.0 core_algos.py:819-823; main 0.8.0.dev",
            "sum of the micro-batch's sequence losses / T (padded width, or loss_scale_factor "
            "from 0.7), then / the accumulation steps"),
    Default("verl", "seq-mean-token-sum-norm divisor",
            "ppo_mini_batch_size * rollout.n * loss_scale_factor", "0.9.1", None,
            "0.9.1 core_algos.py:1180-1193, ray_trainer.py:1352-1362, "
            "workers/utils/losses.py:67",
            "every response of the mini-batch, empty ones included (like Dr. GRPO)"),
    Default("verl", "seq-mean-token-mean divisor", "ppo_mini_batch_size * rollout.n", "0.9.1",
            None, "0.9.1 core_algos.py:1196-1203, ray_trainer.py:1352-1362",
            "empty responses counted, as TRL loss_type=\"grpo\"; rlviz.aggregate does not"),
    Default("verl", f"{A}.loss_scale_factor", "null", "0.7", None,
            "0.9.1 _generated_ppo_trainer.yaml:102",
            "null = the padded width of each micro-batch"),
    Default("verl", f"{A}.kl_loss_type", "low_var_kl", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:110; value clamped to [-10, 10] at "
            "core_algos.py:2245 (v0.2: core_algos.py:332)",
            'k3; "k3+" (k3 value, k2 gradient) in 0.9.1, core_algos.py:2188-2213'),
    Default("verl", f"{A}.kl_loss_coef", "0.001", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:109"),
    Default("verl", f"{A}.use_kl_loss", "False", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:106"),
    Default("verl", "algorithm.use_kl_in_reward / kl_penalty", "False / kl", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:869-870", '"kl" is k1'),
    Default("verl", "algorithm.kl_ctrl.type / kl_coef", "fixed / 0.001", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:873-874"),
    Default("verl", "algorithm.norm_adv_by_std_in_grpo", "True", "0.4", None,
            "0.9.1 _generated_ppo_trainer.yaml:862", "False = Dr. GRPO's advantages"),
    Default("verl", f"{A}.ppo_epochs", "1", "0.2", None,
            "0.9.1 _generated_ppo_trainer.yaml:111",
            "rho != 1 only from the second mini-batch: data.train_batch_size / "
            "ppo_mini_batch_size updates per rollout"),
    Default("verl", "critic.cliprange_value", "0.5", "0.9.1", None,
            "0.9.1 _generated_ppo_trainer.yaml:617 (older releases not checked)"),
    Default("verl", "algorithm.rollout_correction.rollout_is", "null", "0.9.1", None,
            "0.9.1 _generated_ppo_trainer.yaml:851 (older releases not checked)",
            "no IS weight between the rollout engine and the trainer unless set "
            "(token / sequence)"),
    Default("verl", "algorithm.rollout_correction.rollout_is_threshold", "2.0", "0.9.1", None,
            "0.9.1 _generated_ppo_trainer.yaml:852 (older releases not checked)",
            "the truncation cap C of TIS"),
    Default("verl", "algorithm.rollout_correction.rollout_rs", "null", "0.9.1", None,
            "0.9.1 _generated_ppo_trainer.yaml:853 (older releases not checked)",
            "no rejection sampling (masked IS) unless set"),
    Default("verl", "algorithm.rollout_correction.bypass_mode", "False", "0.9.1", None,
            "0.9.1 _generated_ppo_trainer.yaml:855 (older releases not checked)",
            "False: the trainer recomputes pi_old; True: the rollout engine's log-probs"),
)


def _versions(d: Default) -> str:
    pinned = TRL_PINNED if d.library == "trl" else VERL_PINNED
    end = f"{pinned} (pinned)" if d.to_version is None else d.to_version
    return d.from_version if d.from_version == end else f"{d.from_version} – {end}"


def markdown() -> str:
    """docs/library-defaults.md, generated from ``DEFAULTS``."""
    lines = [
        "# Library defaults, release by release",
        "",
        "<!-- generated by `python -m rlviz.algorithms.library_defaults`; edit rlviz/library_defaults.py -->",
        "",
        f"What TRL and verl do when a setting is left alone, and since when. Pinned here: "
        f"TRL {TRL_PINNED} and verl {VERL_PINNED}, read from their installed sources "
        "(file:line below); older releases from the libraries' git tags. A setting quoted in "
        "the notebooks or docs holds for the pinned release unless a version is named.",
        "",
    ]
    for library, title in (("trl", "TRL"), ("verl", "verl")):
        pinned = TRL_PINNED if library == "trl" else VERL_PINNED
        lines += [f"## {title} (pinned {pinned})", "",
                  "| setting | value | releases | what it means | source |",
                  "|---|---|---|---|---|"]
        for d in DEFAULTS:
            if d.library == library:
                lines.append(f"| `{d.setting}` | {d.value} | {_versions(d)} | {d.note} "
                             f"| {d.source} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
