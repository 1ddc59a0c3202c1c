"""Notebook 04, section 7: the demo's grpo_kl, at the demo's sizes (smaller vocabulary)."""

from __future__ import annotations

import torch

from ...config import Config, set_seed
from ...demo_training import demo_models, make_fake_batch, train_step
from ...losses.aggregation import aggregate
from ...losses.demo import grpo_kl, grpo_loss
from ...losses.kl import kl_estimate
from ...masks import compute_mask
from ...threads import one_torch_thread
from .tokens import exact_kl, sample_from_logp

F64 = torch.float64

# --------------------------------------------------------------------------------------
# 7. The demo's grpo_kl, at the demo's sizes (smaller vocabulary to stay fast)
# --------------------------------------------------------------------------------------

def demo_kl_trace(steps: int = 20, vocab_size: int = 4096, seed: int = 0,
                  sample_seed: int = 1) -> dict[str, list[float]]:
    """Run the demo's GRPO loop (``rlviz.train_step``, demo Config except ``vocab_size``)
    and record, before each step, on that step's batch (policy = after the previous steps):

    * ``demo_kl``: batch mean of ``grpo_kl`` (k1 averaged over each response's tokens);
    * ``demo_kl_term``: the KL's contribution to ``grpo_loss`` (= grpo_loss with zero
      advantages) = beta * sum_i kl_i / (G * L_i): k1 divided by the length twice;
    * ``paper_kl_term``: DeepSeekMath's beta * mean_i (1/L_i) sum_t k3_it on the same tokens;
    * ``uniform_expectation``: exact mean over the vocabulary of log pi - log ref at the
      batch's positions = KL(U || ref) - KL(U || pi), what ``demo_kl`` estimates;
    * ``exact_kl``: exact KL(pi || ref) per position (sum over the vocabulary), averaged;
    * ``k3_on_policy``: k3 on tokens sampled from pi at the same positions (a real estimate);
    * ``loss``: what ``train_step`` returned (the demo's printed loss).

    Global RNG use is the demo's own (the extra samples use their own generator), so the
    losses equal ``rlviz.run_demo``'s for the same seed and Config.

    Runs torch on one thread (restored afterwards): at these small sizes a second thread
    made it 3x slower on a busy 2-core machine (measured), and barely helps on an idle one.
    """
    with one_torch_thread():
        return _demo_kl_trace(steps, vocab_size, seed, sample_seed)


def _demo_kl_trace(steps: int, vocab_size: int, seed: int, sample_seed: int) -> dict:
    cfg = Config(vocab_size=vocab_size, device="cpu")
    cfg.algo = "grpo"
    set_seed(seed)
    policy, ref_policy, optimizer = demo_models(cfg)
    bs = cfg.group_num * 2  # the demo's num_prompts_per_batch = 2
    generator = torch.Generator().manual_seed(sample_seed)
    keys = ("demo_kl", "demo_kl_term", "paper_kl_term", "uniform_expectation", "exact_kl",
            "k3_on_policy", "loss")
    trace = {key: [] for key in keys}
    for _ in range(steps):
        input_ids, actions, rewards = make_fake_batch(cfg, bs)
        with torch.no_grad():
            logp_all = policy(input_ids).log_softmax(-1)  # (B, T, V)
            ref_all = ref_policy(input_ids).log_softmax(-1)  # (B, T, V)
            logp = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
            ref_logp = ref_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # (B, T)
            mask = compute_mask(bs, cfg.seq_len, cfg.input_len, "cpu", logp.dtype)  # (B, T)
            len_oi = torch.full((bs,), cfg.seq_len - cfg.input_len, dtype=torch.long)
            n_tokens = mask.sum()
            kl_term = grpo_loss(logp, logp, ref_logp, torch.zeros(bs), mask, len_oi,
                                cfg.group_num, cfg.clip_range, cfg.beta_kl)
            paper = aggregate(kl_estimate(logp, ref_logp, "k3"), mask, "seq-mean-token-mean")
            per_pos_uniform = (logp_all - ref_all).mean(-1)  # (B, T)
            per_pos_kl = exact_kl(logp_all, ref_all)  # (B, T)
            uniforms = torch.rand(bs, cfg.seq_len, 1, generator=generator, dtype=F64)
            sampled = sample_from_logp(logp_all.to(F64), uniforms)  # (B, T, 1)
            k3_pol = kl_estimate(logp_all.gather(-1, sampled).squeeze(-1),
                                 ref_all.gather(-1, sampled).squeeze(-1), "k3")  # (B, T)
            trace["demo_kl"].append(grpo_kl(logp, ref_logp, mask).mean().item())
            trace["demo_kl_term"].append(kl_term.item())
            trace["paper_kl_term"].append(cfg.beta_kl * paper.item())
            trace["uniform_expectation"].append(((per_pos_uniform * mask).sum() / n_tokens).item())
            trace["exact_kl"].append(((per_pos_kl * mask).sum() / n_tokens).item())
            trace["k3_on_policy"].append(((k3_pol * mask).sum() / n_tokens).item())
        trace["loss"].append(train_step(cfg, policy, ref_policy, optimizer, input_ids, actions,
                                        rewards))
    return trace


