"""Value against gradient of the KL terms libraries put in the loss, computed exactly (notebook 04).

Two enumerable toys, float64, no sampling noise: every expectation is a sum over all outcomes.

* **One token** (``token_kl_terms``): a categorical policy pi (logits with gradient), the policy
  that sampled the tokens pi_old, and the reference. For each KL term put in the loss
  (k1, k2, k3, TRL 1.16.0's k3 x rho, verl 0.9.1's "k3+") the expected *value* and expected
  *gradient* over tokens drawn from pi_old, against KL(pi || ref) and its gradient.
  On-policy means pi_old = pi (detached); off-policy, pi_old differs.
* **A tree of sequences** (``SequenceTree``): an autoregressive tabular policy with one set of
  logits per prefix, every sequence of ``length`` tokens over ``vocab_size`` enumerable.
  Per-token KL terms in the loss give only a *partial* gradient of the sequence KL (Tang &
  Munos 2025, arXiv 2506.09477): they ignore that changing an early token changes which
  later prefixes are visited. k1 in the reward, through the return (each token charged the
  KL of the rest of its sequence), gives the full gradient.

Library lines (the terms as the libraries compute them):
- TRL 1.16.0 grpo_trainer.py:3100-3105: ``per_token_kl = exp(ref - logp) - (ref - logp) - 1``;
  ``if use_bias_correction_kl: per_token_kl = per_token_kl * coef_1`` (coef_1 = exp(logp - old)).
- verl 0.9.1 core_algos.py:2211-2213 (``kl_loss_type="k3+"``): ``backward_score = 0.5 *
  (logprob - ref_logprob).square()``; ``return backward_score - backward_score.detach() +
  forward_score.detach()``.
"""

from __future__ import annotations

import itertools

import torch

from ..losses import kl_estimate

F64 = torch.float64

KL_TERMS = ("k1", "k2", "k3", "k3 x rho", "k3+")
KL_TERM_SOURCES = {
    "k1": "k1 = logp - ref",
    "k2": "k2 = (logp - ref)^2 / 2",
    "k3": "k3 (DeepSeekMath eq. 4; TRL use_bias_correction_kl=False; verl low_var_kl)",
    "k3 x rho": "TRL 1.16.0 default: k3 * pi/pi_old (use_bias_correction_kl=True)",
    "k3+": "verl 0.9.1 kl_loss_type='k3+': k3's value, k2's gradient",
}


def kl_loss_term(logp: torch.Tensor, old_logp: torch.Tensor, ref_logp: torch.Tensor,
                 kind: str) -> torch.Tensor:
    """The per-token KL term a library adds to the loss, same shape as ``logp``.

    ``"k1"``, ``"k2"``, ``"k3"``: ``rlviz.kl_estimate``. ``"k3 x rho"``: k3 * exp(logp - old)
    with the ratio differentiable (TRL 1.16.0, ``use_bias_correction_kl=True``). ``"k3+"``:
    the value of k3 with the gradient of k2 (verl 0.9.1 straight-through).
    """
    if kind in ("k1", "k2", "k3"):
        return kl_estimate(logp, ref_logp, kind)
    k3 = kl_estimate(logp, ref_logp, "k3")
    if kind == "k3 x rho":
        return torch.exp(logp - old_logp) * k3
    if kind == "k3+":
        k2 = kl_estimate(logp, ref_logp, "k2")
        return k2 - k2.detach() + k3.detach()
    raise ValueError(f"kind must be one of {KL_TERMS}, got {kind!r}")


def _as_logits(x, name):
    x = torch.as_tensor(x, dtype=F64)
    if x.ndim != 1 or x.numel() < 2:
        raise ValueError(f"{name} must be a 1-d tensor of at least 2 logits, got shape "
                         f"{tuple(x.shape)}")
    return x


