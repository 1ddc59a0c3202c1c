"""The micro-batch lesson on real processes: ``torch.distributed`` with the gloo backend,
DistributedDataParallel averaging the gradients, rendezvous on 127.0.0.1 only.

``run_data_parallel(n_ranks=2, n_micro=2)`` starts ``n_ranks`` Python processes with
``torch.multiprocessing`` (spawn or forkserver). Each takes its shard of one toy batch (a linear softmax policy,
float64), backpropagates its ``n_micro`` micro-batches through DDP (``no_sync`` until the
last one, as gradient accumulation does), once per aggregation mode and per normaliser:

* ``"naive"``: each micro-batch divides by its own count (``rlviz.losses.microbatch``);
* ``"global"``: one ``all_reduce(SUM)`` of the local counts first, then every micro-batch
  divides by the global count and multiplies by the world size (DDP's average divides it back).

The parent compares the gradients with those of one process computing the same losses.
Failures surface as ``DistributedRunError``, never as a hang: a rank that dies stops the
others (``torch.multiprocessing`` terminates them), a rank stuck in a collective raises
after ``timeout`` seconds (gloo's timeout), ranks that do not reach the rendezvous within
``startup_timeout`` are stopped, a port that is taken is reported by name, and the process
group is destroyed on every rank. Starting is the slow part (importing torch in a fresh
process takes seconds, far more on a busy machine), hence the two timeouts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from .losses.aggregation import AGG_MODES, aggregate
from .losses.checks import check_number, check_positive_int
from .losses.microbatch import (
    NORMALISERS,
    accumulated_loss,
    chunk_rows,
    loss_normaliser,
    micro_batch_loss,
)
from .masks import mask_from_lengths

HOST = "127.0.0.1"
TOY_LENGTHS = (6, 5, 1, 1, 2, 4, 6, 3)  # unequal, so the naive normaliser is visibly off
TOY_SEQ_LEN, TOY_HIDDEN, TOY_VOCAB = 6, 3, 4


class DistributedRunError(RuntimeError):
    """A rank raised, died, or the run passed its timeout; the message says which."""


# -- the toy problem (the same on every rank: built from the seed) -----------------------

def toy_problem(seed: int = 0, lengths=TOY_LENGTHS) -> dict:
    """A batch of len(lengths) responses for a linear softmax policy, all float64."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    return {
        "features": torch.randn(batch, TOY_SEQ_LEN, TOY_HIDDEN, generator=generator,
                                dtype=torch.float64),  # (B, T, H)
        "actions": torch.randint(0, TOY_VOCAB, (batch, TOY_SEQ_LEN),
                                 generator=generator),  # (B, T)
        "advantages": torch.randn(batch, 1, generator=generator, dtype=torch.float64),  # (B, 1)
        "mask": mask_from_lengths(torch.tensor(lengths), TOY_SEQ_LEN,
                                  dtype=torch.float64),  # (B, T)
        "weight": torch.randn(TOY_VOCAB, TOY_HIDDEN, generator=generator,
                              dtype=torch.float64),  # (V, H)
    }


def toy_model(problem: dict) -> torch.nn.Linear:
    model = torch.nn.Linear(TOY_HIDDEN, TOY_VOCAB, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(problem["weight"])
    return model


def toy_per_token_loss(model, problem: dict, rows=slice(None)) -> torch.Tensor:
    """-A_i log pi(a_it): the policy-gradient loss at ratio 1, (b, T) for the chosen rows."""
    logp = torch.log_softmax(model(problem["features"][rows]), dim=-1)  # (b, T, V)
    chosen = logp.gather(-1, problem["actions"][rows].unsqueeze(-1)).squeeze(-1)  # (b, T)
    return -problem["advantages"][rows] * chosen  # (b, T)


def single_process_gradients(problem: dict, n_ranks: int, n_micro: int,
                             modes=AGG_MODES) -> dict:
    """In one process: the gradient of the single-batch loss, and of the naive and global
    accumulated losses. ``{"single" | "naive" | "global": {mode: (V, H)}}``."""
    out = {"single": {}, "naive": {}, "global": {}}
    for mode in modes:
        for kind in out:
            model = toy_model(problem)
            loss = toy_per_token_loss(model, problem)  # (B, T)
            if kind == "single":
                aggregate(loss, problem["mask"], mode).backward()
            else:
                accumulated_loss(loss, problem["mask"], mode, n_ranks, n_micro, kind).backward()
            out[kind][mode] = model.weight.grad.detach().clone()
    return out


# -- one rank ------------------------------------------------------------------------------

def _loopback_interface() -> str | None:
    names = [name for _, name in socket.if_nameindex() if name.startswith("lo")]
    return names[0] if names else None


def _rank_main(rank, n_ranks, port, n_micro, modes, seed, out_dir, timeout, fault):
    """What each spawned process runs (module level, so ``spawn`` can pickle it)."""
    torch.set_num_threads(1)
    loopback = _loopback_interface()
    if loopback and "GLOO_SOCKET_IFNAME" not in os.environ:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback  # loopback only, even without a network
    dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{port}", rank=rank,
                            world_size=n_ranks, timeout=timedelta(seconds=timeout))
    (Path(out_dir) / f"ready{rank}").touch()  # tells the parent this rank got through
    try:
        if fault == ("die", rank):
            os._exit(3)  # a crash after the rendezvous (tests: the other rank must not hang)
        if fault == ("hang", rank):
            time.sleep(10 * timeout)  # stuck: the others wait in a collective until timeout
        grads = _rank_gradients(rank, n_ranks, n_micro, modes, seed)
        info = {"world_size": dist.get_world_size(), "backend": dist.get_backend()}
    finally:
        dist.destroy_process_group()
    torch.save({"grads": grads, **info, "group_destroyed": not dist.is_initialized()},
               Path(out_dir) / f"rank{rank}.pt")


