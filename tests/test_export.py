"""Exported recipes are accepted by the pinned libraries themselves: TRL 1.16.0's GRPOConfig
reads back every value, and every verl 0.9.1 override names a key of its shipped trainer config,
parses with Hydra's override grammar, and builds verl's ActorConfig."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from rlviz import Config
from rlviz.algorithms import get_spec
from rlviz.export import ExportError, export, exportable, to_trl, to_verl

TRL_ALGOS = exportable("trl")
VERL_ALGOS = exportable("verl")


def test_exportable_lists_are_what_the_libraries_can_run():
    # TRL 1.16.0: GRPOConfig's loss types (no PPO, no REINFORCE++, RLOO is another trainer)
    assert set(TRL_ALGOS) == {"grpo_paper", "dr_grpo", "dapo", "gspo", "cispo", "sapo"}
    assert set(VERL_ALGOS) == {"grpo_paper", "dr_grpo", "dapo", "gspo", "ppo_gae", "rloo",
                               "reinforce_pp", "reinforce_pp_baseline", "cispo", "sapo",
                               "gmpo", "clip_cov", "kl_cov"}


@pytest.mark.parametrize("algo", TRL_ALGOS)
def test_grpo_config_accepts_and_reads_back(algo, tmp_path):
    import trl
    kwargs = to_trl(algo)
    args = trl.GRPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", **kwargs)
    for key, value in kwargs.items():
        assert getattr(args, key) == value, key
    # what the trainer will run with, compared with rlviz's hyper-parameters
    hp = Config(algo=algo, device="cpu").hparams()
    if algo == "cispo":  # TRL's bound is on rho itself, no lower bound (grpo_trainer.py)
        assert args.loss_type == "cispo" and args.epsilon_high == 1.0 + hp.eps_high
    elif algo == "sapo":
        assert (args.sapo_temperature_pos, args.sapo_temperature_neg) == (hp.tau_pos,
                                                                          hp.tau_neg)
    else:
        assert args.epsilon == hp.eps_low
        assert (args.epsilon_high if args.epsilon_high is not None else args.epsilon) == (
            hp.eps_high if hp.eps_high is not None else hp.eps_low)
    assert args.beta == (hp.beta if hp.kl_in == "loss" else 0.0)
    assert args.num_generations == 4


def _verl_yaml():
    """verl's shipped trainer config, read without importing verl (its __init__ imports ray)."""
    import omegaconf

    spec = importlib.util.find_spec("verl")
    assert spec is not None, "verl 0.9.1 is installed by `make setup`"
    path = os.path.join(spec.submodule_search_locations[0], "trainer", "config",
                        "_generated_ppo_trainer.yaml")
    return omegaconf.OmegaConf.load(path), omegaconf.OmegaConf


@pytest.mark.parametrize("algo", VERL_ALGOS)
def test_verl_overrides_name_existing_keys_and_parse(algo):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    base, OmegaConf = _verl_yaml()
    result = export(algo, "verl")
    parsed = OverridesParser.create().parse_overrides(result.overrides())
    assert len(parsed) == len(result.settings)
    cfg = base.copy()
    for override in parsed:
        key = override.key_or_group
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(base, parent) if parent else base
        assert node is not None and leaf in node, f"{key} is not a key of verl's config"
        default = OmegaConf.select(base, key)
        value = override.value()
        if isinstance(default, (bool, str)):  # a bool stays a bool, a string a string
            assert type(value) is type(default), (key, value, default)
        elif default is not None:  # numbers: int or float both read as numbers
            assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        OmegaConf.update(cfg, key, value)
        want = result.settings[key]
        assert OmegaConf.select(cfg, key) == pytest.approx(want) if isinstance(want, float) \
            else OmegaConf.select(cfg, key) == want