def token_case(vocab_size: int = 6, drift: float = 1.0, off_policy: float = 0.6,
               seed: int = 0) -> dict[str, torch.Tensor]:
    """Logits (V,) float64 of a reference, a policy drifted from it, and an older policy
    drifted back part of the way: ``ref``, ``policy``, ``old`` (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    ref = torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    policy = ref + drift * torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    old = policy + off_policy * torch.randn(vocab_size, generator=generator, dtype=F64)  # (V,)
    return {"ref": ref, "policy": policy, "old": old}


def token_kl_terms(policy_logits, ref_logits, old_logits=None) -> dict:
    """Exact expectations over one token x ~ pi_old (``old_logits``; None = on-policy).

    Returns ``kl`` = KL(pi || ref), ``grad_reverse`` = its gradient w.r.t. the policy logits,
    ``grad_forward`` = the gradient of KL(ref || pi), and for each term of ``KL_TERMS``:
    ``value[kind]`` = E_old[term] and ``grad[kind]`` = E_old[grad of the term] (V,), where
    the sampling weights pi_old(x) are constants, as they are for autograd in training.
    """
    theta = _as_logits(policy_logits, "policy_logits").clone().requires_grad_(True)
    ref = torch.log_softmax(_as_logits(ref_logits, "ref_logits"), dim=0)  # (V,)
    logp = torch.log_softmax(theta, dim=0)  # (V,)
    if old_logits is None:
        old = logp.detach()  # on-policy: pi_old is pi, a moment before the update
    else:
        old = torch.log_softmax(_as_logits(old_logits, "old_logits"), dim=0)  # (V,)
    weights = old.exp()  # (V,) sampling probabilities, constants

    def grad_of(scalar):
        (g,) = torch.autograd.grad(scalar, theta, retain_graph=True)
        return g

    kl = (logp.exp() * (logp - ref)).sum()
    out = {"kl": kl.item(), "grad_reverse": grad_of(kl),
           "grad_forward": grad_of(-(ref.exp() * logp).sum()),  # KL(ref||pi) up to a constant
           "value": {}, "grad": {}}
    for kind in KL_TERMS:
        term = kl_loss_term(logp, old, ref, kind)  # (V,) one value per possible token
        expected = (weights * term).sum()
        out["value"][kind] = expected.item()
        out["grad"][kind] = grad_of(expected)
    return out


def relative_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| (b the target)."""
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def token_kl_table(case: dict | None = None) -> list[dict]:
    """One row per (setting, term): on- and off-policy, the value's gap to KL(pi || ref) and
    the gradient's relative gap to the reverse-KL, forward-KL gradients and to zero."""
    case = case or token_case()
    rows = []
    for setting, old in (("on-policy", None), ("off-policy", case["old"])):
        res = token_kl_terms(case["policy"], case["ref"], old)
        for kind in KL_TERMS:
            grad = res["grad"][kind]
            rows.append({
                "setting": setting, "kind": kind, "value": res["value"][kind], "kl": res["kl"],
                "to_reverse": relative_gap(grad, res["grad_reverse"]),
                "to_forward": relative_gap(grad, res["grad_forward"]),
                "norm_over_reverse": float(grad.norm() / res["grad_reverse"].norm()),
            })
    return rows


