"""page_ref.h of every refcount model, cell by cell, and the races of refcount.md §5.

Every expected value below is written out by hand: the value classes from refcount.md §3.3,
the functions from §4.1-§4.8 (version by version), the step tables from §5, and, for the
inverted encoding (not a kernel version), the docstring of ``buddysim/refcount/inverted.py``.
Nothing expected is computed by the code under test.

Notation of the tables (``CELL`` grammar): ``[ret] -> raw [!check ...]``.

* ``ret`` is the return value (``true``/``false``, a number, or empty for ``void``);
* ``raw`` is the 32-bit word after the operation, with the operation carried out (what
  ``debug_vm=off`` and ``debug_vm=warn`` leave);
* each ``!check`` is a debug check that fires, in program order:

  ======  =========================  ==========================================
  code    macro                      evaluated
  ======  =========================  ==========================================
  B       VM_BUG_ON                  before the atomic op (v2 plain modifiers,
                                     ``page_ref_unfreeze``'s ``count == 0``)
  B'      VM_BUG_ON                  after it, on the old value (v2/v3
                                     value-returning modifiers)
  Bp      VM_BUG_ON_PAGE             before (``put_page_testzero``,
                                     ``page_ref_unfreeze``'s ``page_count != 0``)
  Bf      VM_BUG_ON_FOLIO            before (``folio_get``)
  Wp      VM_WARN_ON_ONCE_PAGE       before (v4/v5 plain modifiers, raw word)
  Wp'     VM_WARN_ON_ONCE_PAGE       after, on the old value (v4/v5 page_ref_*_return)
  Wf'     VM_WARN_ON_ONCE_FOLIO      after, on the old value (v4/v5 folio_ref_sub_return)
  ======  =========================  ==========================================

Under ``debug_vm=bug`` the first ``VM_BUG_ON*`` raises :class:`VMBug`; the word is then the
start value if the check runs before the atomic op, the table's value if after. Under
``debug_vm=warn`` every check is recorded in ``model.findings`` and the op proceeds.

Value names: ``F`` = 0x80000000 (bit 31), ``LIM`` = 0xC0000000 (``_PAGEREF_*_LIMIT``),
``INT_MAX`` = 0x7FFFFFFF, ``2^30`` = 0x40000000; all arithmetic wraps at 32 bits.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from buddysim.findings import VMBug
from buddysim.refcount.baseline import Baseline
from buddysim.refcount.final import Final
from buddysim.refcount.inverted import Inverted
from buddysim.refcount.page_ref import (
    INT_MIN,
    DebugCheck,
    DebugVM,
    ListStorage,
    PageRefModel,
    PageRefTrace,
    u32,
    wrap32,
)
from buddysim.refcount.rfc import RFC
from buddysim.refcount.sites import SITE_TABLES, apply_site
from buddysim.refcount.v1 import V1
from buddysim.refcount.v2 import V2
from buddysim.refcount.v3 import V3

F = -0x80000000  # 0x80000000 as int32: PAGEREF_LOCKED_BIT / PAGEREF_FROZEN_BIT
LIM = -0x40000000  # 0xC0000000 as int32: _PAGEREF_LOCKED_LIMIT / _PAGEREF_FROZEN_LIMIT
_NAMES = {"F": F, "LIM": LIM, "INT_MAX": 0x7FFFFFFF}


def s32(v: int) -> int:
    """Independent 32-bit wrap for the expectations (not the module's wrap32)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


_EXPR = re.compile(r"(?:[+-]?\w+(?:\^\d+)?)+")
_TERM = re.compile(r"([+-]?)(\w+(?:\^\d+)?)")


def word(expr: str) -> int:
    """Evaluate a table expression such as ``F+5``, ``LIM-1``, ``2^30``, ``-1``, ``INT_MAX-2``."""
    expr = expr.replace(" ", "")
    if not _EXPR.fullmatch(expr):
        raise ValueError(f"bad table value {expr!r}")
    total = 0
    for sign, atom in _TERM.findall(expr):
        if atom in _NAMES:
            v = _NAMES[atom]
        elif "^" in atom:
            base, exp = atom.split("^")
            v = int(base) ** int(exp)
        else:
            v = int(atom)
        total += -v if sign == "-" else v
    return s32(total)


def test_table_notation() -> None:
    assert word("F") == -(2**31)
    assert word("F+5") == -(2**31) + 5
    assert u32(word("LIM")) == 0xC0000000
    assert u32(word("LIM-1")) == 0xBFFFFFFF
    assert word("2^30-1") == 0x3FFFFFFF
    assert word("-1") == -1
    assert word("INT_MAX+1") == word("F")
    with pytest.raises(ValueError):
        word("F*2")


def test_wrap32_and_u32() -> None:
    assert wrap32(0x7FFFFFFF + 1) == -0x80000000
    assert wrap32(-0x80000001) == 0x7FFFFFFF
    assert wrap32(0xC0000000) == -0x40000000
    assert u32(-1) == 0xFFFFFFFF
    assert u32(F) == 0x80000000


# ------------------------------------------------------------------------------ the tables
CHECKS = {
    "B": ("VM_BUG_ON", True),
    "B'": ("VM_BUG_ON", False),
    "Bp": ("VM_BUG_ON_PAGE", True),
    "Bf": ("VM_BUG_ON_FOLIO", True),
    "Wp": ("VM_WARN_ON_ONCE_PAGE", True),
    "Wp'": ("VM_WARN_ON_ONCE_PAGE", False),
    "Wf'": ("VM_WARN_ON_ONCE_FOLIO", False),
}


@dataclass(frozen=True)
class Cell:
    ret: object
    raw: int
    checks: tuple[str, ...]


def parse_cell(text: str) -> Cell:
    left, arrow, right = text.partition("->")
    if not arrow:
        raise ValueError(f"cell without '->': {text!r}")
    left = left.strip()
    ret: object
    if left == "":
        ret = None
    elif left in ("true", "false"):
        ret = left == "true"
    else:
        ret = word(left)
    raw, *checks = right.split()
    for c in checks:
        if not c.startswith("!") or c[1:] not in CHECKS:
            raise ValueError(f"bad check {c!r} in cell {text!r}")
    return Cell(ret, word(raw), tuple(c[1:] for c in checks))


#: value classes of refcount.md §3.3 as raw words (standard encoding: bit 31 = frozen)
STANDARD = ("1", "2", "INT_MAX", "0", "F", "F+1", "F+5", "LIM-1", "LIM", "-1")
#: the same classes in the inverted encoding (inverted.py): live n = F+n, frozen = 0 + stale
#: increments, stale limit 2^30; in order: live 1, live 2, live INT_MAX, the abortable zero
#: (live bit, count 0), frozen, frozen + 5 stale, just below / at the stale limit, INT_MAX
INVERTED = ("F+1", "F+2", "-1", "F", "0", "5", "2^30-1", "2^30", "INT_MAX")


def _all(cell: str, n: int = len(STANDARD)) -> str:
    return " | ".join([cell] * n)


# Baseline (B1), refcount.md §4.0-§4.6 "Baseline" column of §4.8: the raw word is the count,
# 0 is free/frozen/dead, add_unless is a CAS loop failing only on 0, no debug checks in
# page_ref.h; mm.h's folio_get / put_page_testzero and page_ref_unfreeze keep theirs.
#   columns:  1 | 2 | INT_MAX | 0 | F | F+1 | F+5 | LIM-1 | LIM | -1
BASELINE_ROWS = {
    "page_ref_count": (
        "1 -> 1 | 2 -> 2 | INT_MAX -> INT_MAX | 0 -> 0 | F -> F | F+1 -> F+1 | F+5 -> F+5"
        " | LIM-1 -> LIM-1 | LIM -> LIM | -1 -> -1"
    ),
    "set_page_count(3)": _all("-> 3"),
    "init_page_count": _all("-> 1"),
    "set_page_count(0)": _all("-> 0"),
    "folio_set_count(3)": _all("-> 3"),
    "page_ref_add(2)": "-> 3 | -> 4 | -> F+1 | -> 2 | -> F+2 | -> F+3 | -> F+7 | -> LIM+1 | -> LIM+2 | -> 1",
    "page_ref_sub(2)": (
        "-> -1 | -> 0 | -> INT_MAX-2 | -> -2 | -> INT_MAX-1 | -> INT_MAX | -> F+3 | -> LIM-3"
        " | -> LIM-2 | -> -3"
    ),
    "page_ref_inc": "-> 2 | -> 3 | -> F | -> 1 | -> F+1 | -> F+2 | -> F+6 | -> LIM | -> LIM+1 | -> 0",
    "page_ref_dec": (
        "-> 0 | -> 1 | -> INT_MAX-1 | -> -1 | -> INT_MAX | -> F | -> F+4 | -> LIM-2 | -> LIM-1 | -> -2"
    ),
    "page_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "folio_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "page_ref_inc_return": (
        "2 -> 2 | 3 -> 3 | F -> F | 1 -> 1 | F+1 -> F+1 | F+2 -> F+2 | F+6 -> F+6 | LIM -> LIM"
        " | LIM+1 -> LIM+1 | 0 -> 0"
    ),
    "page_ref_dec_return": (
        "0 -> 0 | 1 -> 1 | INT_MAX-1 -> INT_MAX-1 | -1 -> -1 | INT_MAX -> INT_MAX | F -> F"
        " | F+4 -> F+4 | LIM-2 -> LIM-2 | LIM-1 -> LIM-1 | -2 -> -2"
    ),
    "page_ref_sub_and_test(2)": (
        "false -> -1 | true -> 0 | false -> INT_MAX-2 | false -> -2 | false -> INT_MAX-1"
        " | false -> INT_MAX | false -> F+3 | false -> LIM-3 | false -> LIM-2 | false -> -3"
    ),
    "page_ref_dec_and_test": (
        "true -> 0 | false -> 1 | false -> INT_MAX-1 | false -> -1 | false -> INT_MAX | false -> F"
        " | false -> F+4 | false -> LIM-2 | false -> LIM-1 | false -> -2"
    ),
    # atomic_add_unless(v, nr, 0): fails on 0 only; any other value (even "negative") succeeds
    "page_ref_add_unless_zero(1)": (
        "true -> 2 | true -> 3 | true -> F | false -> 0 | true -> F+1 | true -> F+2 | true -> F+6"
        " | true -> LIM | true -> LIM+1 | true -> 0"
    ),
    "folio_ref_try_add(1024)": (
        "true -> 1025 | true -> 1026 | true -> F+1023 | false -> 0 | true -> F+1024 | true -> F+1025"
        " | true -> F+1029 | true -> LIM+1023 | true -> LIM+1024 | true -> 1023"
    ),
    # atomic_cmpxchg(count -> 0) == count
    "page_ref_freeze(1)": (
        "true -> 0 | false -> 2 | false -> INT_MAX | false -> 0 | false -> F | false -> F+1"
        " | false -> F+5 | false -> LIM-1 | false -> LIM | false -> -1"
    ),
    # VM_BUG_ON_PAGE(page_count(page) != 0): the raw count, so every nonzero word trips it
    "page_ref_unfreeze(1)": (
        "-> 1 !Bp | -> 1 !Bp | -> 1 !Bp | -> 1 | -> 1 !Bp | -> 1 !Bp | -> 1 !Bp | -> 1 !Bp"
        " | -> 1 !Bp | -> 1 !Bp"
    ),
    "page_ref_unfreeze(0)": (
        "-> 0 !Bp !B | -> 0 !Bp !B | -> 0 !Bp !B | -> 0 !B | -> 0 !Bp !B | -> 0 !Bp !B"
        " | -> 0 !Bp !B | -> 0 !Bp !B | -> 0 !Bp !B | -> 0 !Bp !B"
    ),
    # VM_BUG_ON_FOLIO(folio_ref_zero_or_close_to_overflow): count + 127 <= 127 unsigned
    "get_page": ("-> 2 | -> 3 | -> F | -> 1 !Bf | -> F+1 | -> F+2 | -> F+6 | -> LIM | -> LIM+1 | -> 0 !Bf"),
    # VM_BUG_ON_PAGE(page_ref_count(page) == 0), then page_ref_dec_and_test
    "put_page_testzero": (
        "true -> 0 | false -> 1 | false -> INT_MAX-1 | false -> -1 !Bp | false -> INT_MAX"
        " | false -> F | false -> F+4 | false -> LIM-2 | false -> LIM-1 | false -> -2"
    ),
}

# v1 (26 Feb 2026), §4.5 and §4.8 "v1" column: bit 31 is LOCKED, getters mask (taken from v2:
# §4.8 marks v1 n/k), sub_and_test decides the free by CAS(0 -> F), the speculative get is
# add_return + bit test + an atomic_cmpxchg reset loop at >= 0xC0000000, no debug checks,
# no call site converted (the frozen setter is still set_page_count(page, 0)).
#   columns:  1 | 2 | INT_MAX | 0 | F | F+1 | F+5 | LIM-1 | LIM | -1
_MASKED_COUNT = (
    "1 -> 1 | 2 -> 2 | INT_MAX -> INT_MAX | 0 -> 0 | 0 -> F | 0 -> F+1 | 0 -> F+5 | 0 -> LIM-1"
    " | 0 -> LIM | 0 -> -1"
)
V1_ROWS = {
    "page_ref_count": _MASKED_COUNT,
    "set_page_count(3)": _all("-> 3"),
    "init_page_count": _all("-> 1"),
    "set_page_count(0)": _all("-> 0"),
    "folio_set_count(3)": _all("-> 3"),
    "page_ref_add(2)": "-> 3 | -> 4 | -> F+1 | -> 2 | -> F+2 | -> F+3 | -> F+7 | -> LIM+1 | -> LIM+2 | -> 1",
    "page_ref_sub(2)": (
        "-> -1 | -> 0 | -> INT_MAX-2 | -> -2 | -> INT_MAX-1 | -> INT_MAX | -> F+3 | -> LIM-3"
        " | -> LIM-2 | -> -3"
    ),
    "page_ref_inc": "-> 2 | -> 3 | -> F | -> 1 | -> F+1 | -> F+2 | -> F+6 | -> LIM | -> LIM+1 | -> 0",
    "page_ref_dec": (
        "-> 0 | -> 1 | -> INT_MAX-1 | -> -1 | -> INT_MAX | -> F | -> F+4 | -> LIM-2 | -> LIM-1 | -> -2"
    ),
    "page_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "folio_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "page_ref_inc_return": (
        "2 -> 2 | 3 -> 3 | F -> F | 1 -> 1 | F+1 -> F+1 | F+2 -> F+2 | F+6 -> F+6 | LIM -> LIM"
        " | LIM+1 -> LIM+1 | 0 -> 0"
    ),
    "page_ref_dec_return": (
        "0 -> 0 | 1 -> 1 | INT_MAX-1 -> INT_MAX-1 | -1 -> -1 | INT_MAX -> INT_MAX | F -> F"
        " | F+4 -> F+4 | LIM-2 -> LIM-2 | LIM-1 -> LIM-1 | -2 -> -2"
    ),
    # reaching 0 is followed by CAS(0 -> F): the free is owned, the word is frozen
    "page_ref_sub_and_test(2)": (
        "false -> -1 | true -> F | false -> INT_MAX-2 | false -> -2 | false -> INT_MAX-1"
        " | false -> INT_MAX | false -> F+3 | false -> LIM-3 | false -> LIM-2 | false -> -3"
    ),
    "page_ref_dec_and_test": (
        "true -> F | false -> 1 | false -> INT_MAX-1 | false -> -1 | false -> INT_MAX | false -> F"
        " | false -> F+4 | false -> LIM-2 | false -> LIM-1 | false -> -2"
    ),
    # §3.3 last column: 0 succeeds (aborts the pending free); frozen fails leaving a stale
    # increment; a getter observing >= LIM CASes back to F; INT_MAX + 1 = F looks frozen
    # (§3.3 note); -1 + 1 wraps to 0 and "succeeds" (§5.7, the danger the reset prevents)
    "page_ref_add_unless_zero(1)": (
        "true -> 2 | true -> 3 | false -> F | true -> 1 | false -> F+1 | false -> F+2 | false -> F+6"
        " | false -> F | false -> F | true -> 0"
    ),
    "folio_ref_try_add(1024)": (
        "true -> 1025 | true -> 1026 | false -> F+1023 | true -> 1024 | false -> F+1024"
        " | false -> F+1025 | false -> F+1029 | false -> F | false -> F | true -> 1023"
    ),
    # atomic_cmpxchg(count -> F) == count
    "page_ref_freeze(1)": (
        "true -> F | false -> 2 | false -> INT_MAX | false -> 0 | false -> F | false -> F+1"
        " | false -> F+5 | false -> LIM-1 | false -> LIM | false -> -1"
    ),
    # page_count() masks: any frozen value passes VM_BUG_ON_PAGE(page_count != 0) (§4.6)
    "page_ref_unfreeze(1)": (
        "-> 1 !Bp | -> 1 !Bp | -> 1 !Bp | -> 1 | -> 1 | -> 1 | -> 1 | -> 1 | -> 1 | -> 1"
    ),
    "page_ref_unfreeze(0)": (
        "-> 0 !Bp !B | -> 0 !Bp !B | -> 0 !Bp !B | -> 0 !B | -> 0 !B | -> 0 !B | -> 0 !B"
        " | -> 0 !B | -> 0 !B | -> 0 !B"
    ),
    # folio_get's VM_BUG_ON_FOLIO sees the masked 0 of every frozen page
    "get_page": (
        "-> 2 | -> 3 | -> F | -> 1 !Bf | -> F+1 !Bf | -> F+2 !Bf | -> F+6 !Bf | -> LIM !Bf"
        " | -> LIM+1 !Bf | -> 0 !Bf"
    ),
    # §4.4 upstream context: put_page_testzero's pre-check trips on a frozen page (masked 0)
    "put_page_testzero": (
        "true -> F | false -> 1 | false -> INT_MAX-1 | false -> -1 !Bp | false -> INT_MAX !Bp"
        " | false -> F !Bp | false -> F+4 !Bp | false -> LIM-2 !Bp | false -> LIM-1 !Bp"
        " | false -> -2 !Bp"
    ),
}

# RFC (19 Dec 2025), §4.5 "RFC": as v1, but a failed getter issues one CAS(v -> LOCKED)
# whatever v is, so every failure wipes the stale increments at once.
RFC_ROWS = {
    **V1_ROWS,
    "page_ref_add_unless_zero(1)": (
        "true -> 2 | true -> 3 | false -> F | true -> 1 | false -> F | false -> F | false -> F"
        " | false -> F | false -> F | true -> 0"
    ),
    "folio_ref_try_add(1024)": (
        "true -> 1025 | true -> 1026 | false -> F | true -> 1024 | false -> F | false -> F"
        " | false -> F | false -> F | false -> F | true -> 1023"
    ),
}

# v2 as posted (20 Apr 2026), §4.3/§4.4/§6: every modifier asserts
# VM_BUG_ON(__page_count_is_frozen(page_count(page))) with the inverted predicate
# (count > 0 && !(count & BIT)): it fires on every live page (the masked count is >= 1) and
# never on a frozen one; value-returning ones test the old value after the op; and-test has no
# check; set_page_count_as_frozen stores 0; the speculative get is still _unless_zero.
#   columns:  1 | 2 | INT_MAX | 0 | F | F+1 | F+5 | LIM-1 | LIM | -1
V2_ROWS = {
    "page_ref_count": _MASKED_COUNT,
    "set_page_count(3)": _all("-> 3"),
    "init_page_count": _all("-> 1"),
    "set_page_count_as_frozen": _all("-> 0"),
    "folio_set_count(3)": _all("-> 3"),
    "page_ref_add(2)": (
        "-> 3 !B | -> 4 !B | -> F+1 !B | -> 2 | -> F+2 | -> F+3 | -> F+7 | -> LIM+1 | -> LIM+2 | -> 1"
    ),
    "page_ref_sub(2)": (
        "-> -1 !B | -> 0 !B | -> INT_MAX-2 !B | -> -2 | -> INT_MAX-1 | -> INT_MAX | -> F+3"
        " | -> LIM-3 | -> LIM-2 | -> -3"
    ),
    "page_ref_inc": (
        "-> 2 !B | -> 3 !B | -> F !B | -> 1 | -> F+1 | -> F+2 | -> F+6 | -> LIM | -> LIM+1 | -> 0"
    ),
    "page_ref_dec": (
        "-> 0 !B | -> 1 !B | -> INT_MAX-1 !B | -> -1 | -> INT_MAX | -> F | -> F+4 | -> LIM-2"
        " | -> LIM-1 | -> -2"
    ),
    "page_ref_sub_return(2)": (
        "-1 -> -1 !B' | 0 -> 0 !B' | INT_MAX-2 -> INT_MAX-2 !B' | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "folio_ref_sub_return(2)": (
        "-1 -> -1 !B' | 0 -> 0 !B' | INT_MAX-2 -> INT_MAX-2 !B' | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2 | -3 -> -3"
    ),
    "page_ref_inc_return": (
        "2 -> 2 !B' | 3 -> 3 !B' | F -> F !B' | 1 -> 1 | F+1 -> F+1 | F+2 -> F+2 | F+6 -> F+6"
        " | LIM -> LIM | LIM+1 -> LIM+1 | 0 -> 0"
    ),
    "page_ref_dec_return": (
        "0 -> 0 !B' | 1 -> 1 !B' | INT_MAX-1 -> INT_MAX-1 !B' | -1 -> -1 | INT_MAX -> INT_MAX"
        " | F -> F | F+4 -> F+4 | LIM-2 -> LIM-2 | LIM-1 -> LIM-1 | -2 -> -2"
    ),
    "page_ref_sub_and_test(2)": V1_ROWS["page_ref_sub_and_test(2)"],
    "page_ref_dec_and_test": V1_ROWS["page_ref_dec_and_test"],
    "page_ref_add_unless_zero(1)": V1_ROWS["page_ref_add_unless_zero(1)"],
    "folio_ref_try_add(1024)": V1_ROWS["folio_ref_try_add(1024)"],
    "page_ref_freeze(1)": V1_ROWS["page_ref_freeze(1)"],
    "page_ref_unfreeze(1)": V1_ROWS["page_ref_unfreeze(1)"],
    "page_ref_unfreeze(0)": V1_ROWS["page_ref_unfreeze(0)"],
    # folio_get passes on a live page, then folio_ref_inc -> page_ref_inc BUGs (§6: the first
    # get_page() of any live page executes a BUG)
    "get_page": (
        "-> 2 !B | -> 3 !B | -> F !B | -> 1 !Bf | -> F+1 !Bf | -> F+2 !Bf | -> F+6 !Bf | -> LIM !Bf"
        " | -> LIM+1 !Bf | -> 0 !Bf"
    ),
    "put_page_testzero": V1_ROWS["put_page_testzero"],
}

# v3 (4 Jun 2026), §4.3/§4.7, bodies inferred (v3.py docstring): the predicate is corrected to
# count & BIT but every check applies it to a masked count (page_count(), or the old value
# masked), so none of them ever fires: the v4 changelog's "asserts that were never firing"
# (INFERRED, §4.8 marks v3's bodies n/k);
# _unless_frozen name with a try_cmpxchg reset; the setter still stores 0.
#   columns:  1 | 2 | INT_MAX | 0 | F | F+1 | F+5 | LIM-1 | LIM | -1
V3_ROWS = {
    **{k: v for k, v in V1_ROWS.items() if k not in ("set_page_count(0)", "page_ref_add_unless_zero(1)")},
    "set_page_count_as_frozen": _all("-> 0"),
    "page_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2"
        " | -3 -> -3"
    ),
    "folio_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1"
        " | INT_MAX -> INT_MAX | F+3 -> F+3 | LIM-3 -> LIM-3 | LIM-2 -> LIM-2"
        " | -3 -> -3"
    ),
    "page_ref_inc_return": (
        "2 -> 2 | 3 -> 3 | F -> F | 1 -> 1 | F+1 -> F+1 | F+2 -> F+2 | F+6 -> F+6"
        " | LIM -> LIM | LIM+1 -> LIM+1 | 0 -> 0"
    ),
    "page_ref_dec_return": (
        "0 -> 0 | 1 -> 1 | INT_MAX-1 -> INT_MAX-1 | -1 -> -1 | INT_MAX -> INT_MAX | F -> F"
        " | F+4 -> F+4 | LIM-2 -> LIM-2 | LIM-1 -> LIM-1 | -2 -> -2"
    ),
    # same words as v1 when alone: the try_cmpxchg loop breaks where v1's loop does one more CAS
    "page_ref_add_unless_frozen(1)": V1_ROWS["page_ref_add_unless_zero(1)"],
}

