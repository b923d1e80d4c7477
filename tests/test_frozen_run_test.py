"""The C-speed frozen test over short runs agrees with the per-word predicate, per model.

``PageRefModel.all_frozen_raws`` is what the frozen-on-entry check uses for blocks of 2..16
pages; a built-in encoding swaps in ``not any(raws)`` or ``max(raws) < 0``. The oracle is
``is_frozen_raw`` applied word by word. A subclass that changes the encoding without its own
run test must fall back to the per-word test.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from buddysim.refcount.baseline import Baseline
from buddysim.refcount.registry import available_models

INT32 = st.integers(-(2**31), 2**31 - 1)
EDGES = st.sampled_from([0, 1, -1, -(2**31), -(2**31) + 1, 2**31 - 1, 0x40000000, -0x40000000])
RUNS = st.lists(st.one_of(INT32, EDGES), min_size=0, max_size=16)


def _view(raws: list[int]) -> memoryview:
    return memoryview(np.array(raws, dtype=np.int32)).cast("B").cast("i")


@given(RUNS)
def test_run_test_matches_the_per_word_predicate(raws: list[int]) -> None:
    for name, cls in available_models().items():
        model = cls()
        expected = all(cls.is_frozen_raw(r) for r in raws)
        assert model.all_frozen_raws(_view(raws)) is expected, (name, raws)


def test_all_frozen_runs_and_one_unfrozen_word() -> None:
    for name, cls in available_models().items():
        model = cls()
        frozen, live = model.frozen_raw(), model.raw_for_count(1)
        assert model.all_frozen_raws(_view([frozen] * 16)), name
        assert not model.all_frozen_raws(_view([frozen] * 7 + [live] + [frozen] * 8)), name


class _OddEncoding(Baseline):
    """A plug-in that keeps Baseline's run test attribute but freezes at 7."""

    name = "odd-encoding"

    @staticmethod
    def is_frozen_raw(raw: int) -> bool:
        return raw == 7


def test_a_new_encoding_does_not_inherit_the_fast_run_test() -> None:
    model = _OddEncoding()
    assert model.all_frozen_raws(_view([7, 7, 7]))
    assert not model.all_frozen_raws(_view([0, 0, 0]))
