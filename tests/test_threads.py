"""``one_torch_thread``: one thread inside, the previous count restored after, even on error."""

import pytest
import torch

from rlviz.threads import one_torch_thread


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_as_context_manager_and_decorator(two_threads):
    with one_torch_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    assert one_torch_thread()(torch.get_num_threads)() == 1
    assert torch.get_num_threads() == 2


def test_restores_on_error(two_threads):
    with pytest.raises(RuntimeError), one_torch_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_nested_use_keeps_one_thread_until_the_outer_exit(two_threads):
    with one_torch_thread():
        with one_torch_thread():
            pass
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