# v4/v5 (ae6cb930), §4.2-§4.6 and the "v4 / v5" column of §4.8: set_page_count_frozen stores F;
# plain modifiers VM_WARN_ON_ONCE_PAGE(__page_is_frozen(page)) on the raw word before the op;
# value-returning ones the same test on the old value (FOLIO macro for folio_ref_sub_return);
# the and-test check tests ret + nr with a boolean ret and cannot fire (§7 item 10);
# folio_set_count is gone, folio_init_count sets the head to 1.
#   columns:  1 | 2 | INT_MAX | 0 | F | F+1 | F+5 | LIM-1 | LIM | -1
FINAL_ROWS = {
    "page_ref_count": _MASKED_COUNT,
    "set_page_count(3)": _all("-> 3"),
    "init_page_count": _all("-> 1"),
    "set_page_count_frozen": _all("-> F"),
    "folio_init_count": _all("-> 1"),
    "page_ref_add(2)": (
        "-> 3 | -> 4 | -> F+1 | -> 2 | -> F+2 !Wp | -> F+3 !Wp | -> F+7 !Wp | -> LIM+1 !Wp"
        " | -> LIM+2 !Wp | -> 1 !Wp"
    ),
    "page_ref_sub(2)": (
        "-> -1 | -> 0 | -> INT_MAX-2 | -> -2 | -> INT_MAX-1 !Wp | -> INT_MAX !Wp | -> F+3 !Wp"
        " | -> LIM-3 !Wp | -> LIM-2 !Wp | -> -3 !Wp"
    ),
    "page_ref_inc": (
        "-> 2 | -> 3 | -> F | -> 1 | -> F+1 !Wp | -> F+2 !Wp | -> F+6 !Wp | -> LIM !Wp"
        " | -> LIM+1 !Wp | -> 0 !Wp"
    ),
    "page_ref_dec": (
        "-> 0 | -> 1 | -> INT_MAX-1 | -> -1 | -> INT_MAX !Wp | -> F !Wp | -> F+4 !Wp | -> LIM-2 !Wp"
        " | -> LIM-1 !Wp | -> -2 !Wp"
    ),
    "page_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1 !Wp'"
        " | INT_MAX -> INT_MAX !Wp' | F+3 -> F+3 !Wp' | LIM-3 -> LIM-3 !Wp' | LIM-2 -> LIM-2 !Wp'"
        " | -3 -> -3 !Wp'"
    ),
    "folio_ref_sub_return(2)": (
        "-1 -> -1 | 0 -> 0 | INT_MAX-2 -> INT_MAX-2 | -2 -> -2 | INT_MAX-1 -> INT_MAX-1 !Wf'"
        " | INT_MAX -> INT_MAX !Wf' | F+3 -> F+3 !Wf' | LIM-3 -> LIM-3 !Wf' | LIM-2 -> LIM-2 !Wf'"
        " | -3 -> -3 !Wf'"
    ),
    "page_ref_inc_return": (
        "2 -> 2 | 3 -> 3 | F -> F | 1 -> 1 | F+1 -> F+1 !Wp' | F+2 -> F+2 !Wp' | F+6 -> F+6 !Wp'"
        " | LIM -> LIM !Wp' | LIM+1 -> LIM+1 !Wp' | 0 -> 0 !Wp'"
    ),
    "page_ref_dec_return": (
        "0 -> 0 | 1 -> 1 | INT_MAX-1 -> INT_MAX-1 | -1 -> -1 | INT_MAX -> INT_MAX !Wp' | F -> F !Wp'"
        " | F+4 -> F+4 !Wp' | LIM-2 -> LIM-2 !Wp' | LIM-1 -> LIM-1 !Wp' | -2 -> -2 !Wp'"
    ),
    "page_ref_sub_and_test(2)": V1_ROWS["page_ref_sub_and_test(2)"],
    "page_ref_dec_and_test": V1_ROWS["page_ref_dec_and_test"],
    "page_ref_add_unless_frozen(1)": V1_ROWS["page_ref_add_unless_zero(1)"],
    "folio_ref_try_add(1024)": V1_ROWS["folio_ref_try_add(1024)"],
    "page_ref_freeze(1)": V1_ROWS["page_ref_freeze(1)"],
    "page_ref_unfreeze(1)": V1_ROWS["page_ref_unfreeze(1)"],
    "page_ref_unfreeze(0)": V1_ROWS["page_ref_unfreeze(0)"],
    # folio_get's BUG (masked 0) comes first; under warn the inc then WARNs on the raw bit
    "get_page": (
        "-> 2 | -> 3 | -> F | -> 1 !Bf | -> F+1 !Bf !Wp | -> F+2 !Bf !Wp | -> F+6 !Bf !Wp"
        " | -> LIM !Bf !Wp | -> LIM+1 !Bf !Wp | -> 0 !Bf !Wp"
    ),
    "put_page_testzero": V1_ROWS["put_page_testzero"],
}

