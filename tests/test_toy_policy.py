"""The causal policy and the rollouts: logit/token shift, padding, KV cache, masks, rho = 1."""

import math

import pytest
import torch

from rlviz.causal_policy import POSITIONS, CausalPolicy
from rlviz.rollout import collect_rollout, generate, response_lengths
from rlviz.tasks import BOS, EOS, PAD, SEP, VOCAB_SIZE, get_task


def successor_model(c: float = 5.0) -> tuple[CausalPolicy, float]:
    """A hand-built model whose logits at a position depend only on the token there:
    logits[v] = c if v == (x + 1) mod V else 0, and value = 1 if x == 5 else 0.

    Blocks add nothing (their output projections are zero), positions are zero, token x
    is embedded as e_x = +1 at coordinate 2x and -1 at 2x + 1; the final LayerNorm maps
    it to s * e_x with s = 1 / sqrt(2/64 + 1e-5), and the heads read it back.
    """
    torch.manual_seed(0)
    model = CausalPolicy(vocab_size=VOCAB_SIZE, d_model=64, n_heads=4, n_layers=2)
    d = 64
    basis = torch.zeros(VOCAB_SIZE, d)
    for x in range(VOCAB_SIZE):
        basis[x, 2 * x], basis[x, 2 * x + 1] = 1.0, -1.0
    s = 1.0 / math.sqrt(2.0 / d + 1e-5)
    with torch.no_grad():
        for block in model.blocks:
            for layer in (block.attn.out, block.mlp[2]):
                layer.weight.zero_()
                layer.bias.zero_()
        model.pos_embed.weight.zero_()
        model.tok_embed.weight.copy_(basis)
        for v in range(VOCAB_SIZE):
            model.lm_head.weight[v] = c * basis[(v - 1) % VOCAB_SIZE] / (2 * s)
        model.lm_head.bias.zero_()
        model.value_head.weight[0] = basis[5] / (2 * s)
        model.value_head.bias.zero_()
    return model, c


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_logits_at_t_minus_1_score_the_token_at_t(temperature):
    model, c = successor_model()
    # prompt block of width 4: BOS 3 4 SEP; response EOS(12) 5 7
    seq = torch.tensor([[BOS, 3, 4, SEP, EOS, 5, 7],
                        [BOS, 3, 4, SEP, EOS, PAD, 0]])
    logp, values, logits = model.response_scores(seq, torch.ones_like(seq), 4, temperature)
    k = c / temperature
    high = k - math.log(math.exp(k) + VOCAB_SIZE - 1)  # the successor of the previous token
    low = -math.log(math.exp(k) + VOCAB_SIZE - 1)  # any other token
    # row 0: EOS follows SEP (11 + 1 = 12): high; 5 follows EOS: low; 7 follows 5: low
    # row 1: EOS after SEP: high; PAD (13) after EOS (12): high; 0 after PAD (13): high
    expected = torch.tensor([[high, low, low], [high, high, high]])
    torch.testing.assert_close(logp, expected, atol=1e-4, rtol=0)
    # values: V of the state before each response token, i.e. read at position t - 1
    torch.testing.assert_close(values[0], torch.tensor([0.0, 0.0, 1.0]), atol=1e-4, rtol=0)
    assert logits.shape == (2, 3, VOCAB_SIZE)


