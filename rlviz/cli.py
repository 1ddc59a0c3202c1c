"""Command line:

* ``python -m rlviz demo --algo {ppo,grpo} [--steps N] [--seed S]``
* ``python -m rlviz train --algo grpo_paper --task reverse [--steps N] [--seed S]
  [--out metrics.csv]``
* ``python -m rlviz diagnose LOG [--num-iterations N] [--json]``: a TRL trainer_state.json or
  a verl metrics JSON-lines log, checked for the usual "is this number normal?" patterns
* ``python -m rlviz export --algo dr_grpo --to verl``: the recipe as a ready command line of
  verl 0.9.1 (Hydra overrides of main_ppo) or TRL 1.16.0 (``trl grpo`` / GRPOConfig keywords)
"""

from __future__ import annotations

import argparse
import sys

import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rlviz",
        description="rlviz: PPO and GRPO policy losses, reproduced and explained.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the original demo's 10-step loop",
        description="Run the original demo's loop and print its lines. With --seed S the "
        "output equals the demo's code run after torch.manual_seed(S).",
    )
    demo.add_argument("--algo", choices=["ppo", "grpo"], default="grpo",
                      help="the demo's loss (default: grpo, as in the demo's main)")
    demo.add_argument("--steps", type=_positive_int, default=10, help="training steps (default 10)")
    demo.add_argument("--seed", type=int, default=0, help="torch seed (default 0)")
    add_train_parser(sub)
    diag = sub.add_parser(
        "diagnose",
        help="check a TRL or verl training log for the usual patterns",
        description="Read a TRL trainer_state.json (log_history) or a verl metrics log (JSON "
        "lines of its file logger) and print, per pattern found, what is seen (steps, values), "
        "whether it is expected or a problem, why, and the notebook section that explains it.",
    )
    diag.add_argument("log", help="trainer_state.json (TRL) or a .jsonl metrics log (verl)")
    diag.add_argument("--num-iterations", type=_positive_int, default=None, metavar="N",
                      help="TRL num_iterations / verl ppo_epochs of the run, if known")
    diag.add_argument("--json", action="store_true", help="print the findings as JSON")
    add_export_parser(sub)
    return parser


def add_export_parser(sub) -> argparse.ArgumentParser:
    from .algorithms import LOSS_FN_REGISTRY

    exp = sub.add_parser(
        "export",
        help="print an algorithm's recipe as TRL or verl settings",
        description="Print the recipe of an algorithm as a ready command line: Hydra overrides "
        "of verl 0.9.1's main_ppo, or TRL 1.16.0's `trl grpo` arguments (GRPOConfig keywords). "
        "What the library still does differently is printed as comments; a recipe the "
        "library cannot express is an error saying why.",
    )
    exp.add_argument("--algo", choices=list(LOSS_FN_REGISTRY), required=True)
    exp.add_argument("--to", choices=["trl", "verl"], required=True)
    exp.add_argument("--eps-low", type=float, default=None, help="override eps_low")
    exp.add_argument("--eps-high", type=float, default=None, help="override eps_high")
    exp.add_argument("--dual-clip", type=float, default=None, help="dual-clip constant c > 1")
    exp.add_argument("--beta", type=float, default=None, help="override the KL weight")
    exp.add_argument("--group-size", type=_positive_int, default=None,
                     help="responses per prompt G (default 4)")
    return exp