# The inverted encoding (inverted.py docstring): bit 31 SET = live, live n stored as F|n,
# 0 = frozen, "hit zero" = the bare bit F, the free is claimed by CAS(F -> 0); failed getters
# leave stale increments below the bit, reset to 0 by a getter observing >= 2^30; getters and
# value-returning modifiers report the masked count; checks as final, on the raw word
# ("frozen" = bit clear), except that and-test has none.
#   columns:  F+1 | F+2 | -1 | F | 0 | 5 | 2^30-1 | 2^30 | INT_MAX
INVERTED_ROWS = {
    "page_ref_count": (
        "1 -> F+1 | 2 -> F+2 | INT_MAX -> -1 | 0 -> F | 0 -> 0 | 0 -> 5 | 0 -> 2^30-1 | 0 -> 2^30"
        " | 0 -> INT_MAX"
    ),
    "set_page_count(3)": _all("-> F+3", 9),
    "init_page_count": _all("-> F+1", 9),
    "set_page_count_frozen": _all("-> 0", 9),
    "folio_init_count": _all("-> F+1", 9),
    "page_ref_add(2)": (
        "-> F+3 | -> F+4 | -> 1 | -> F+2 | -> 2 !Wp | -> 7 !Wp | -> 2^30+1 !Wp | -> 2^30+2 !Wp | -> F+1 !Wp"
    ),
    "page_ref_sub(2)": (
        "-> INT_MAX | -> F | -> -3 | -> INT_MAX-1 | -> -2 !Wp | -> 3 !Wp | -> 2^30-3 !Wp"
        " | -> 2^30-2 !Wp | -> INT_MAX-2 !Wp"
    ),
    "page_ref_inc": (
        "-> F+2 | -> F+3 | -> 0 | -> F+1 | -> 1 !Wp | -> 6 !Wp | -> 2^30 !Wp | -> 2^30+1 !Wp | -> F !Wp"
    ),
    "page_ref_dec": (
        "-> F | -> F+1 | -> -2 | -> INT_MAX | -> -1 !Wp | -> 4 !Wp | -> 2^30-2 !Wp | -> 2^30-1 !Wp"
        " | -> INT_MAX-1 !Wp"
    ),
    "page_ref_sub_return(2)": (
        "0 -> INT_MAX | 0 -> F | INT_MAX-2 -> -3 | 0 -> INT_MAX-1 | INT_MAX-1 -> -2 !Wp'"
        " | 0 -> 3 !Wp' | 0 -> 2^30-3 !Wp' | 0 -> 2^30-2 !Wp' | 0 -> INT_MAX-2 !Wp'"
    ),
    "folio_ref_sub_return(2)": (
        "0 -> INT_MAX | 0 -> F | INT_MAX-2 -> -3 | 0 -> INT_MAX-1 | INT_MAX-1 -> -2 !Wf'"
        " | 0 -> 3 !Wf' | 0 -> 2^30-3 !Wf' | 0 -> 2^30-2 !Wf' | 0 -> INT_MAX-2 !Wf'"
    ),
    "page_ref_inc_return": (
        "2 -> F+2 | 3 -> F+3 | 0 -> 0 | 1 -> F+1 | 0 -> 1 !Wp' | 0 -> 6 !Wp' | 0 -> 2^30 !Wp'"
        " | 0 -> 2^30+1 !Wp' | 0 -> F !Wp'"
    ),
    "page_ref_dec_return": (
        "0 -> F | 1 -> F+1 | INT_MAX-1 -> -2 | 0 -> INT_MAX | INT_MAX -> -1 !Wp' | 0 -> 4 !Wp'"
        " | 0 -> 2^30-2 !Wp' | 0 -> 2^30-1 !Wp' | 0 -> INT_MAX-1 !Wp'"
    ),
    # "hit zero" is the bare bit F; CAS(F -> 0) claims the free
    "page_ref_sub_and_test(2)": (
        "false -> INT_MAX | true -> 0 | false -> -3 | false -> INT_MAX-1 | false -> -2 | false -> 3"
        " | false -> 2^30-3 | false -> 2^30-2 | false -> INT_MAX-2"
    ),
    "page_ref_dec_and_test": (
        "true -> 0 | false -> F+1 | false -> -2 | false -> INT_MAX | false -> -1 | false -> 4"
        " | false -> 2^30-2 | false -> 2^30-1 | false -> INT_MAX-1"
    ),
    # succeeds iff the bit is set after the add; >= 2^30 after the add resets to 0
    "page_ref_add_unless_frozen(1)": (
        "true -> F+2 | true -> F+3 | false -> 0 | true -> F+1 | false -> 1 | false -> 6 | false -> 0"
        " | false -> 0 | true -> F"
    ),
    "folio_ref_try_add(1024)": (
        "true -> F+1025 | true -> F+1026 | false -> 1023 | true -> F+1024 | false -> 1024"
        " | false -> 1029 | false -> 0 | false -> 0 | true -> F+1023"
    ),
    # cmpxchg(F|count -> 0)
    "page_ref_freeze(1)": (
        "true -> 0 | false -> F+2 | false -> -1 | false -> F | false -> 0 | false -> 5"
        " | false -> 2^30-1 | false -> 2^30 | false -> INT_MAX"
    ),
    "page_ref_unfreeze(1)": (
        "-> F+1 !Bp | -> F+1 !Bp | -> F+1 !Bp | -> F+1 | -> F+1 | -> F+1 | -> F+1 | -> F+1 | -> F+1"
    ),
    "page_ref_unfreeze(0)": (
        "-> 0 !Bp !B | -> 0 !Bp !B | -> 0 !Bp !B | -> 0 !B | -> 0 !B | -> 0 !B | -> 0 !B | -> 0 !B | -> 0 !B"
    ),
    "get_page": (
        "-> F+2 | -> F+3 | -> 0 | -> F+1 !Bf | -> 1 !Bf !Wp | -> 6 !Bf !Wp | -> 2^30 !Bf !Wp"
        " | -> 2^30+1 !Bf !Wp | -> F !Bf !Wp"
    ),
    "put_page_testzero": (
        "true -> 0 | false -> F+1 | false -> -2 | false -> INT_MAX !Bp | false -> -1 !Bp"
        " | false -> 4 !Bp | false -> 2^30-2 !Bp | false -> 2^30-1 !Bp | false -> INT_MAX-1 !Bp"
    ),
}


