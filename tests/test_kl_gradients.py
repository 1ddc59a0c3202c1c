"""rlviz.experiments.kl_gradients against plain-Python float64 enumerations.

The references below never call autograd or rlviz: they use the softmax score
d log pi(a) / d logits = onehot(a) - pi, and sum over every token or sequence in loops.
"""

import itertools
import math

import pytest
import torch

from rlviz.experiments import kl_gradients as kg


def softmax(logits):
    m = max(logits)
    e = [math.exp(z - m) for z in logits]
    s = sum(e)
    return [x / s for x in e]


def score(probs, a):
    """d log pi(a) / d logits."""
    return [(1.0 if j == a else 0.0) - probs[j] for j in range(len(probs))]


def add(acc, vec, w):
    for j, v in enumerate(vec):
        acc[j] += w * v


def loop_token_expectations(policy, ref, old):
    """E_old[value] and E_old[gradient w.r.t. the policy logits] of each term, by hand."""
    pi, q, po = softmax(policy), softmax(ref), softmax(old)
    V = len(pi)
    values = {k: 0.0 for k in kg.KL_TERMS}
    grads = {k: [0.0] * V for k in kg.KL_TERMS}
    for x in range(V):
        k1 = math.log(pi[x]) - math.log(q[x])
        u = q[x] / pi[x]
        k3 = u - 1 - math.log(u)
        rho = pi[x] / po[x]
        s = score(pi, x)
        values["k1"] += po[x] * k1
        values["k2"] += po[x] * 0.5 * k1 * k1
        values["k3"] += po[x] * k3
        values["k3 x rho"] += po[x] * rho * k3
        values["k3+"] += po[x] * k3
        add(grads["k1"], s, po[x])                      # d k1 = s
        add(grads["k2"], s, po[x] * k1)                 # d k2 = k1 s
        add(grads["k3"], s, po[x] * (1 - u))            # d k3 = (1 - u) s
        add(grads["k3 x rho"], s, po[x] * rho * (k3 + 1 - u))  # d(rho k3) = rho (k3 + 1 - u) s
        add(grads["k3+"], s, po[x] * k1)                # straight-through: k2's gradient
    kl = sum(pi[x] * (math.log(pi[x]) - math.log(q[x])) for x in range(V))
    reverse = [pi[j] * (math.log(pi[j]) - math.log(q[j]) - kl) for j in range(V)]
    forward = [pi[j] - q[j] for j in range(V)]
    return values, grads, kl, reverse, forward


@pytest.mark.parametrize("off_policy", [False, True])
def test_token_terms_match_loops(off_policy):
    case = kg.token_case(vocab_size=5, drift=0.9, off_policy=0.7, seed=3)
    old = case["old"] if off_policy else case["policy"]
    res = kg.token_kl_terms(case["policy"], case["ref"], case["old"] if off_policy else None)
    values, grads, kl, reverse, forward = loop_token_expectations(
        case["policy"].tolist(), case["ref"].tolist(), old.tolist())
    assert res["kl"] == pytest.approx(kl, abs=1e-13)
    assert res["grad_reverse"].tolist() == pytest.approx(reverse, abs=1e-13)
    assert res["grad_forward"].tolist() == pytest.approx(forward, abs=1e-13)
    for kind in kg.KL_TERMS:
        assert res["value"][kind] == pytest.approx(values[kind], abs=1e-13), kind
        assert res["grad"][kind].tolist() == pytest.approx(grads[kind], abs=1e-13), kind


def test_token_claims_of_notebook_04():
    """What the notebook's table says, checked on a second case."""
    case = kg.token_case(vocab_size=7, drift=1.2, off_policy=0.8, seed=11)
    rows = {(r["setting"], r["kind"]): r for r in kg.token_kl_table(case)}
    on, off = "on-policy", "off-policy"
    assert rows[on, "k1"]["norm_over_reverse"] < 1e-12            # k1 in the loss: nothing
    for kind in ("k2", "k3 x rho", "k3+"):
        assert rows[on, kind]["to_reverse"] < 1e-12                # reverse-KL gradient
    assert rows[on, "k3"]["to_forward"] < 1e-12                    # forward-KL gradient
    assert rows[on, "k3"]["to_reverse"] > 0.05
    assert rows[off, "k3 x rho"]["to_reverse"] < 1e-12             # still exact off-policy
    assert abs(rows[off, "k3 x rho"]["value"] - rows[off, "k3 x rho"]["kl"]) < 1e-12
    for kind in ("k2", "k3", "k3+"):
        assert rows[off, kind]["to_reverse"] > 0.05                # biased off-policy
    assert abs(rows[off, "k3"]["value"] - rows[off, "k3"]["kl"]) > 1e-3


