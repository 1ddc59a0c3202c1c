"""Memory and time of ``selective_log_prob`` against ``log_softmax`` + ``gather``.

Cases: the demo's sizes B=8, T=32, V=50257 and a larger one (B=8, T=256, V=50257); for
each, the forward pass alone (logits without grad, as for pi_old / pi_ref) and forward +
backward (logits with grad, as for pi_theta). Then one ``rlviz.train_step`` at the demo's
config, with the demo's formulation (``TinyPolicy.log_prob``: log_softmax + gather) against
the same step with ``log_prob(memory_efficient=True)`` patched onto the same models.

How memory is measured (CPU has no allocator statistics like ``torch.cuda.max_memory_
allocated``): the code runs under ``torch.profiler.profile(profile_memory=True)``, which
receives every allocation and free of torch's CPU allocator, including the temporaries a
kernel allocates internally (e.g. inside ``logsumexp``). Replaying those events in order
gives the running total of bytes allocated since the region started; its maximum is the
*extra peak memory* reported here: memory alive before the region (the logits themselves,
the model, Adam's state) is not counted, memory allocated inside and freed or kept is.
Not seen: memory that libraries allocate outside torch's allocator (oneDNN/MKL scratch),
the same for both paths. The logits' gradient (B, T, V) is part of both backward peaks:
autograd must return it either way.

How time is measured: ``time.perf_counter`` around each call, a warm-up call first, naive
and memory-efficient runs interleaved (so machine load hits both alike), median reported.
Timings are noisy on a shared 2-core machine; "no loss of speed" allows 10% for noise.

Targets: extra peak memory of selective_log_prob <= 0.5 x the naive path's; median time
<= 1.10 x the naive path's. Run ``python benchmarks/bench_losses.py`` for the table;
``run()`` returns the rows for ``make bench``.
"""

from __future__ import annotations

import functools
import gc
import statistics
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

import rlviz

MB = 1024**2
CASES = [(8, 32, 50257), (8, 256, 50257)]
SPEED_SLACK = 1.10  # timing noise allowed before "slower" counts
MEMORY_TARGET = 0.5