def add_train_parser(sub) -> argparse.ArgumentParser:
    """``train``: a causal policy on a toy task with any algorithm of LOSS_FN_REGISTRY."""
    from .algorithms import LOSS_FN_REGISTRY
    from .tasks import TASKS
    from .trainer import METRIC_DOCS, TrainConfig

    defaults = TrainConfig()
    train = sub.add_parser(
        "train",
        help="train a tiny causal policy on a toy task (PPO, GRPO and variants)",
        description="Train a ~53k-parameter causal transformer on a toy task with a\n"
        "verifiable reward, using one algorithm of LOSS_FN_REGISTRY with its own default\n"
        "hyper-parameters. Prints a progress bar and a summary; --out writes one CSV row\n"
        "of metrics per step.",
        epilog="columns of the --out CSV:\n"
        + "\n".join(f"  {k:19s}{v}" for k, v in METRIC_DOCS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--algo", choices=list(LOSS_FN_REGISTRY), default=defaults.algo,
                       help=f"the algorithm (default {defaults.algo})")
    train.add_argument("--task", choices=list(TASKS), default=defaults.task,
                       help=f"the toy task (default {defaults.task})")
    train.add_argument("--steps", type=_positive_int, default=defaults.steps,
                       help=f"training steps (default {defaults.steps})")
    train.add_argument("--seed", type=int, default=defaults.seed,
                       help=f"seed (default {defaults.seed})")
    train.add_argument("--samples", type=_positive_int, default=defaults.samples_per_step,
                       help=f"responses sampled per step (default {defaults.samples_per_step})")
    add_train_knobs(train, defaults)
    train.add_argument("--stop-reward", type=_unit_float, default=None, metavar="R",
                       help="stop once the mean reward of 5 consecutive steps reaches R")
    train.add_argument("--out", default=None, metavar="CSV",
                       help="write the per-step metrics to this CSV file")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def one_line_error(message):  # argparse prints the usage too; one line is enough
        train.exit(2, f"{train.prog}: error: {message}\n")

    train.error = one_line_error
    return train


def add_train_knobs(train: argparse.ArgumentParser, defaults) -> None:
    """The trainer and loss knobs the controlled experiments change (``TrainConfig``
    fields); a loss knob left unset keeps the algorithm's own default. Each option's name
    is its ``TrainConfig`` field, so ``run_train_command`` passes it on by name."""
    from .causal_policy import POSITIONS
    from .losses.advantages import ADV_SCALES
    from .losses.aggregation import AGG_MODES

    knobs = train.add_argument_group("training knobs (TrainConfig fields)")
    knobs.add_argument("--epochs", type=_positive_int, default=defaults.epochs,
                       help=f"passes over each batch (default {defaults.epochs})")
    knobs.add_argument("--minibatches", type=_positive_int, default=defaults.minibatches,
                       help=f"Adam steps per pass (default {defaults.minibatches})")
    knobs.add_argument("--lr", type=_positive_float, default=defaults.lr,
                       help=f"Adam learning rate (default {defaults.lr})")
    knobs.add_argument("--ent-coef", type=_non_negative_float, default=defaults.ent_coef,
                       help=f"entropy bonus weight (default {defaults.ent_coef}; 0: the "
                       "papers' losses)")
    model = train.add_argument_group("the model (TrainConfig fields)")
    model.add_argument("--n-layers", type=_positive_int, default=defaults.n_layers,
                       help=f"transformer blocks (default {defaults.n_layers})")
    model.add_argument("--hidden-size", type=_positive_int, default=defaults.hidden_size,
                       help=f"model width (default {defaults.hidden_size})")
    model.add_argument("--positions", choices=POSITIONS, default=defaults.positions,
                       help=f"'real': positions count real tokens; 'column': the column of the "
                       f"padded block (default {defaults.positions!r})")
    loss = train.add_argument_group("loss knobs (default: the algorithm's own)")
    loss.add_argument("--loss-agg-mode", choices=AGG_MODES, default=None,
                      help="how the per-token loss becomes one number")
    loss.add_argument("--adv-scale", choices=ADV_SCALES, default=None,
                      help="divide group advantages by the group std, the batch std, or none")
    loss.add_argument("--eps-low", type=_non_negative_float, default=None,
                      help="lower clip: rho >= 1 - eps_low")
    loss.add_argument("--eps-high", type=_non_negative_float, default=None,
                      help="upper clip: rho <= 1 + eps_high (DAPO's clip-higher: 0.28)")
    dapo = train.add_argument_group("DAPO's recipe (arXiv 2503.14476)")
    dapo.add_argument("--dynamic-sampling", action="store_true",
                      help="drop groups whose rewards are all equal and sample again "
                      "(verl algorithm.filter_groups.enable)")
    dapo.add_argument("--max-gen-batches", type=_positive_int,
                      default=defaults.max_gen_batches, metavar="N",
                      help="at most N generation rounds per step with --dynamic-sampling "
                      f"(default {defaults.max_gen_batches})")
    dapo.add_argument("--overlong-filter", action="store_true",
                      help="truncated responses (no EOS) leave the loss")
    dapo.add_argument("--overlong-buffer", type=_non_negative_int,
                      default=defaults.overlong_buffer, metavar="L",
                      help="L_cache of the soft overlong punishment (default 0: off)")


def _number(text: str, kind, what: str, ok) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, float, "a number > 0", lambda v: v > 0 and v != float("inf"))


def _non_negative_float(text: str) -> float:
    return _number(text, float, "a number >= 0", lambda v: 0 <= v < float("inf"))


def _non_negative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def _unit_float(text: str) -> float:
    return _number(text, float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def run_demo_command(args: argparse.Namespace) -> int:
    from .config import Config
    from .demo_training import run_demo

    torch.manual_seed(args.seed)
    cfg = Config(device="cpu")
    run_demo(algo=args.algo, steps=args.steps, cfg=cfg)
    return 0


def run_train_command(args: argparse.Namespace) -> int:
    import dataclasses

    from .trainer import TrainConfig, summary, train

    # every option named like a TrainConfig field (--algo, --lr, --eps-high, ...) sets it
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(samples_per_step=args.samples,
                      **{name: value for name, value in vars(args).items() if name in fields})
    try:
        cfg.validate()
    except ValueError as error:
        print(f"python -m rlviz train: error: {error}", file=sys.stderr)
        return 2
    if args.out is not None:
        try:
            open(args.out, "w").close()  # fail now, not after training
        except OSError as error:
            print(f"python -m rlviz train: error: cannot write --out {args.out!r}: "
                  f"{error.strerror}", file=sys.stderr)
            return 2
    result = train(cfg, progress=not args.no_progress)
    print(summary(result))
    if args.out is not None:
        result.to_csv(args.out)
        print(f"metrics written to {args.out} ({len(result.metrics)} rows)")
    return 0


def run_diagnose_command(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from .diagnose import LogFormatError, diagnose, report

    try:
        result = diagnose(args.log, num_iterations=args.num_iterations)
    except LogFormatError as error:
        print(f"python -m rlviz diagnose: error: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=1))
    else:
        print(report(result), end="")
    return 0


def run_export_command(args: argparse.Namespace) -> int:
    from .config import Config
    from .export import export

    overrides = {"eps_low": args.eps_low, "eps_high": args.eps_high,
                 "dual_clip": args.dual_clip, "beta": args.beta}
    if args.group_size is not None:
        overrides["group_num"] = args.group_size
    try:
        cfg = Config(algo=args.algo, device="cpu", **overrides)
        print(export(cfg, args.to).command())
    except ValueError as error:
        print(f"python -m rlviz export: error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "train":  # one line, like train's other argument errors
        print(f"{parser.prog} train: error: unrecognized arguments: {' '.join(extra)}",
              file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "demo":
        return run_demo_command(args)
    if args.command == "train":
        return run_train_command(args)
    if args.command == "diagnose":
        return run_diagnose_command(args)
    if args.command == "export":
        return run_export_command(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