def loop_tree(vocab, length, policy, ref):
    """Sequence KL, its exact gradient and the per-token-k2 expected gradient, by loops.
    policy/ref: dict prefix -> list of logits."""
    P = {p: softmax(z) for p, z in policy.items()}
    Q = {p: softmax(z) for p, z in ref.items()}
    exact = {p: [0.0] * vocab for p in policy}
    partial = {p: [0.0] * vocab for p in policy}
    kl = 0.0
    for seq in itertools.product(range(vocab), repeat=length):
        prob, log_ratio, k1s = 1.0, 0.0, []
        for t, a in enumerate(seq):
            prefix = seq[:t]
            prob *= P[prefix][a]
            k1s.append(math.log(P[prefix][a]) - math.log(Q[prefix][a]))
        log_ratio = sum(k1s)
        kl += prob * log_ratio
        for t, a in enumerate(seq):
            s = score(P[seq[:t]], a)
            add(exact[seq[:t]], s, prob * log_ratio)   # grad KL = E[grad log pi(y) * log ratio]
            add(partial[seq[:t]], s, prob * k1s[t])    # per-token k2: E[sum_t k1_t s_t]
    return kl, exact, partial


def test_tree_against_loops():
    tree = kg.SequenceTree(vocab_size=3, length=3)
    ref = tree.random_logits(1.0, seed=5)
    policy = ref + tree.random_logits(0.8, seed=6)
    rows = {prefix: i for prefix, i in tree.row.items()}
    as_dict = {p: policy[i].tolist() for p, i in rows.items()}
    ref_dict = {p: ref[i].tolist() for p, i in rows.items()}
    kl, exact, partial = loop_tree(3, 3, as_dict, ref_dict)
    grads = tree.gradients(policy, ref)
    assert float(tree.kl(policy, ref)) == pytest.approx(kl, abs=1e-13)
    for prefix, i in rows.items():
        assert grads["exact"][i].tolist() == pytest.approx(exact[prefix], abs=1e-12)
        assert grads["k1 in the reward"][i].tolist() == pytest.approx(exact[prefix], abs=1e-12)
        for kind in ("partial", "k2", "k3 x rho", "k3+"):
            assert grads[kind][i].tolist() == pytest.approx(partial[prefix], abs=1e-12), kind


def test_tree_exact_gradient_by_finite_differences():
    tree = kg.SequenceTree(vocab_size=2, length=3)
    ref = tree.random_logits(1.0, seed=1)
    policy = ref + tree.random_logits(1.0, seed=2)
    grad = tree.gradients(policy, ref)["exact"]
    h = 1e-6
    for i in range(tree.n_prefixes):
        for a in range(2):
            up, down = policy.clone(), policy.clone()
            up[i, a] += h
            down[i, a] -= h
            fd = (float(tree.kl(up, ref)) - float(tree.kl(down, ref))) / (2 * h)
            assert grad[i, a].item() == pytest.approx(fd, abs=1e-8)


def test_partial_is_not_the_full_gradient_on_the_notebook_tree():
    res = kg.sequence_kl_table()
    rows = {r["kind"]: r for r in res["rows"]}
    assert rows["k1 in the reward"]["to_exact"] < 1e-12
    assert rows["k2"]["to_exact"] > 0.1
    assert rows["k3"]["to_exact"] > 0.1
    # values: k1, k3 unbiased for the sequence KL, k2 not
    assert res["values"]["k3"] == pytest.approx(res["values"]["kl"], abs=1e-12)
    assert abs(res["values"]["k2"] - res["values"]["kl"]) > 1e-3


def test_bad_input():
    with pytest.raises(ValueError, match="kind"):
        kg.kl_loss_term(torch.zeros(2), torch.zeros(2), torch.zeros(2), "k4")
    with pytest.raises(ValueError, match="vocab_size"):
        kg.SequenceTree(vocab_size=1)
    with pytest.raises(ValueError, match="policy_logits"):
        kg.token_kl_terms(torch.zeros(2, 2), torch.zeros(2))