def test_left_padding_changes_nothing():
    torch.manual_seed(1)
    model = CausalPolicy()
    short = torch.tensor([[BOS, 3, 1, 4, SEP, 4, 1]])
    padded = torch.tensor([[PAD, PAD, BOS, 3, 1, 4, SEP, 4, 1]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1]])
    logits_short, values_short = model(short)
    logits_padded, values_padded = model(padded, mask)
    torch.testing.assert_close(logits_padded[:, 2:], logits_short, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(values_padded[:, 2:], values_short, atol=1e-5, rtol=1e-5)


def test_column_positions_hide_padding_but_count_it():
    """positions="column": a padded column is still masked (junk there changes no real
    token's logits), but it counts: the same tokens shifted right by two pad columns are
    another input, and zeroing the position table removes the difference. The ``"real"``
    model gives the shifted tokens the same logits (test above)."""
    torch.manual_seed(1)
    model = CausalPolicy(positions="column")
    short = torch.tensor([[BOS, 3, 1, 4, SEP, 4, 1]])
    padded = torch.tensor([[PAD, PAD, BOS, 3, 1, 4, SEP, 4, 1]])
    junk = torch.tensor([[7, 2, BOS, 3, 1, 4, SEP, 4, 1]])
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        logits_padded, values_padded = model(padded, mask)
        logits_junk, values_junk = model(junk, mask)
        torch.testing.assert_close(logits_junk[:, 2:], logits_padded[:, 2:], atol=1e-6, rtol=0)
        torch.testing.assert_close(values_junk[:, 2:], values_padded[:, 2:], atol=1e-6, rtol=0)
        assert float((logits_padded[:, 2:] - model(short)[0]).abs().max()) > 1e-2
        model.pos_embed.weight.zero_()
        torch.testing.assert_close(model(padded, mask)[0][:, 2:], model(short)[0],
                                   atol=1e-5, rtol=1e-5)
    assert model.first_response_position(mask[:, :7]).tolist() == [7]
    assert CausalPolicy().first_response_position(mask[:, :7]).tolist() == [5]


def test_unknown_positions_raise():
    with pytest.raises(ValueError, match=r"positions must be one of \('real', 'column'\)"):
        CausalPolicy(positions="rope")


def test_parameter_count_is_about_100k():
    assert 80_000 < CausalPolicy().num_parameters() < 120_000


def test_response_lengths_include_eos():
    responses = torch.tensor([
        [4, 1, 3, EOS, PAD, PAD],
        [EOS, PAD, PAD, PAD, PAD, PAD],
        [1, 2, 3, 4, 5, 6],  # no EOS: the whole budget
        [1, EOS, 2, EOS, PAD, PAD],  # the first EOS ends it
    ])
    assert response_lengths(responses).tolist() == [4, 1, 6, 2]


@pytest.fixture(scope="module", params=POSITIONS)
def rollout_at_temperature(request):
    torch.manual_seed(2)
    policy = CausalPolicy(positions=request.param)
    reference = CausalPolicy(positions=request.param)
    reference.load_state_dict(policy.state_dict())
    task = get_task("reverse")
    generator = torch.Generator().manual_seed(0)
    batch = collect_rollout(policy, reference, task, num_prompts=16, group_size=4,
                            temperature=0.7, generator=generator)
    return policy, task, batch


def test_rollout_masks_cover_the_eos(rollout_at_temperature):
    _, task, batch = rollout_at_temperature
    assert batch.response_mask.shape == (64, task.max_new_tokens)
    for row in range(len(batch)):
        tokens = batch.responses[row].tolist()
        mask = batch.response_mask[row].tolist()
        if EOS in tokens:
            end = tokens.index(EOS)
            assert mask[: end + 1] == [1.0] * (end + 1)  # EOS included
            assert mask[end + 1:] == [0.0] * (len(tokens) - end - 1)
            assert tokens[end + 1:] == [PAD] * (len(tokens) - end - 1)
        else:
            assert mask == [1.0] * len(tokens)
        assert int(sum(mask)) == int(batch.lengths[row])
    # old and reference log-probs are zero off the mask
    off = batch.response_mask == 0
    assert bool((batch.old_logp[off] == 0).all()) and bool((batch.ref_logp[off] == 0).all())


def test_rollout_groups_share_their_prompt(rollout_at_temperature):
    _, _, batch = rollout_at_temperature
    for g in range(16):
        group = batch.prompts[4 * g: 4 * g + 4]
        assert all(p == group[0] for p in group)
        assert bool((batch.sequences[4 * g: 4 * g + 4, :7] == batch.sequences[4 * g, :7]).all())

    # rewards are the task's, row by row (tokens read up to the first EOS)
    _, task, _ = rollout_at_temperature
    for row in range(len(batch)):
        tokens = batch.responses[row].tolist()
        answer = tokens[: tokens.index(EOS)] if EOS in tokens else tokens
        assert float(batch.rewards[row]) == pytest.approx(task.reward(batch.prompts[row], answer))


def test_rho_is_one_before_the_first_update(rollout_at_temperature):
    """The sampler's cached log-probs (at temperature 0.7) equal the training-time
    recomputation over the full sequence at the same temperature: rho = 1."""
    policy, task, batch = rollout_at_temperature
    with torch.no_grad():
        logp, values, _ = policy.response_scores(batch.sequences, batch.attention_mask,
                                                 task.prompt_width, temperature=0.7)
    on = batch.response_mask > 0
    ratio = torch.exp(logp - batch.old_logp)[on]
    assert float((ratio - 1).abs().max()) < 1e-5
    assert float((values - batch.old_values)[on].abs().max()) < 1e-5
    # and the reference (a copy of the initial policy) agrees too
    assert float((logp - batch.ref_logp)[on].abs().max()) < 1e-5
    # negative control: scoring at another temperature would not give rho = 1
    with torch.no_grad():
        logp_t1, _, _ = policy.response_scores(batch.sequences, batch.attention_mask,
                                               task.prompt_width, temperature=1.0)
    assert float((torch.exp(logp_t1 - batch.old_logp)[on] - 1).abs().max()) > 1e-2


def test_sampling_follows_the_policy_distribution():
    """Frequencies of the first sampled token match softmax(logits / T) of the prompt."""
    torch.manual_seed(3)
    policy = CausalPolicy()
    task = get_task("reverse")
    ids, mask = task.encode_prompts([[3, 1, 4]] * 4000)
    responses, logp, _ = generate(policy, ids, mask, 1, temperature=1.5,
                                  generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits, _ = policy(ids[:1], mask[:1])
    probs = torch.softmax(logits[0, -1] / 1.5, dim=-1)  # (V,)
    counts = torch.bincount(responses[:, 0], minlength=VOCAB_SIZE).float() / 4000
    assert float((counts - probs).abs().max()) < 0.03  # ~4 standard errors at n = 4000
    torch.testing.assert_close(logp[:, 0], probs.log()[responses[:, 0]], atol=1e-5, rtol=0)


def test_greedy_generation_is_deterministic_and_argmax():
    torch.manual_seed(4)
    policy = CausalPolicy()
    task = get_task("reverse")
    ids, mask = task.encode_prompts([[3, 1, 4], [2, 6, 0, 5, 5]])
    first, _, _ = generate(policy, ids, mask, task.max_new_tokens, greedy=True)
    second, _, _ = generate(policy, ids, mask, task.max_new_tokens, greedy=True)
    assert torch.equal(first, second)
    with torch.no_grad():
        logits, _ = policy(ids, mask)
    assert first[:, 0].tolist() == logits[:, -1].argmax(-1).tolist()


def test_bad_temperature_raises():
    task = get_task("reverse")
    ids, mask = task.encode_prompts([[3, 1, 4]])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(CausalPolicy(), ids, mask, 4, temperature=0.0)


def test_trimming_padding_columns_changes_no_score(rollout_at_temperature):
    policy, task, batch = rollout_at_temperature
    rows = torch.arange(0, 64, 7)
    full = batch.select(rows)
    trimmed = full.trimmed(keep_prompt=policy.padding_counts)
    width = trimmed.responses.shape[1]
    assert width == int(full.lengths.max()) and trimmed.sequences.shape[1] <= full.sequences.shape[1]
    with torch.no_grad():
        logp_full, values_full, _ = policy.response_scores(
            full.sequences, full.attention_mask, full.prompt_width, 0.7)
        logp_trim, values_trim, _ = policy.response_scores(
            trimmed.sequences, trimmed.attention_mask, trimmed.prompt_width, 0.7)
    on = trimmed.response_mask > 0
    torch.testing.assert_close(logp_trim[on], logp_full[:, :width][on], atol=1e-5, rtol=0)
    torch.testing.assert_close(values_trim[on], values_full[:, :width][on], atol=1e-5, rtol=0)
    assert torch.equal(trimmed.response_mask, full.response_mask[:, :width])


@pytest.mark.parametrize("positions", POSITIONS)
def test_one_prompt_pass_per_group_gives_the_scores_and_gradients_of_g_copies(positions):
    """response_scores(group_size=G) runs each group's prompt once and shares its keys and
    values: the log-probs, values, logits and parameter gradients equal those of the plain
    pass over every row (float rounding apart)."""
    task = get_task("reverse")
    torch.manual_seed(0)
    policy = CausalPolicy(max_positions=task.prompt_width + task.max_new_tokens,
                          positions=positions)
    generator = torch.Generator().manual_seed(3)
    batch = collect_rollout(policy, policy, task, 4, 4, 1.0, generator).trimmed(
        keep_prompt=policy.padding_counts)  # (16, S)
    results = []
    for group_size in (1, 4):
        policy.zero_grad()
        logp, values, logits = policy.response_scores(
            batch.sequences, batch.attention_mask, batch.prompt_width, 0.8, group_size)
        ((logp * batch.response_mask).sum() + values.square().sum()).backward()
        grads = [p.grad.clone() for p in policy.parameters()]
        results.append((logp.detach(), values.detach(), logits.detach(), grads))
    (*plain, plain_grads), (*grouped, grouped_grads) = results
    for a, b in zip(plain, grouped):
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-5)
    for a, b in zip(plain_grads, grouped_grads):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_rows_that_do_not_share_prompts_fall_back_to_the_plain_pass():
    task = get_task("reverse")
    torch.manual_seed(0)
    policy = CausalPolicy(max_positions=task.prompt_width + task.max_new_tokens)
    ids, mask = task.encode_prompts([[1, 2, 3], [4, 5, 6, 7]])
    responses = torch.tensor([[3, 2, 1, 12], [7, 6, 5, 4]])
    sequences = torch.cat([ids, responses], dim=1)
    attention = torch.cat([mask, torch.ones_like(responses)], dim=1)
    with torch.no_grad():
        plain = policy.response_scores(sequences, attention, task.prompt_width)
        claimed = policy.response_scores(sequences, attention, task.prompt_width, group_size=2)
    for a, b in zip(plain, claimed):
        assert torch.equal(a, b)  # different prompts: the grouped path is not taken


@pytest.mark.parametrize("positions", POSITIONS)
def test_sampling_with_one_prompt_pass_per_group_draws_the_same_tokens(positions):
    """generate(group_size=G) prefills each group's prompt once: with the same generator it
    draws the same tokens with the same log-probs and values as G separate prefills; rows
    that do not share their prompt take the plain path."""
    task = get_task("reverse")
    torch.manual_seed(0)
    policy = CausalPolicy(max_positions=task.prompt_width + task.max_new_tokens,
                          positions=positions)
    prompts = task.sample_prompts(6, torch.Generator().manual_seed(1))
    ids, mask = task.encode_prompts([p for p in prompts for _ in range(4)])  # (24, P)
    plain = generate(policy, ids, mask, task.max_new_tokens, 0.9,
                     torch.Generator().manual_seed(2))
    grouped = generate(policy, ids, mask, task.max_new_tokens, 0.9,
                       torch.Generator().manual_seed(2), group_size=4)
    assert torch.equal(grouped[0], plain[0])
    for a, b in zip(plain[1:], grouped[1:]):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    mixed_ids, mixed_mask = task.encode_prompts(prompts[:4])  # 4 different prompts
    alone = generate(policy, mixed_ids, mixed_mask, 4, 1.0, torch.Generator().manual_seed(0))
    claimed = generate(policy, mixed_ids, mixed_mask, 4, 1.0, torch.Generator().manual_seed(0),
                       group_size=2)
    for a, b in zip(alone, claimed):
        assert torch.equal(a, b)
