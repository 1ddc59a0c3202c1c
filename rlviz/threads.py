"""``one_torch_thread``: run small tensor work on one intra-op thread.

rlviz's notebooks and panels work on tiny tensors (a few thousand numbers). There a second
torch thread only adds synchronisation: measured on a busy 2-core machine, a softmax over a
(16, 5) tensor took ~3 us on one thread and ~900 us of CPU on two, and an 8-epoch run of a
tiny policy 17 ms against 900 ms. A fixed thread count also keeps float rounding, hence
the printed numbers, identical from run to run.
"""

from __future__ import annotations

import contextlib

import torch


class one_torch_thread(contextlib.ContextDecorator):  # noqa: N801 (used like a function)
    """``with one_torch_thread(): ...`` or ``@one_torch_thread()``: one torch thread inside,
    the previous thread count restored afterwards (also on error)."""

    def __enter__(self):
        self._previous = torch.get_num_threads()
        if self._previous != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self._previous != 1:
            torch.set_num_threads(self._previous)
        return False