@dataclass(frozen=True)
class ModelTable:
    """One model's expectations; ``frozen_setter`` and ``spec_get`` are row names (§4.8)."""

    cls: type[PageRefModel]
    columns: tuple[str, ...]
    rows: dict[str, str]
    frozen_setter: str
    spec_get: str


TABLES = {
    "baseline": ModelTable(
        Baseline, STANDARD, BASELINE_ROWS, "set_page_count(0)", "page_ref_add_unless_zero"
    ),
    "rfc": ModelTable(RFC, STANDARD, RFC_ROWS, "set_page_count(0)", "page_ref_add_unless_zero"),
    "v1": ModelTable(V1, STANDARD, V1_ROWS, "set_page_count(0)", "page_ref_add_unless_zero"),
    "v2": ModelTable(V2, STANDARD, V2_ROWS, "set_page_count_as_frozen", "page_ref_add_unless_zero"),
    "v3": ModelTable(V3, STANDARD, V3_ROWS, "set_page_count_as_frozen", "page_ref_add_unless_frozen"),
    "final": ModelTable(Final, STANDARD, FINAL_ROWS, "set_page_count_frozen", "page_ref_add_unless_frozen"),
    "inverted": ModelTable(
        Inverted, INVERTED, INVERTED_ROWS, "set_page_count_frozen", "page_ref_add_unless_frozen"
    ),
}


def aliases(t: ModelTable) -> dict[str, str]:
    """Functions that must behave exactly as a row of the table (folio twins act on the head;
    ListStorage pages are their own heads)."""
    get = f"{t.spec_get}(1)"
    folio_get_name = t.spec_get.replace("page_ref_", "folio_ref_")
    return {
        "folio_ref_count": "page_ref_count",
        "page_count": "page_ref_count",
        "set_frozen": t.frozen_setter,
        "folio_ref_add(2)": "page_ref_add(2)",
        "folio_ref_sub(2)": "page_ref_sub(2)",
        "folio_ref_inc": "page_ref_inc",
        "folio_ref_dec": "page_ref_dec",
        "folio_ref_inc_return": "page_ref_inc_return",
        "folio_ref_dec_return": "page_ref_dec_return",
        "folio_ref_sub_and_test(2)": "page_ref_sub_and_test(2)",
        "folio_ref_dec_and_test": "page_ref_dec_and_test",
        f"{folio_get_name}(1)": get,
        "folio_try_get": get,
        "get_page_unless_zero": get,
        "folio_ref_freeze(1)": "page_ref_freeze(1)",
        "folio_ref_unfreeze(1)": "page_ref_unfreeze(1)",
        "folio_get": "get_page",
        "folio_put_testzero": "put_page_testzero",
    }