class SequenceTree:
    """Every sequence of ``length`` tokens over ``vocab_size``, with a tabular autoregressive
    policy and reference: one row of logits per prefix (the empty prefix, then every prefix
    of 1 .. length-1 tokens), so pi(y_t | y_<t) = softmax(logits[prefix])[y_t].

    ``sequences`` (N, T) with N = V^T; ``prefix_index`` (N, T): the row of the prefix y_<t.
    """

    def __init__(self, vocab_size: int = 3, length: int = 3):
        if not (isinstance(vocab_size, int) and vocab_size >= 2):
            raise ValueError(f"vocab_size must be an int >= 2, got {vocab_size!r}")
        if not (isinstance(length, int) and length >= 1):
            raise ValueError(f"length must be an int >= 1, got {length!r}")
        self.vocab_size, self.length = vocab_size, length
        prefixes = [()]
        for depth in range(1, length):
            prefixes += list(itertools.product(range(vocab_size), repeat=depth))
        self.row = {prefix: i for i, prefix in enumerate(prefixes)}
        self.n_prefixes = len(prefixes)
        seqs = list(itertools.product(range(vocab_size), repeat=length))
        self.sequences = torch.tensor(seqs, dtype=torch.long)  # (N, T)
        self.prefix_index = torch.tensor(
            [[self.row[seq[:t]] for t in range(length)] for seq in seqs], dtype=torch.long)  # (N, T)

    def random_logits(self, scale: float = 1.0, seed: int = 0) -> torch.Tensor:
        """(P, V) float64 logits, N(0, scale^2), seeded."""
        generator = torch.Generator().manual_seed(seed)
        return scale * torch.randn(self.n_prefixes, self.vocab_size, generator=generator,
                                   dtype=F64)

    def token_logps(self, logits: torch.Tensor) -> torch.Tensor:
        """log pi(y_t | y_<t) of every token of every sequence, (N, T)."""
        table = torch.log_softmax(logits, dim=-1)  # (P, V)
        return table[self.prefix_index, self.sequences]  # (N, T)

    def kl(self, logits: torch.Tensor, ref_logits: torch.Tensor) -> torch.Tensor:
        """Exact sequence KL(pi || ref) = sum_y pi(y) log(pi(y) / ref(y)), a scalar."""
        logp = self.token_logps(logits).sum(dim=1)  # (N,)
        ref = self.token_logps(ref_logits).sum(dim=1)  # (N,)
        return (logp.exp() * (logp - ref)).sum()

    def gradients(self, logits: torch.Tensor, ref_logits: torch.Tensor) -> dict:
        """Exact expected gradients w.r.t. the policy logits (P, V), sequences drawn from pi.

        * ``"exact"``: the gradient of the sequence KL(pi || ref);
        * ``"k1 in the reward"``: sum_t log pi_t * sg(sum_{t' >= t} k1_t'), the policy
          gradient with reward -k1 per token and gamma = 1 (PPO's KL in the reward, no critic);
        * ``"partial"``: sum over positions t of the gradient of KL(pi(.|y_<t) || ref(.|y_<t))
          with the distribution of the prefixes y_<t held fixed;
        * each of ``KL_TERMS`` summed over the tokens of the sequence, on-policy.
        The sampling weights pi(y) are constants, as they are for autograd in training.
        """
        theta = logits.detach().clone().to(F64).requires_grad_(True)
        logp = self.token_logps(theta)  # (N, T)
        ref = self.token_logps(ref_logits.to(F64))  # (N, T)
        weights = logp.sum(dim=1).exp().detach()  # (N,) pi(y)

        def grad_of(scalar):
            (g,) = torch.autograd.grad(scalar, theta, retain_graph=True)
            return g

        out = {"exact": grad_of(self.kl(theta, ref_logits.to(F64)))}
        k1 = (logp - ref).detach()  # (N, T)
        to_go = k1.flip(1).cumsum(1).flip(1)  # (N, T) sum_{t' >= t} k1_t'
        out["k1 in the reward"] = grad_of((weights * (logp * to_go).sum(dim=1)).sum())

        table = torch.log_softmax(theta, dim=-1)  # (P, V)
        ref_table = torch.log_softmax(ref_logits.to(F64), dim=-1)  # (P, V)
        position_kl = (table.exp() * (table - ref_table)).sum(dim=-1)  # (P,) KL at each prefix
        prefix_prob = torch.zeros(self.n_prefixes, dtype=F64)  # (P,) P(prefix), constant
        prefix_prob.index_add_(0, self.prefix_index.flatten(),
                               weights.view(-1, 1).expand(-1, self.length).flatten())
        # each sequence visits one prefix per position; a prefix of depth d is shared by
        # V^(T-d) sequences, so the sum of their weights is exactly P(prefix)
        out["partial"] = grad_of((prefix_prob * position_kl).sum())

        old = logp.detach()
        for kind in KL_TERMS:
            term = kl_loss_term(logp, old, ref, kind).sum(dim=1)  # (N,)
            out[kind] = grad_of((weights * term).sum())
        return out

    def expected_values(self, logits: torch.Tensor, ref_logits: torch.Tensor) -> dict:
        """E_pi[sum_t term_t] of each of ``KL_TERMS`` on-policy, and the exact ``"kl"``."""
        with torch.no_grad():
            logp = self.token_logps(logits.to(F64))  # (N, T)
            ref = self.token_logps(ref_logits.to(F64))  # (N, T)
            weights = logp.sum(dim=1).exp()  # (N,)
            out = {"kl": float(self.kl(logits.to(F64), ref_logits.to(F64)))}
            for kind in KL_TERMS:
                out[kind] = float((weights * kl_loss_term(logp, logp, ref, kind).sum(1)).sum())
        return out


def sequence_kl_table(vocab_size: int = 3, length: int = 3, scale: float = 1.0,
                      seed: int = 0) -> dict:
    """The tree experiment of notebook 04: expected values and the relative gaps of each
    gradient to the exact sequence-KL gradient and to the partial one."""
    tree = SequenceTree(vocab_size, length)
    ref = tree.random_logits(scale, seed)
    policy = ref + tree.random_logits(scale, seed + 1)
    grads = tree.gradients(policy, ref)
    values = tree.expected_values(policy, ref)
    rows = []
    for kind in ("k1 in the reward", "partial", *KL_TERMS):
        rows.append({"kind": kind, "value": values.get(kind),
                     "to_exact": relative_gap(grads[kind], grads["exact"]),
                     "to_partial": relative_gap(grads[kind], grads["partial"])})
    return {"tree": tree, "policy": policy, "ref": ref, "grads": grads, "values": values,
            "rows": rows, "n_sequences": tree.sequences.shape[0]}