def _rank_gradients(rank, n_ranks, n_micro, modes, seed) -> dict:
    """This rank's share of the toy batch through DDP: {normaliser: {mode: (V, H)}}."""
    problem = toy_problem(seed)
    mask = problem["mask"]  # (B, T)
    steps = chunk_rows(mask.shape[0], n_ranks, n_micro)[rank]  # this rank's micro-batches
    shard = slice(steps[0].start, steps[-1].stop)
    grads = {normaliser: {} for normaliser in NORMALISERS}
    for mode in modes:
        count = loss_normaliser(mask[shard], mode)  # this rank's D (a 0-dim tensor)
        dist.all_reduce(count, op=dist.ReduceOp.SUM)  # now the global D, on every rank
        for normaliser in NORMALISERS:
            model = toy_model(problem)
            ddp = DistributedDataParallel(model)
            for j, rows in enumerate(steps):
                sync = contextlib.nullcontext() if j == n_micro - 1 else ddp.no_sync()
                with sync:  # accumulate locally, all-reduce (average) on the last step
                    loss = toy_per_token_loss(ddp, problem, rows)  # (b, T)
                    micro_batch_loss(loss, mask[rows], mode, normaliser, n_micro, n_ranks,
                                     count).backward()
            grads[normaliser][mode] = model.weight.grad.detach().clone()
    return grads