def _cases() -> list[pytest.param]:
    """One case per (model, row, value class); the row's aliases run in the same case."""
    cases = []
    for model, t in TABLES.items():
        twins: dict[str, list[str]] = {r: [r] for r in t.rows}
        for alias, row_name in aliases(t).items():
            twins[row_name].append(alias)
        for row_name, calls in twins.items():
            cells = [c.strip() for c in t.rows[row_name].split("|")]
            assert len(cells) == len(t.columns), f"{model} {row_name}: {len(cells)} cells"
            for col, text in zip(t.columns, cells, strict=True):
                cases.append(
                    pytest.param(t.cls, tuple(calls), word(col), text, id=f"{model}-{row_name}-{col}")
                )
    return cases


def call_by_name(m: PageRefModel, call: str) -> object:
    """Call a row's function by its kernel name, through the model's API table."""
    name, _, rest = call.partition("(")
    args = [int(a) for a in rest.rstrip(")").split(",") if a]
    if name == "set_frozen":
        return m.set_frozen(0)
    return m.call(name, 0, *args)


def expected(cell: Cell, start: int, mode: str) -> tuple[object, int, list[str], str | None]:
    """(ret, raw after, findings recorded, VMBug raised) for one debug_vm mode."""
    if mode == "off":
        return cell.ret, cell.raw, [], None
    fired = [CHECKS[c] for c in cell.checks]
    if mode == "warn":
        return cell.ret, cell.raw, [macro for macro, _ in fired], None
    recorded: list[str] = []
    for macro, before in fired:
        if macro.startswith("VM_BUG_ON"):
            return None, (start if before else cell.raw), recorded, macro
        recorded.append(macro)
    return cell.ret, cell.raw, recorded, None


def observed(
    cls: type[PageRefModel], call: str, start: int, mode: str
) -> tuple[object, int, list[str], str | None]:
    m = cls(ListStorage(1, start), debug_vm=mode)
    bug = None
    ret: object = None
    try:
        ret = call_by_name(m, call)
    except VMBug as e:
        bug = e.finding.kind
        assert e.finding.model == cls.name
    return ret, m.atomic_read(0), [f.kind for f in m.findings], bug


@pytest.mark.parametrize(("cls", "calls", "start", "cell"), _cases())
def test_page_ref_function(cls: type[PageRefModel], calls: tuple[str, ...], start: int, cell: str) -> None:
    """Item 1: return value, raw word after and debug checks, under debug_vm off/warn/bug.

    ``calls`` is the row's function followed by the functions that must behave exactly like
    it (folio twins, page_count, get_page_unless_zero, ...).
    """
    c = parse_cell(cell)
    for call in calls:
        for mode in ("off", "warn", "bug"):
            exp = expected(c, start, mode)
            got = observed(cls, call, start, mode)
            where = f"{call}, debug_vm={mode}"
            assert got == exp, f"{where}: got (ret, raw, findings, bug) = {got}, expected {exp}"
            # bool results must be bools, counts must be ints (True == 1 would hide a mix-up)
            assert type(got[0]) is type(exp[0]), f"{where}: return type {type(got[0])}"


@pytest.mark.parametrize(
    ("cls", "frozen_setter", "speculative_get"),
    [
        (Baseline, "set_page_count", "page_ref_add_unless_zero"),
        (RFC, "set_page_count", "page_ref_add_unless_zero"),
        (V1, "set_page_count", "page_ref_add_unless_zero"),
        (V2, "set_page_count_as_frozen", "page_ref_add_unless_zero"),
        (V3, "set_page_count_as_frozen", "page_ref_add_unless_frozen"),
        (Final, "set_page_count_frozen", "page_ref_add_unless_frozen"),
        (Inverted, "set_page_count_frozen", "page_ref_add_unless_frozen"),
    ],
    ids=lambda v: v.name if isinstance(v, type) else None,
)
def test_version_names(cls: type[PageRefModel], frozen_setter: str, speculative_get: str) -> None:
    """§4.8: the kernel names of the frozen setter and the speculative get, by version."""
    assert cls.frozen_setter == frozen_setter
    assert cls.speculative_get == speculative_get
    assert speculative_get in cls.API
    assert speculative_get.replace("page_ref_", "folio_ref_") in cls.API
    other = {"page_ref_add_unless_zero", "page_ref_add_unless_frozen"} - {speculative_get}
    assert not other & cls.API


@pytest.mark.parametrize(
    ("cls", "has", "lacks"),
    [
        (
            Baseline,
            {"folio_set_count"},
            {"folio_init_count", "set_page_count_frozen", "set_page_count_as_frozen"},
        ),
        (V1, {"folio_set_count"}, {"folio_init_count", "set_page_count_frozen", "set_page_count_as_frozen"}),
        (V2, {"folio_set_count", "set_page_count_as_frozen"}, {"folio_init_count", "set_page_count_frozen"}),
        (V3, {"folio_set_count", "set_page_count_as_frozen"}, {"folio_init_count", "set_page_count_frozen"}),
        # §4.2: folio_set_count removed, replaced by folio_init_count
        (
            Final,
            {"folio_init_count", "set_page_count_frozen"},
            {"folio_set_count", "set_page_count_as_frozen"},
        ),
    ],
    ids=lambda v: v.name if isinstance(v, type) else None,
)
def test_api_sets(cls: type[PageRefModel], has: set[str], lacks: set[str]) -> None:
    m = cls(ListStorage(1, 1))
    assert has <= cls.API
    for name in lacks:
        with pytest.raises(KeyError):
            m.call(name, 0)
    assert m.atomic_read(0) == 1


# ------------------------------------------------------------------------------ item 2: checks
def test_v2_posted_predicate_bugs_on_live_page_inc() -> None:
    """§6: v2's VM_BUG_ON(__page_count_is_frozen(page_count(page))) fires on a live page."""
    m = V2(ListStorage(1, 1), debug_vm="bug")
    with pytest.raises(VMBug) as e:
        m.page_ref_inc(0)
    f = e.value.finding
    assert (f.kind, f.function, f.model, f.pfn, f.raw_before) == ("VM_BUG_ON", "page_ref_inc", "v2", 0, 1)
    assert f.check == "VM_BUG_ON(__page_count_is_frozen(page_count(page)))"
    assert m.atomic_read(0) == 1  # the BUG stops the operation before the atomic op
    assert m.findings == []


def test_v2_posted_predicate_in_warn_mode_records_every_occurrence() -> None:
    m = V2(ListStorage(1, 5), debug_vm="warn")
    for _ in range(3):
        m.page_ref_inc(0)
    assert m.atomic_read(0) == 8
    assert [f.kind for f in m.findings] == ["VM_BUG_ON"] * 3  # a BUG is not WARN_ONCE


def test_v2_posted_predicate_never_fires_on_frozen_page() -> None:
    m = V2(ListStorage(1, F), debug_vm="bug")
    m.page_ref_inc(0)
    assert m.atomic_read(0) == F + 1
    assert m.findings == []


def test_final_does_not_bug_on_live_page_inc() -> None:
    m = Final(ListStorage(1, 1), debug_vm="bug")
    m.page_ref_inc(0)
    m.get_page(0)
    assert m.atomic_read(0) == 3
    assert m.findings == []


def test_final_warns_once_per_site_on_frozen_modifier() -> None:
    """§4.3: VM_WARN_ON_ONCE_PAGE(__page_is_frozen(page)): recorded once per site, op performed."""
    m = Final(ListStorage(2, F), debug_vm="bug")
    m.page_ref_inc(0)
    assert m.atomic_read(0) == F + 1
    (f,) = m.findings
    assert (f.kind, f.function, f.pfn, f.raw_before) == ("VM_WARN_ON_ONCE_PAGE", "page_ref_inc", 0, F)
    assert f.check == "VM_WARN_ON_ONCE_PAGE(__page_is_frozen(page))"
    m.page_ref_inc(0)
    m.page_ref_inc(1)  # another page, same site: still once
    assert (m.atomic_read(0), m.atomic_read(1)) == (F + 2, F + 1)
    assert len(m.findings) == 1
    m.page_ref_dec(0)  # another site
    assert m.atomic_read(0) == F + 1
    assert [f.function for f in m.findings] == ["page_ref_inc", "page_ref_dec"]


def test_final_warn_once_in_warn_mode() -> None:
    m = Final(ListStorage(1, F), debug_vm="warn")
    for _ in range(4):
        m.page_ref_add(0, 2)
    assert m.atomic_read(0) == F + 8
    assert [f.function for f in m.findings] == ["page_ref_add"]


def test_final_value_returning_check_reports_old_and_new() -> None:
    m = Final(ListStorage(1, F + 3), debug_vm="bug")
    assert m.folio_ref_sub_return(0, 1) == F + 2
    (f,) = m.findings
    assert (f.kind, f.function, f.raw_before, f.raw_after) == (
        "VM_WARN_ON_ONCE_FOLIO",
        "folio_ref_sub_return",
        F + 3,
        F + 2,
    )


def test_debug_vm_accepts_strings_and_enum() -> None:
    assert Final(debug_vm="warn").debug_vm is DebugVM.WARN
    assert Final(debug_vm=DebugVM.BUG).debug_vm is DebugVM.BUG
    with pytest.raises(ValueError):
        Final(debug_vm="loud")


