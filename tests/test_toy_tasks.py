"""Toy tasks: rewards against hand-worked examples, prompt layout, errors."""

import pytest
import torch

from rlviz.tasks import BOS, EOS, PAD, SEP, TASKS, get_task, positional_reward, response_symbols


@pytest.mark.parametrize(
    "task_name, prompt, response, expected",
    [
        # reverse 3 1 4 -> 4 1 3
        ("reverse", [3, 1, 4], [4, 1, 3], 1.0),
        ("reverse", [3, 1, 4], [4, 1], 2 / 3),  # 2 right, too short: / max(2, 3)
        ("reverse", [3, 1, 4], [4, 1, 3, 3], 3 / 4),  # 3 right, one extra: / max(4, 3)
        ("reverse", [3, 1, 4], [1, 4, 3], 1 / 3),  # only the last position matches
        ("reverse", [3, 1, 4], [], 0.0),  # empty answer
        ("reverse", [3, 1, 4], [3, 1, 4], 1 / 3),  # the copy is right in the middle only
        ("reverse", [7, 7, 2, 0, 9], [9, 0, 2, 7, 7], 1.0),
        # sort 3 1 4 -> 1 3 4
        ("sort", [3, 1, 4], [1, 3, 4], 1.0),
        ("sort", [3, 1, 4], [4, 1, 3], 0.0),
        ("sort", [5, 0, 5, 2], [0, 2, 5, 5, 5, 5], 4 / 6),
        # copy
        ("copy", [3, 1, 4], [3, 1, 4], 1.0),
        ("copy", [3, 1, 4], [3, 9, 4, 1, 1], 2 / 5),
    ],
)
def test_reward_hand_worked(task_name, prompt, response, expected):
    assert get_task(task_name).reward(prompt, response) == pytest.approx(expected, abs=1e-12)


def test_reward_in_unit_interval_on_random_answers():
    gen = torch.Generator().manual_seed(0)
    for task in TASKS.values():
        for prompt in task.sample_prompts(50, gen):
            length = int(torch.randint(0, 9, (1,), generator=gen))
            answer = torch.randint(0, 10, (length,), generator=gen).tolist()
            assert 0.0 <= task.reward(prompt, answer) <= 1.0
            assert task.reward(prompt, task.target(prompt)) == 1.0


def test_positional_reward_formula():
    # sum_i [r_i == t_i] / max(len(r), n), written out by hand
    assert positional_reward([1, 2, 3, 4], [1, 9, 3], 3) == 2 / 4
    assert positional_reward([], [1, 2, 3], 3) == 0.0


def test_score_reads_up_to_the_first_eos():
    task = get_task("reverse")
    prompts = [[3, 1, 4], [3, 1, 4], [3, 1, 4], [2, 6, 0, 5]]
    responses = torch.tensor([
        [4, 1, 3, EOS, PAD, PAD, PAD, PAD],  # exact
        [4, 1, EOS, 3, PAD, PAD, PAD, PAD],  # stops early: tokens after EOS are ignored
        [4, 1, 3, 5, 5, 5, 5, 5],  # never stops: 3 right out of 8
        [5, 0, 6, 2, EOS, PAD, PAD, PAD],
    ])
    rewards = task.score(prompts, responses)
    assert rewards.tolist() == pytest.approx([1.0, 2 / 3, 3 / 8, 1.0])


def test_response_symbols():
    assert response_symbols([4, 1, EOS, 3]) == [4, 1]
    assert response_symbols(torch.tensor([4, 1, 3])) == [4, 1, 3]


def test_encode_prompts_left_pads_so_sep_is_last():
    task = get_task("reverse")
    ids, mask = task.encode_prompts([[3, 1, 4], [7, 7, 2, 0, 9]])
    assert task.prompt_width == 7
    assert ids.tolist() == [
        [PAD, PAD, BOS, 3, 1, 4, SEP],
        [BOS, 7, 7, 2, 0, 9, SEP],
    ]
    assert mask.tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]]


def test_sample_prompts_lengths_and_seed():
    task = get_task("sort")
    first = task.sample_prompts(200, torch.Generator().manual_seed(3))
    again = task.sample_prompts(200, torch.Generator().manual_seed(3))
    assert first == again
    assert {len(p) for p in first} == {3, 4, 5}
    assert all(0 <= s <= 9 for p in first for s in p)
    assert task.max_new_tokens == 8


def test_unknown_task_lists_the_names():
    with pytest.raises(ValueError, match="Unknown task: 'nope'.*'reverse'.*'sort'"):
        get_task("nope")


def test_bad_prompts_raise():
    task = get_task("reverse")
    with pytest.raises(ValueError, match="prompt 0 has 2 symbols"):
        task.encode_prompts([[1, 2]])
    with pytest.raises(ValueError, match="n must be a positive integer"):
        task.sample_prompts(0, torch.Generator())


def test_show_is_readable():
    line = get_task("reverse").show([3, 1, 4], [4, 1, 3, EOS, PAD])
    assert "3 1 4 -> 4 1 3 <eos>" in line and "reward 1.00" in line