def naive_log_prob(logits, tokens):
    """The demo's formulation: a full (B, T, V) log_softmax, then gather."""
    return logits.log_softmax(dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def peak_extra_bytes(fn) -> int:
    """Maximum over time of bytes allocated (minus freed) by torch's CPU allocator in ``fn``."""
    gc.collect()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [(e.start_ns(), i, e.nbytes())
              for i, e in enumerate(prof.profiler.kineto_results.events())
              if e.name() == "[memory]" and "CPU" in str(e.device_type())]
    running = peak = 0
    for _, _, nbytes in sorted(events):
        running += nbytes
        peak = max(peak, running)
    return peak


def median_seconds(fns: dict, repeats: int) -> dict:
    """Median wall time of each callable, runs interleaved, one warm-up each first."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _forward(log_prob, logits, tokens):
    def run():
        with torch.no_grad():
            log_prob(logits, tokens)
    return run


def _forward_backward(log_prob, logits, tokens, weights):
    def run():
        logits.grad = None
        (log_prob(logits, tokens) * weights).sum().backward()
        logits.grad = None
    return run


def logprob_rows(batch: int, seq_len: int, vocab: int, repeats: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, seq_len, vocab, generator=g)  # (B, T, V)
    tokens = torch.randint(0, vocab, (batch, seq_len), generator=g)  # (B, T)
    weights = torch.randn(batch, seq_len, generator=g)  # (B, T), an arbitrary upstream grad
    case = f"B={batch} T={seq_len} V={vocab}"
    logits_mb = logits.numel() * logits.element_size() / MB
    rows = [{"name": f"logits size, {case}", "value": logits_mb, "unit": "MB", "target": "",
             "ok": None}]
    fast = rlviz.selective_log_prob
    for label, make, leaf in (("forward", _forward, False), ("fwd+bwd", _forward_backward, True)):
        x = logits.clone().requires_grad_(leaf)
        args = (x, tokens) + ((weights,) if leaf else ())
        naive_fn, fast_fn = make(naive_log_prob, *args), make(fast, *args)
        naive_fn()  # warm up kernels and thread pools before profiling
        fast_fn()
        naive_mem, fast_mem = peak_extra_bytes(naive_fn) / MB, peak_extra_bytes(fast_fn) / MB
        secs = median_seconds({"naive": naive_fn, "fast": fast_fn}, repeats)
        rows += [
            {"name": f"log_softmax+gather {label} extra peak, {case}", "value": naive_mem,
             "unit": "MB", "target": "", "ok": None},
            {"name": f"selective_log_prob {label} extra peak, {case}", "value": fast_mem,
             "unit": "MB", "target": f"<= {MEMORY_TARGET} x naive = "
             f"{MEMORY_TARGET * naive_mem:.1f} MB", "ok": fast_mem <= MEMORY_TARGET * naive_mem},
            {"name": f"log_softmax+gather {label} median time, {case}",
             "value": 1e3 * secs["naive"], "unit": "ms", "target": "", "ok": None},
            {"name": f"selective_log_prob {label} median time, {case}",
             "value": 1e3 * secs["fast"], "unit": "ms",
             "target": f"<= naive {1e3 * secs['naive']:.1f} ms (+{SPEED_SLACK - 1:.0%} noise)",
             "ok": secs["fast"] <= SPEED_SLACK * secs["naive"]},
        ]
    return rows


def train_step_rows(repeats: int) -> list[dict]:
    """One demo train_step (Config() defaults, algo "grpo") with either log-prob path."""
    cfg = rlviz.Config(algo="grpo", device="cpu")
    rlviz.set_seed(0)
    policy, ref_policy = rlviz.TinyPolicy(cfg), rlviz.TinyPolicy(cfg)
    ref_policy.load_state_dict(policy.state_dict())
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    batch = rlviz.make_fake_batch(cfg, cfg.group_num * 2)

    def step(memory_efficient: bool):
        def run():
            for model in (policy, ref_policy):
                model.log_prob = functools.partial(type(model).log_prob, model,
                                                   memory_efficient=memory_efficient)
            try:
                rlviz.train_step(cfg, policy, ref_policy, optimizer, *batch)
            finally:
                del policy.log_prob, ref_policy.log_prob
        return run

    demo, fast = step(False), step(True)
    demo()  # the first step creates Adam's state: measure steady-state steps
    fast()
    demo_mem, fast_mem = peak_extra_bytes(demo) / MB, peak_extra_bytes(fast) / MB
    secs = median_seconds({"demo": demo, "fast": fast}, repeats)
    case = f"B={cfg.group_num * 2} T={cfg.seq_len} V={cfg.vocab_size} H={cfg.hidden_size}"
    return [
        {"name": f"train_step, demo log-prob: extra peak, {case}", "value": demo_mem,
         "unit": "MB", "target": "", "ok": None},
        {"name": f"train_step, memory_efficient=True: extra peak, {case}", "value": fast_mem,
         "unit": "MB", "target": f"< demo {demo_mem:.1f} MB", "ok": fast_mem < demo_mem},
        {"name": f"train_step, demo log-prob: median time, {case}", "value": 1e3 * secs["demo"],
         "unit": "ms", "target": "", "ok": None},
        {"name": f"train_step, memory_efficient=True: median time, {case}",
         "value": 1e3 * secs["fast"], "unit": "ms",
         "target": f"<= demo {1e3 * secs['demo']:.1f} ms (+{SPEED_SLACK - 1:.0%} noise)",
         "ok": secs["fast"] <= SPEED_SLACK * secs["demo"]},
    ]


def run() -> list[dict]:
    rows = []
    for (batch, seq_len, vocab), repeats in zip(CASES, (25, 5), strict=True):
        rows += logprob_rows(batch, seq_len, vocab, repeats)
    rows += train_step_rows(repeats=7)
    return rows


def print_rows(rows: list[dict]) -> None:
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        met = {True: "yes", False: "NO", None: ""}[r["ok"]]
        print(f"{r['name']:<{width}}  {r['value']:>9.2f} {r['unit']:<3}  {r['target']:<40} {met}")


if __name__ == "__main__":
    result = run()
    print_rows(result)
    sys.exit(0 if all(r["ok"] is not False for r in result) else 1)
