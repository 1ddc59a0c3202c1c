"""Two real gloo processes on 127.0.0.1 with DistributedDataParallel: DDP's average is the
naive normaliser, an all-reduced global count gives the single-batch gradient; a dead rank,
a taken port and a passed deadline fail fast with a clear error."""

import socket
import time

import pytest
import torch
from references import ref_token_weights

from rlviz.distributed import (
    HOST,
    DistributedRunError,
    run_data_parallel,
    toy_model,
    toy_per_token_loss,
    toy_problem,
)
from rlviz.losses.aggregation import AGG_MODES


def loop_gradient(problem, mode):
    """d loss / d W of the single batch: the loop weights of tests/references.py pushed
    through autograd of the per-token loss alone (no aggregation code involved)."""
    model = toy_model(problem)
    weights = torch.tensor(ref_token_weights(problem["mask"], mode), dtype=torch.float64)
    (toy_per_token_loss(model, problem) * weights).sum().backward()  # sum_it w_it l_it
    return model.weight.grad


def test_two_gloo_ranks_reproduce_naive_and_single_batch_gradients():
    result = run_data_parallel(n_ranks=2, n_micro=2)
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    assert result["ranks_agree"] and result["groups_destroyed"]
    problem = toy_problem(0)
    for mode in AGG_MODES:
        expected = loop_gradient(problem, mode)  # (V, H)
        scale = expected.abs().max().item()
        global_grad = result["grads"]["global"][mode]
        assert (global_grad - expected).abs().max().item() <= 1e-14 * scale, mode
        naive_gap = result["max_diff"]["ddp naive vs one-process naive"][mode]
        assert naive_gap <= 1e-14 * scale, mode
    # the toy's micro-batches hold 11, 2, 6 and 9 tokens: token-mean's naive weights are off
    assert result["max_diff"]["ddp naive vs single batch"]["token-mean"] > 1e-2
    # every chunk has two non-empty responses: the seq-mean modes agree (factor 1)
    assert result["max_diff"]["ddp naive vs single batch"]["seq-mean-token-mean"] < 1e-14


def test_spawn_start_method_gives_the_same_gradients():
    result = run_data_parallel(n_ranks=2, n_micro=1, modes=("token-mean",),
                               start_method="spawn")
    expected = loop_gradient(toy_problem(0), "token-mean")
    got = result["grads"]["global"]["token-mean"]
    assert (got - expected).abs().max().item() <= 1e-14 * expected.abs().max().item()
    assert result["groups_destroyed"]


def test_a_dead_rank_fails_fast_with_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(DistributedRunError, match=r"rank 1 died \(exit code 3\)"):
        run_data_parallel(fault=("die", 1), timeout=60.0)
    assert time.perf_counter() - start < 50.0  # detected at once, not waited out


def test_a_hanging_rank_fails_after_the_timeout():
    start = time.perf_counter()
    with pytest.raises(DistributedRunError, match="rank 0 raised: .*[Tt]imed? ?out"):
        run_data_parallel(fault=("hang", 1), timeout=2.0)
    assert time.perf_counter() - start < 50.0


def test_a_taken_port_is_named():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(DistributedRunError, match=f"port {port} on 127.0.0.1 is taken"):
            run_data_parallel(port=port)  # the parent's check
        start = time.perf_counter()
        with pytest.raises(DistributedRunError, match=f"port {port} on 127.0.0.1 is taken"):
            run_data_parallel(port=port, check_port=False, timeout=60.0)  # rank 0's bind
        assert time.perf_counter() - start < 50.0


def test_a_passed_startup_deadline_stops_the_ranks():
    # a spawned rank imports torch first: it cannot reach the rendezvous within 0.5 s
    with pytest.raises(DistributedRunError, match="rendezvous within startup_timeout = 0.5 s"):
        run_data_parallel(startup_timeout=0.5, start_method="spawn")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(n_micro=3), ValueError, "n_micro = 3 on n_ranks = 2 must split the batch of 8"),
    (dict(n_ranks=0), ValueError, "n_ranks must be >= 1, got 0"),
    (dict(modes=("mean",)), ValueError, "Unknown mode: 'mean'. Valid values:"),
    (dict(start_method="fork"), ValueError, "Unknown start_method: 'fork'"),
    (dict(timeout=0), ValueError, "timeout must be > 0.0"),
    (dict(fault=("crash", 1)), ValueError, "fault must be None, ('die', rank) or"),
])
def test_bad_input_before_any_process_starts(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_data_parallel(**kwargs)