@pytest.mark.parametrize("algo", VERL_ALGOS)
def test_verl_actor_config_accepts_the_actor_settings(algo):
    from verl.workers.config import ActorConfig, PolicyLossConfig

    actor = {key.split(".", 2)[2]: value for key, value in export(algo, "verl").settings.items()
             if key.startswith("actor_rollout_ref.actor.")}
    policy_loss = {key.split(".", 1)[1]: actor.pop(key) for key in list(actor)
                   if key.startswith("policy_loss.")}
    config = ActorConfig(strategy="fsdp", rollout_n=4, ppo_micro_batch_size_per_gpu=1,
                         policy_loss=PolicyLossConfig(**policy_loss), **actor)
    hp = Config(algo=algo, device="cpu").hparams()
    assert config.clip_ratio_low == hp.eps_low
    assert config.loss_agg_mode == hp.loss_agg_mode
    # the loss mode verl runs: its own name for each policy term (vanilla = PPO's clip)
    expected = {"gspo": "gspo", "cispo": "cispo", "sapo": "sapo", "gmpo": "geo_mean",
                "clip_cov": "clip_cov", "kl_cov": "kl_cov"}.get(algo, "vanilla")
    assert config.policy_loss.loss_mode == expected
    for key, value in policy_loss.items():
        assert getattr(config.policy_loss, key) == value, key


def test_overrides_reach_the_export():
    cfg = Config(algo="dapo", eps_high=0.3, group_num=8, device="cpu")
    assert to_trl(cfg)["epsilon_high"] == 0.3
    assert to_trl(cfg)["num_generations"] == 8
    verl = to_verl(cfg)
    assert "actor_rollout_ref.actor.clip_ratio_high=0.3" in verl
    assert "actor_rollout_ref.rollout.n=8" in verl
    dual = export(Config(algo="dapo", dual_clip=3.0, device="cpu"), "verl")
    assert dual.settings["actor_rollout_ref.actor.clip_ratio_c"] == 3.0
    assert not any("dual clip" in d for d in dual.differences)
    assert any("dual clip" in d for d in export("dapo", "verl").differences)


@pytest.mark.parametrize("cfg,to,match", [
    ("ppo_gae", "trl", "no PPO trainer"),
    ("grpo", "verl", "demo's algorithm"),
    ("ppo", "trl", "demo's algorithm"),
    (Config(algo="dapo", dual_clip=3.0, device="cpu"), "trl", "no dual clip"),
    (Config(algo="grpo_paper", kl_estimator="k1", device="cpu"), "trl", "k3 only"),
    (Config(algo="dr_grpo", adv_scale="batch", device="cpu"), "verl", "std"),
])
def test_what_cannot_be_expressed_says_why(cfg, to, match):
    with pytest.raises(ExportError, match=match):
        export(cfg, to)


def test_k1_in_the_loss_exports_to_verl():
    verl = to_verl(Config(algo="grpo_paper", kl_estimator="k1", device="cpu"))
    assert "actor_rollout_ref.actor.kl_loss_type=kl" in verl


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown algo"):
        export("nope", "verl")
    with pytest.raises(ValueError, match="to must be one of"):
        export("dapo", "deepspeed")
    with pytest.raises(TypeError, match="cfg must be"):
        export(3, "trl")


def test_cli_prints_a_ready_command():
    run = subprocess.run([sys.executable, "-m", "rlviz", "export", "--algo", "dr_grpo", "--to",
                          "verl"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "# dr_grpo on verl 0.9.1"
    assert "python3 -m verl.trainer.main_ppo \\" in lines
    assert "    algorithm.norm_adv_by_std_in_grpo=false \\" in lines
    assert get_spec("dr_grpo").verl.settings["algorithm.norm_adv_by_std_in_grpo"] is False
    bad = subprocess.run([sys.executable, "-m", "rlviz", "export", "--algo", "ppo_gae", "--to",
                          "trl"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no PPO trainer" in bad.stderr


def test_readme_shows_the_real_export_output():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("$ python -m rlviz export --algo dr_grpo --to verl\n", 1)[1]
    block = block.split("\n```", 1)[0]
    assert block == export("dr_grpo", "verl").command()
