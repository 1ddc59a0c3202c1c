"""Command line: ``python -m rlviz demo --algo {ppo,grpo} [--steps N] [--seed S]``."""

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
    return parser


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        return run_demo_command(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