def demo_kl_summary(trace: dict[str, list[float]], cfg: Config | None = None) -> dict:
    """What notebook 04, section 8 reads off ``demo_kl_trace``: checks and typical sizes.

    * ``step0_zero``: the demo's KL term is exactly 0 before the first update;
    * ``term_formula``: at every step the term is beta * (B / G) * mean_i kl_i / L (k1
      divided by the length twice; B responses, G per group, all of length L);
    * ``term_negative`` / ``expectation_negative``: in how many of the steps 1..N-1 the
      demo's term, and its expectation KL(U || ref) - KL(U || pi), are negative;
    * ``exact_kl_growing``: exact KL(pi || ref) grows at every step; ``final_exact_kl``;
    * ``k3_over_exact``: sum of k3 on policy samples / sum of the exact KL, steps 1..N-1;
    * ``typical_*``: mean |x| over steps 1..N-1 of ``demo_kl``, ``uniform_expectation``,
      ``demo_kl_term`` and ``paper_kl_term`` (step 0 is exactly 0);
    * ``k1_weight``: the weight beta / (G L^2) with which each token's k1 enters the loss.
    """
    cfg = cfg or Config()
    n_resp, resp_len = cfg.group_num * 2, cfg.seq_len - cfg.input_len
    later = range(1, len(trace["demo_kl"]))
    if len(later) == 0:
        raise ValueError("trace must have at least 2 steps")
    scale = max(abs(term) for term in trace["demo_kl_term"]) or 1.0

    def typical(key):
        return sum(abs(trace[key][s]) for s in later) / len(later)

    formula = [cfg.beta_kl * n_resp / cfg.group_num * kl / resp_len for kl in trace["demo_kl"]]
    return {
        "steps": len(later),
        "step0_zero": trace["demo_kl_term"][0] == 0.0,
        "term_formula": all(abs(term - f) <= 1e-5 * scale
                            for term, f in zip(trace["demo_kl_term"], formula, strict=True)),
        "term_negative": sum(trace["demo_kl_term"][s] < 0 for s in later),
        "expectation_negative": sum(trace["uniform_expectation"][s] < 0 for s in later),
        "exact_kl_growing": all(trace["exact_kl"][s] > trace["exact_kl"][s - 1] for s in later),
        "final_exact_kl": trace["exact_kl"][-1],
        "k3_over_exact": (sum(trace["k3_on_policy"][s] for s in later)
                          / sum(trace["exact_kl"][s] for s in later)),
        "typical_demo_kl": typical("demo_kl"),
        "typical_uniform_expectation": typical("uniform_expectation"),
        "typical_demo_term": typical("demo_kl_term"),
        "typical_paper_term": typical("paper_kl_term"),
        "k1_weight": cfg.beta_kl / (cfg.group_num * resp_len**2),
    }