# -- the parent ----------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def check_port_free(port: int) -> int:
    """Raise ``DistributedRunError`` naming ``port`` if 127.0.0.1:port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise DistributedRunError(
                f"port {port} on {HOST} is taken ({error.strerror}); pass another port, or "
                "port=None to let the OS pick a free one") from error
    return port


def start_forkserver() -> None:
    """Start the forkserver the ranks are forked from, if it is not running, and return at
    once: it imports torch, ``torch._dynamo`` (DDP's constructor imports it: seconds) and
    this module in the background, so a notebook can call this early and keep working."""
    multiprocessing.set_forkserver_preload(["torch._dynamo", "rlviz.distributed"])
    multiprocessing.get_context("forkserver")  # checks the platform has it
    from multiprocessing import forkserver
    forkserver.ensure_running()


def default_start_method() -> str:
    """``"forkserver"`` where the platform has it, else ``"spawn"``."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def run_data_parallel(n_ranks: int = 2, n_micro: int = 2, modes=AGG_MODES, seed: int = 0,
                      port: int | None = None, timeout: float = 30.0,
                      startup_timeout: float = 300.0, start_method: str | None = None,
                      fault: tuple[str, int] | None = None, check_port: bool = True) -> dict:
    """Spawn ``n_ranks`` gloo processes, run the toy batch through DDP with both
    normalisers, and compare with one process.

    Returns ``grads`` ({"naive" | "global": {mode: (V, H)}} from rank 0), ``reference``
    (``single_process_gradients``), ``ranks_agree`` (every rank ended with the same
    gradients), ``max_diff`` ({"ddp naive vs one-process naive", "ddp global vs single
    batch", "ddp naive vs single batch"}: mode -> max |difference|), ``seconds`` (wall time
    of the spawned run), ``port``, ``world_size``, ``backend`` and ``groups_destroyed``
(every rank's process group was destroyed before it exited).

    ``start_method``: how ``torch.multiprocessing.start_processes`` starts the ranks.
    ``"spawn"`` starts fresh interpreters that each import torch (seconds each);
    ``"forkserver"`` (the default on Linux) spawns one clean server process that imports
    torch, ``torch._dynamo`` (DDP's constructor needs it) and this module once, then forks
    every rank from it: the same isolation as
    spawn (nothing is forked from the possibly multi-threaded caller, e.g. a Jupyter
    kernel), one torch import instead of ``n_ranks``, and later runs start in milliseconds.
    ``"fork"`` is refused: forking a process whose torch threads are running can deadlock.

    ``timeout``: seconds a collective may wait (gloo) once every rank is through the
    rendezvous; ``startup_timeout``: seconds to get there (process start, imports).
    For the failure tests: ``fault=("die", r)`` makes rank r exit with code 3 right after
    the rendezvous, ``fault=("hang", r)`` makes it sleep there; ``check_port=False`` skips
    the parent's port check.
    """
    n_ranks = check_positive_int(n_ranks, "n_ranks")
    n_micro = check_positive_int(n_micro, "n_micro")
    timeout = check_number(timeout, "timeout", low=0.0)
    startup_timeout = check_number(startup_timeout, "startup_timeout", low=0.0)
    if fault is not None and (not isinstance(fault, tuple) or len(fault) != 2
                              or fault[0] not in ("die", "hang")):
        raise ValueError(f"fault must be None, ('die', rank) or ('hang', rank), got {fault!r}")
    problem = toy_problem(seed)
    chunk_rows(problem["mask"].shape[0], n_ranks, n_micro)  # checks the split before spawning
    modes = tuple(modes)
    for mode in modes:
        if mode not in AGG_MODES:
            raise ValueError(f"Unknown mode: {mode!r}. Valid values: "
                             + ", ".join(repr(m) for m in AGG_MODES))
    start_method = default_start_method() if start_method is None else start_method
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"Unknown start_method: {start_method!r}. Valid values: 'spawn', "
                         "'forkserver'")
    if start_method == "forkserver":
        start_forkserver()
    if port is None:
        port = free_port()
    elif check_port:
        check_port_free(port)

    with tempfile.TemporaryDirectory(prefix="rlviz-ddp-") as out_dir:
        start = time.perf_counter()
        context = mp.start_processes(_rank_main, nprocs=n_ranks, join=False,
                                     start_method=start_method,
                                     args=(n_ranks, port, n_micro, modes, seed, out_dir,
                                           timeout, fault))
        _join_or_fail(context, port, n_ranks, Path(out_dir), startup_timeout, timeout)
        seconds = time.perf_counter() - start
        results = [torch.load(Path(out_dir) / f"rank{r}.pt") for r in range(n_ranks)]

    grads = results[0]["grads"]
    ranks_agree = all(torch.equal(other["grads"][kind][mode], grads[kind][mode])
                      for other in results[1:] for kind in NORMALISERS for mode in modes)
    reference = single_process_gradients(problem, n_ranks, n_micro, modes)

    def max_diff(a, b):
        return {mode: (a[mode] - b[mode]).abs().max().item() for mode in modes}

    return {
        "grads": grads,
        "reference": reference,
        "ranks_agree": ranks_agree,
        "max_diff": {
            "ddp naive vs one-process naive": max_diff(grads["naive"], reference["naive"]),
            "ddp global vs single batch": max_diff(grads["global"], reference["single"]),
            "ddp naive vs single batch": max_diff(grads["naive"], reference["single"]),
        },
        "seconds": seconds,
        "port": port,
        "world_size": results[0]["world_size"],
        "groups_destroyed": all(result["group_destroyed"] for result in results),
        "backend": results[0]["backend"],
    }


def _join_or_fail(context, port: int, n_ranks: int, out_dir: Path, startup_timeout: float,
                  timeout: float) -> None:
    """Wait for every rank; turn a failure or a passed deadline into DistributedRunError.
    Until every rank has written its ready file the deadline is ``startup_timeout``; then
    ``2 * timeout`` (a rank stuck in a collective raises after ``timeout`` on its own, with
    a better message: this is the backstop)."""
    start = time.perf_counter()
    started = None
    try:
        while not context.join(timeout=0.05):
            now = time.perf_counter()
            if started is None:
                if all((out_dir / f"ready{r}").exists() for r in range(n_ranks)):
                    started = now
                elif now - start > startup_timeout:
                    _stop(context)
                    raise DistributedRunError(
                        f"the ranks did not reach the rendezvous within startup_timeout = "
                        f"{startup_timeout:g} s; all of them were stopped")
            elif now - started > 2 * timeout:
                _stop(context)
                raise DistributedRunError(f"the ranks did not finish within 2 * timeout = "
                                          f"{2 * timeout:g} s; all of them were stopped")
    except mp.ProcessRaisedException as error:
        _stop(context)
        message = str(error)
        if "EADDRINUSE" in message or "address already in use" in message.lower():
            raise DistributedRunError(f"port {port} on {HOST} is taken: rank "
                                      f"{error.error_index} could not listen on it") from error
        last = message.strip().splitlines()[-1] if message.strip() else ""
        raise DistributedRunError(f"rank {error.error_index} raised: {last}") from error
    except mp.ProcessExitedException as error:
        _stop(context)
        raise DistributedRunError(f"rank {error.error_index} died (exit code "
                                  f"{error.exit_code}); the other ranks were stopped") from error


def _stop(context) -> None:
    for process in context.processes:
        if process.is_alive():
            process.terminate()
        process.join(timeout=5)