def test_report_callback_receives_findings() -> None:
    got: list = []
    m = Final(ListStorage(1, F), debug_vm="warn", report=got.append)
    m.page_ref_inc(0)
    assert [f.kind for f in got] == ["VM_WARN_ON_ONCE_PAGE"]
    assert m.findings == []


# ------------------------------------------------------------------------------ item 7: traces
def _trace_run(m: PageRefModel, steps: list[tuple[Callable[[], object], object, PageRefTrace]]) -> None:
    events: list[PageRefTrace] = []
    m.trace = events.append
    for i, (op, ret, event) in enumerate(steps, 1):
        events.clear()
        assert op() == ret, f"step {i}"
        assert events == [event], f"step {i}"


def test_tracepoints_baseline() -> None:
    """§4.0: kernel tracepoint names; val/ret as the kernel passes them; count after the op."""
    m = Baseline(ListStorage(1))
    T = PageRefTrace
    _trace_run(
        m,
        [
            (lambda: m.set_page_count(0, 1), None, T("page_ref_set", 0, 1, None, 1)),
            (lambda: m.page_ref_add(0, 3), None, T("page_ref_mod", 0, 3, None, 4)),
            (lambda: m.page_ref_sub(0, 2), None, T("page_ref_mod", 0, -2, None, 2)),
            (lambda: m.page_ref_inc(0), None, T("page_ref_mod", 0, 1, None, 3)),
            (lambda: m.page_ref_dec(0), None, T("page_ref_mod", 0, -1, None, 2)),
            (lambda: m.get_page(0), None, T("page_ref_mod", 0, 1, None, 3)),
            (lambda: m.page_ref_inc_return(0), 4, T("page_ref_mod_and_return", 0, 1, 4, 4)),
            (lambda: m.page_ref_dec_return(0), 3, T("page_ref_mod_and_return", 0, -1, 3, 3)),
            (lambda: m.folio_ref_sub_return(0, 2), 1, T("page_ref_mod_and_return", 0, -2, 1, 1)),
            # the unless-variant passes its boolean result in the u slot
            (lambda: m.page_ref_add_unless_zero(0, 2), True, T("page_ref_mod_unless", 0, 2, 1, 3)),
            (lambda: m.page_ref_sub_and_test(0, 2), False, T("page_ref_mod_and_test", 0, -2, 0, 1)),
            (lambda: m.page_ref_freeze(0, 2), False, T("page_ref_freeze", 0, 2, 0, 1)),
            (lambda: m.page_ref_freeze(0, 1), True, T("page_ref_freeze", 0, 1, 1, 0)),
            (lambda: m.folio_try_get(0), False, T("page_ref_mod_unless", 0, 1, 0, 0)),
            (lambda: m.page_ref_unfreeze(0, 1), None, T("page_ref_unfreeze", 0, 1, None, 1)),
            (lambda: m.put_page_testzero(0), True, T("page_ref_mod_and_test", 0, -1, 1, 0)),
            (lambda: m.set_frozen(0), None, T("page_ref_set", 0, 0, None, 0)),
        ],
    )


def test_tracepoints_final() -> None:
    m = Final(ListStorage(1))
    T = PageRefTrace
    _trace_run(
        m,
        [
            (lambda: m.init_page_count(0), None, T("page_ref_set", 0, 1, None, 1)),
            (lambda: m.folio_ref_add(0, 3), None, T("page_ref_mod", 0, 3, None, 4)),
            (lambda: m.folio_ref_sub(0, 2), None, T("page_ref_mod", 0, -2, None, 2)),
            (lambda: m.page_ref_inc_return(0), 3, T("page_ref_mod_and_return", 0, 1, 3, 3)),
            (lambda: m.page_ref_add_unless_frozen(0, 1), True, T("page_ref_mod_unless", 0, 1, 1, 4)),
            (lambda: m.folio_ref_sub_and_test(0, 3), False, T("page_ref_mod_and_test", 0, -3, 0, 1)),
            (lambda: m.folio_ref_freeze(0, 1), True, T("page_ref_freeze", 0, 1, 1, 0)),
            # a failed get on a frozen page: count (masked) 0, ret 0
            (lambda: m.folio_ref_try_add(0, 1024), False, T("page_ref_mod_unless", 0, 1024, 0, 0)),
            (lambda: m.folio_ref_unfreeze(0, 2), None, T("page_ref_unfreeze", 0, 2, None, 2)),
            (lambda: m.page_ref_dec_and_test(0), False, T("page_ref_mod_and_test", 0, -1, 0, 1)),
            # the final put logs the post-CAS result
            (lambda: m.put_page_testzero(0), True, T("page_ref_mod_and_test", 0, -1, 1, 0)),
            # §4.2: the tracepoint logs v = INT_MIN
            (lambda: m.set_page_count_frozen(0), None, T("page_ref_set", 0, INT_MIN, None, 0)),
            (lambda: m.folio_init_count(0), None, T("page_ref_set", 0, 1, None, 1)),
        ],
    )
    assert m.atomic_read(0) == 1


def test_tracepoints_inverted_log_counts_not_raw() -> None:
    """count is page_ref_count() after the op: the masked count in the inverted encoding."""
    m = Inverted(ListStorage(1))
    T = PageRefTrace
    _trace_run(
        m,
        [
            (lambda: m.set_page_count(0, 3), None, T("page_ref_set", 0, 3, None, 3)),
            (lambda: m.page_ref_inc(0), None, T("page_ref_mod", 0, 1, None, 4)),
            (lambda: m.page_ref_freeze(0, 4), True, T("page_ref_freeze", 0, 4, 1, 0)),
            (lambda: m.folio_try_get(0), False, T("page_ref_mod_unless", 0, 1, 0, 0)),
        ],
    )
    assert m.atomic_read(0) == 1


def test_no_trace_when_disabled() -> None:
    m = Final(ListStorage(1, 1))
    assert m.trace is None
    m.page_ref_inc(0)  # must not fail without a recorder
    assert m.atomic_read(0) == 2


# ------------------------------------------------------------------------------ item 3: races
class Interleaving:
    """Run model operations in threads that advance one atomic store/RMW at a time.

    Each thread runs a real model function. ``step(name)`` lets it carry out its next
    ``atomic_set`` / ``atomic_add_return`` / ``atomic_cmpxchg`` (``atomic_try_cmpxchg`` and the
    CAS loop of ``atomic_add_unless`` go through ``atomic_cmpxchg``) and run on until it is
    about to do the following one, or returns. Plain reads are not steps. Calls from the test's
    own thread are not gated, so setup and inspection happen between steps.
    """

    _STEPS = ("atomic_set", "atomic_add_return", "atomic_cmpxchg")
    TIMEOUT = 5.0

    def __init__(self, model: PageRefModel) -> None:
        self.model = model
        self._parked = threading.Semaphore(0)
        self._threads: dict[str, dict] = {}
        self._by_ident: dict[int, dict] = {}
        for prim in self._STEPS:
            setattr(model, prim, self._gate(getattr(model, prim)))

    def _gate(self, prim: Callable[..., object]) -> Callable[..., object]:
        def gated(*args: int) -> object:
            t = self._by_ident.get(threading.get_ident())
            if t is not None:
                if t["credit"]:
                    t["credit"] = False
                else:
                    self._parked.release()
                    if not t["go"].acquire(timeout=self.TIMEOUT):
                        raise TimeoutError("interleaving abandoned")
            return prim(*args)

        return gated

    def atomic(self, prim: Callable[..., object]) -> Callable[..., object]:
        """Make ``prim`` (a test's own atomic primitive) one step, like the model's."""
        return self._gate(prim)

    def spawn(self, name: str, fn: Callable[..., object], *args: object) -> None:
        t: dict = {"go": threading.Semaphore(0), "credit": True, "started": False, "done": False}
        t["result"] = None

        def body() -> None:
            self._by_ident[threading.get_ident()] = t
            try:
                t["result"] = fn(*args)
            except BaseException as e:
                t["result"] = e
            t["done"] = True
            self._parked.release()

        t["thread"] = threading.Thread(target=body, name=name, daemon=True)
        self._threads[name] = t

    def step(self, name: str) -> None:
        t = self._threads[name]
        assert not t["done"], f"{name} has already returned"
        if not t["started"]:
            t["started"] = True
            t["thread"].start()  # runs up to and including its first store/RMW
        else:
            t["go"].release()
        assert self._parked.acquire(timeout=self.TIMEOUT), f"{name} did not park"

    def done(self, name: str) -> bool:
        return bool(self._threads[name]["done"])

    def result(self, name: str) -> object:
        t = self._threads[name]
        assert t["done"], f"{name} has not returned"
        t["thread"].join(self.TIMEOUT)
        return t["result"]

    def replay(self, steps: list[tuple[str, int]]) -> None:
        """Run ``(thread, word expected after the step)`` rows of a §5 step table."""
        for i, (name, want) in enumerate(steps, 1):
            self.step(name)
            got = self.model.atomic_read(0)
            assert got == want, f"step {i} ({name}): word {u32(got):#010x}, table says {u32(want):#010x}"


def test_interleaving_helper_runs_ops_whole_when_alone() -> None:
    m = Final(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T0", m.page_ref_dec_and_test, 0)
    il.replay([("T0", 0), ("T0", F)])
    assert il.result("T0") is True


def test_race_5_3_order_a_getter_between_subtract_and_cas() -> None:
    """§5.3 order A (patched): T1's get lands between T0's subtract and CAS; T1 frees."""
    m = Final(ListStorage(1, 1))
    events: list[PageRefTrace] = []
    m.trace = events.append
    il = Interleaving(m)
    il.spawn("T0", m.page_ref_dec_and_test, 0)  # put
    il.spawn("T1", m.folio_try_get, 0)  # stale RCU pointer
    il.replay(
        [
            ("T0", 0),  # 1: atomic_sub_and_test 1 -> 0, "hit zero"
            ("T1", 1),  # 2: atomic_add_return(1) = 1, bit clear: success
            ("T0", 1),  # 3: CAS(0 -> F) fails: dec_and_test returns false
        ]
    )
    assert il.result("T1") is True
    assert il.result("T0") is False
    # the tracepoint logs the post-CAS result: ret 0
    assert PageRefTrace("page_ref_mod_and_test", 0, -1, 0, 1) in events
    il.spawn("T1 put", m.page_ref_dec_and_test, 0)  # 4: T1 re-validates, then puts
    il.replay([("T1 put", 0), ("T1 put", F)])
    assert il.result("T1 put") is True  # exactly one free, by T1


def test_race_5_3_order_b_getter_after_cas() -> None:
    """§5.3 order B: the get lands after the CAS, fails, leaves one stale increment."""
    m = Final(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T0", m.page_ref_dec_and_test, 0)
    il.spawn("T1", m.folio_try_get, 0)
    il.replay([("T0", 0), ("T0", F), ("T1", F + 1)])
    assert (il.result("T0"), il.result("T1")) == (True, False)
    # next allocation: set_page_refcounted sees the masked 0, passes, stores 1
    assert m.page_ref_count(0) == 0
    apply_site(m, SITE_TABLES["final"], "set_page_refcounted", 0)
    assert m.atomic_read(0) == 1


def test_race_5_3_baseline_order_a_impossible() -> None:
    """§5.3 baseline: dec_and_test decides atomically; the CAS-loop get reads 0 and fails."""
    m = Baseline(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T0", m.page_ref_dec_and_test, 0)
    il.spawn("T1", m.folio_try_get, 0)
    il.replay([("T0", 0), ("T1", 0)])  # T1 reads 0: no CAS at all
    assert (il.result("T0"), il.result("T1")) == (True, False)


def test_race_5_3_baseline_getter_first() -> None:
    m = Baseline(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T1", m.folio_try_get, 0)
    il.spawn("T0", m.page_ref_dec_and_test, 0)
    il.spawn("T1 put", m.page_ref_dec_and_test, 0)
    il.replay([("T1", 2), ("T0", 1), ("T1 put", 0)])
    assert (il.result("T1"), il.result("T0"), il.result("T1 put")) == (True, False, True)


def _put_with_atomic_or(m: PageRefModel, atomic_or: Callable[[int, int], None], page: int) -> bool:
    """§5.4's hypothetical free side: after reaching 0, OR in F unconditionally and free."""
    if m.atomic_add_return(page, -1) != 0:
        return False
    atomic_or(page, F)
    return True


def test_race_5_4_atomic_or_variant_is_use_after_free() -> None:
    """§5.4: with atomic_or(F), T0 frees a page T2 holds a reference to."""
    m = Final(ListStorage(1, 1))
    il = Interleaving(m)

    def atomic_or(page: int, mask: int) -> None:  # the primitive the model does not have
        m.storage.refcount[page] = wrap32(m.storage.refcount[page] | mask)

    il.spawn("T0", _put_with_atomic_or, m, il.atomic(atomic_or), 0)
    il.spawn("T1", m.folio_try_get, 0)
    il.spawn("T2", m.folio_try_get, 0)
    il.replay(
        [
            ("T0", 0),  # 1: put 1 -> 0
            ("T1", 1),  # 2: get 0 -> 1 (T1 backs off in David's framing)
            ("T2", 2),  # 3: get 1 -> 2, bit clear: success
            ("T0", F + 2),  # 4: atomic_or(F), then free
        ]
    )
    assert il.result("T2") is True and il.result("T0") is True  # use-after-free
    assert m.page_is_frozen(0)


def test_race_5_4_cas_variant_is_safe() -> None:
    """§5.4: the real CAS(0 -> F) fails against 2; no free happens; the last put frees."""
    m = Final(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T0", m.page_ref_dec_and_test, 0)
    il.spawn("T1", m.folio_try_get, 0)
    il.spawn("T2", m.folio_try_get, 0)
    il.replay([("T0", 0), ("T1", 1), ("T2", 2), ("T0", 2)])
    assert (il.result("T0"), il.result("T1"), il.result("T2")) == (False, True, True)
    assert m.page_ref_dec_and_test(0) is False  # T1 puts
    assert m.page_ref_dec_and_test(0) is True  # T2 puts: the one free
    assert m.atomic_read(0) == F


@pytest.mark.parametrize("cls", [V1, V2], ids=["v1", "v2"])
def test_race_5_5_permanent_zero_allocation_erases_reference(cls: type[PageRefModel]) -> None:
    """§5.5 steps 1, 2, 3a, 4a (v1/v2: frozen init still writes 0)."""
    m = cls(ListStorage(1, 1))
    table = SITE_TABLES[cls.default_sites]
    apply_site(m, table, "__free_pages_core", 0)  # 1: enters the buddy at plain 0
    assert m.atomic_read(0) == 0 and not m.page_is_frozen(0)
    assert m.get_page_unless_zero(0) is True  # 2: PFN walker: 0 -> 1, success
    assert m.atomic_read(0) == 1
    # 3a: set_page_refcounted's VM_BUG_ON_PAGE(page_ref_count != 0) condition holds ...
    assert m.page_ref_count(0) != 0
    apply_site(m, table, "set_page_refcounted", 0)  # ... without DEBUG_VM: overwritten
    assert m.atomic_read(0) == 1
    # 4a: T1 puts and frees the page while T2 owns it
    assert m.page_ref_dec_and_test(0) is True
    assert m.atomic_read(0) == F


@pytest.mark.parametrize("cls", [V1, V2], ids=["v1", "v2"])
def test_race_5_5_permanent_zero_double_free(cls: type[PageRefModel]) -> None:
    """§5.5 step 3b: no allocation; T1's put frees a page already on a free list."""
    m = cls(ListStorage(1, 1))
    apply_site(m, SITE_TABLES[cls.default_sites], "__free_pages_core", 0)
    assert m.get_page_unless_zero(0) is True
    assert m.page_ref_dec_and_test(0) is True  # a second free
    assert m.atomic_read(0) == F


@pytest.mark.parametrize(("cls", "raw"), [(Final, F), (Baseline, 0)], ids=["final", "baseline"])
def test_race_5_5_fixed_when_frozen_init_stores_frozen(cls: type[PageRefModel], raw: int) -> None:
    """§5.5 fix (v4+): step 2 becomes F -> F+1 and fails (baseline: 0, fails)."""
    m = cls(ListStorage(1, 1))
    apply_site(m, SITE_TABLES[cls.default_sites], "__free_pages_core", 0)
    assert m.atomic_read(0) == raw
    assert m.get_page_unless_zero(0) is False
    assert m.atomic_read(0) == (F + 1 if raw == F else 0)


def test_race_5_6_set_back_to_zero_double_free_v2() -> None:
    """§5.6: v2's set_page_count_as_frozen stores 0 on a freed page: a false success."""
    m = V2(ListStorage(1, 1))
    assert m.page_ref_dec_and_test(0) is True  # 1: T0 frees
    assert m.atomic_read(0) == F
    m.set_page_count_as_frozen(0)  # 2: re-init to plain 0 while free
    assert m.atomic_read(0) == 0
    assert m.folio_try_get(0) is True  # 3: 0 -> 1, bit never seen
    assert m.atomic_read(0) == 1
    assert m.page_ref_dec_and_test(0) is True  # 4: the undo put frees P again
    assert m.atomic_read(0) == F


def test_race_5_6_invariant_held_final() -> None:
    """§5.6 with the invariant: the frozen setter keeps F, step 3 sees the bit and fails."""
    m = Final(ListStorage(1, 1))
    assert m.page_ref_dec_and_test(0) is True
    m.set_page_count_frozen(0)
    assert m.atomic_read(0) == F
    assert m.folio_try_get(0) is False
    assert m.atomic_read(0) == F + 1


def test_race_5_6_baseline() -> None:
    m = Baseline(ListStorage(1, 1))
    assert m.page_ref_dec_and_test(0) is True
    m.set_page_count(0, 0)
    assert m.folio_try_get(0) is False
    assert m.atomic_read(0) == 0


@pytest.mark.parametrize("cls", [V3, Final], ids=["v3", "final"])
def test_race_5_7_threshold_reset_two_getters_try_cmpxchg(cls: type[PageRefModel]) -> None:
    """§5.7 table, v4 loop (try_cmpxchg; break on success). Start 0xBFFFFFFF."""
    m = cls(ListStorage(1, LIM - 1))
    il = Interleaving(m)
    il.spawn("T1", m.page_ref_add_unless_frozen, 0, 1)
    il.spawn("T2", m.page_ref_add_unless_frozen, 0, 1)
    il.replay(
        [
            ("T1", LIM),  # 1: T1 add(1) -> 0xC0000000, at the limit: will reset
            ("T2", LIM + 1),  # 2: T2 add(1) -> 0xC0000001
            ("T1", LIM + 1),  # 3: T1 CAS(0xC0000000 -> F) fails; v = 0xC0000001
            ("T2", F),  # 4: T2 CAS(0xC0000001 -> F) succeeds; break
        ]
    )
    assert il.done("T2") and not il.done("T1")
    il.replay([("T1", F)])  # 5: T1 CAS(0xC0000001 -> F) fails; v = F < limit: exit
    assert (il.result("T1"), il.result("T2")) == (False, False)


@pytest.mark.parametrize("cls", [V1, V2], ids=["v1", "v2"])
def test_race_5_7_threshold_reset_two_getters_cmpxchg_loop(cls: type[PageRefModel]) -> None:
    """§5.7 table, v1/v2 loop: after its successful CAS, T2 does one more CAS, which fails."""
    m = cls(ListStorage(1, LIM - 1))
    il = Interleaving(m)
    il.spawn("T1", m.page_ref_add_unless_zero, 0, 1)
    il.spawn("T2", m.page_ref_add_unless_zero, 0, 1)
    il.replay([("T1", LIM), ("T2", LIM + 1), ("T1", LIM + 1), ("T2", F)])
    assert not il.done("T2")  # the CAS returned the old (large) value: one more pass
    il.replay([("T2", F)])  # 4': CAS(0xC0000001 -> F) fails against F: exit
    assert il.done("T2")
    il.replay([("T1", F)])  # 5
    assert (il.result("T1"), il.result("T2")) == (False, False)


def test_race_5_7_reset_loses_to_reallocation() -> None:
    """§5.7: set_page_count(1) during the reset loop: the CAS fails, reads 1, exits."""
    m = Final(ListStorage(1, LIM - 1))
    il = Interleaving(m)
    il.spawn("T1", m.page_ref_add_unless_frozen, 0, 1)
    il.replay([("T1", LIM)])
    m.set_page_count(0, 1)  # reallocated
    il.replay([("T1", 1)])
    assert il.result("T1") is False
    assert m.atomic_read(0) == 1


def test_race_rfc_one_shot_reset() -> None:
    """§2.1 RFC "Drawbacks": one reset CAS per failed getter, which fails when another getter
    moved the word in between (best effort); here the later getter's CAS wipes both."""
    m = RFC(ListStorage(1, F))
    il = Interleaving(m)
    il.spawn("T1", m.page_ref_add_unless_zero, 0, 1)
    il.spawn("T2", m.page_ref_add_unless_zero, 0, 1)
    il.replay(
        [
            ("T1", F + 1),  # T1 add: bit set, fail
            ("T2", F + 2),  # T2 add: bit set, fail
            ("T1", F + 2),  # T1's one-shot CAS(F+1 -> F) fails: T1 gives up
            ("T2", F),  # T2's CAS(F+2 -> F) succeeds
        ]
    )
    assert (il.result("T1"), il.result("T2")) == (False, False)


def test_race_5_8_aba_wrong_destructor() -> None:
    """§5.8: T1's delayed CAS succeeds on T3's zero: T1 frees a page reallocated as type Y."""
    m = Final(ListStorage(1, 1))
    il = Interleaving(m)
    il.spawn("T1", m.page_ref_dec_and_test, 0)
    il.spawn("T2 get", m.folio_try_get, 0)
    il.spawn("T2 put", m.page_ref_dec_and_test, 0)
    il.spawn("T3 alloc", m.init_page_count, 0)
    il.spawn("T3 put", m.page_ref_dec_and_test, 0)
    il.replay(
        [
            ("T1", 0),  # 1: subtract 1 -> 0, interrupted before its CAS
            ("T2 get", 1),  # 2: optimistic get 0 -> 1, success ...
            ("T2 put", 0),  # ... works, puts: 1 -> 0
            ("T2 put", F),  # ... CAS -> F, X destructor
            ("T3 alloc", 1),  # 3: reallocated as type Y
            ("T3 put", 0),  # 4: T3 put subtracts 1 -> 0
            ("T1", F),  # 5: T1's CAS(0 -> F) succeeds on T3's zero
            ("T3 put", F),  # T3's CAS fails
        ]
    )
    assert [il.result(t) for t in ("T1", "T2 get", "T2 put", "T3 put")] == [True, True, True, False]


def test_race_5_10_page_frag_reset() -> None:
    """§5.10: set_page_count(32769) on a frozen page overwrites a failed getter's increment."""
    m = Final(ListStorage(1, 5))
    assert m.page_ref_sub_and_test(0, 5) is True  # 1
    assert m.atomic_read(0) == F
    assert m.get_page_unless_zero(0) is False  # 2: stale getter
    assert m.atomic_read(0) == F + 1
    apply_site(m, SITE_TABLES["final"], "__page_frag_alloc_align", 0)  # 3
    assert m.atomic_read(0) == 32769


def test_race_5_11_increment_of_frozen_allocation_final() -> None:
    """§5.11 patched: alloc_frozen_page(); page_ref_inc(): F -> F+1, still frozen, reads 0;
    a later put_page_testzero trips its VM_BUG (count seen as 0)."""
    m = Final(ListStorage(1), debug_vm="bug")
    m.set_page_count_frozen(0)  # a frozen allocation keeps the buddy's F
    m.page_ref_inc(0)
    assert m.atomic_read(0) == F + 1
    assert m.page_is_frozen(0) and m.page_ref_count(0) == 0
    assert [f.kind for f in m.findings] == ["VM_WARN_ON_ONCE_PAGE"]
    with pytest.raises(VMBug) as e:
        m.put_page_testzero(0)
    assert (e.value.finding.kind, e.value.finding.function) == ("VM_BUG_ON_PAGE", "put_page_testzero")
    assert m.atomic_read(0) == F + 1


def test_race_5_11_increment_of_frozen_allocation_baseline() -> None:
    """§5.11 baseline: 0 -> 1, works by accident."""
    m = Baseline(ListStorage(1), debug_vm="bug")
    m.set_frozen(0)
    m.page_ref_inc(0)
    assert m.page_ref_count(0) == 1
    assert m.put_page_testzero(0) is True
    assert m.atomic_read(0) == 0 and m.findings == []


# ------------------------------------------------------------------------------ range helpers
#: page_ref_count() == 0 per column (the count rows of the tables above), for the vectorised
#: bad-page checks of mm/page_alloc.c
ZERO_COUNT = {
    # columns:  1      2      INT_MAX 0     F     F+1   F+5   LIM-1 LIM   -1
    "baseline": (False, False, False, True, False, False, False, False, False, False),
    "rfc": (False, False, False, True, True, True, True, True, True, True),
    "v1": (False, False, False, True, True, True, True, True, True, True),
    "v2": (False, False, False, True, True, True, True, True, True, True),
    "v3": (False, False, False, True, True, True, True, True, True, True),
    "final": (False, False, False, True, True, True, True, True, True, True),
    # columns:  F+1    F+2    -1     F     0     5     2^30-1 2^30 INT_MAX
    "inverted": (False, False, False, True, True, True, True, True, True),
}
#: is_frozen_raw per column (§3.3 "frozen" column; inverted.py for the inverted encoding)
FROZEN = {
    "baseline": (False, False, False, True, False, False, False, False, False, False),
    "rfc": (False, False, False, False, True, True, True, True, True, True),
    "v1": (False, False, False, False, True, True, True, True, True, True),
    "v2": (False, False, False, False, True, True, True, True, True, True),
    "v3": (False, False, False, False, True, True, True, True, True, True),
    "final": (False, False, False, False, True, True, True, True, True, True),
    "inverted": (False, False, False, False, True, True, True, True, True),
}


@pytest.mark.parametrize("model", list(TABLES))
def test_encoding_predicates(model: str) -> None:
    t = TABLES[model]
    raws = [word(c) for c in t.columns]
    arr = np.array(raws, dtype=np.int32)
    m = t.cls(ListStorage(len(raws)))
    m.storage.refcount_np[:] = arr
    assert tuple(bool(x) for x in m.zero_count_mask(arr)) == ZERO_COUNT[model]
    # the generic (per element) default agrees with the vectorised override
    assert tuple(bool(x) for x in PageRefModel.zero_count_mask(m, arr)) == ZERO_COUNT[model]
    assert tuple(t.cls.is_frozen_raw(r) for r in raws) == FROZEN[model]
    assert tuple(bool(x) for x in t.cls.frozen_mask(arr)) == FROZEN[model]
    assert tuple(m.page_is_frozen(p) for p in range(len(raws))) == FROZEN[model]
    ok, first, bad = m.all_frozen(0, len(raws))
    assert (ok, first, bad) == (False, FROZEN[model].index(False), FROZEN[model].count(False))


def test_all_frozen_on_a_frozen_range() -> None:
    m = Final(ListStorage(4, F))
    m.storage.refcount_np[3] = 1
    assert m.all_frozen(0, 3) == (True, -1, 0)
    assert m.all_frozen(1, 3) == (False, 3, 1)


def test_vm_check_for_other_kernel_files() -> None:
    """The public vm_check runs a check written in another file with the model's debug_vm."""
    bug = DebugCheck("VM_BUG_ON_PAGE", "set_page_refcounted", "page_ref_count(page)")
    warn = DebugCheck("VM_WARN_ON_ONCE", "__free_one_page", "x")
    m = Final(ListStorage(1, 3), debug_vm="bug")
    m.vm_check(bug, False, 0, 3)
    with pytest.raises(VMBug) as e:
        m.vm_check(bug, True, 0, 3)
    assert (e.value.finding.function, e.value.finding.model, e.value.finding.raw_before) == (
        "set_page_refcounted",
        "final",
        3,
    )
    m.vm_check(warn, True, 0, 3)
    m.vm_check(warn, True, 0, 3)
    assert [f.kind for f in m.findings] == ["VM_WARN_ON_ONCE"]
    off = Final(ListStorage(1, 3))
    off.vm_check(bug, True, 0, 3)
    assert off.findings == []
