"""Thread programs: kernel-level litmus actions compiled into instructions.

Each action of a scenario becomes one :class:`Instr`. Actions that touch ``_refcount`` carry a
:class:`ModelCall`, which :func:`run_call` executes on the model (a page_ref.h function by its
kernel name, or a call-site write through the model's site table); the stepper cuts it into the
model's own atomic steps. Ghost-only actions (re-validate, remove from mapping, a frozen
allocation, ...) change only the oracle's view of the page and take one step. Control flow is
resolved when an action completes: ``ok_next`` / ``fail_next`` are the next instruction (or
:data:`END`); ``on_fail = "put_stop"`` jumps to a synthetic put appended after the program.

Each instruction also has a static *footprint*: the shared variables (``word``, ``page``,
``map``, per-thread ``refs:T``) any of its steps may read or write. The explorer's "independent
steps first" reduction uses it to prove that no other thread can ever interfere with a step.

Simplified: one page (pfn 0); ``folio_put`` is ``folio_ref_dec_and_test`` (``put_page_testzero``,
with its ``VM_BUG_ON_PAGE``, when CONFIG_DEBUG_VM is on) followed by ``__folio_put``, which is
modelled as "run the destructor and hand the page back"; allocation is only its refcount write
(``set_page_refcounted`` through the site table) plus the oracle's bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from buddysim.refcount.page_ref import DebugCheck, DebugVM, PageRefModel
from buddysim.refcount.sites import SiteTable, apply_site

from .scenario import (
    AllocateAction,
    FreezeAction,
    GetAction,
    PutAction,
    SetCountAction,
    SiteAction,
    ThreadSpec,
    UnfreezeAction,
)
from .scenario import (
    PlainAction as _Plain,
)

__all__ = ["END", "Instr", "ModelCall", "Op", "Program", "compile_program", "run_call"]

#: ``ok_next`` / ``fail_next`` value meaning "the thread is done".
END = -1


class Op(StrEnum):
    """What an instruction does (the action names of the scenario format)."""

    GET = "get"
    PUT = "put"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    ALLOCATE = "allocate"
    ALLOC_FROZEN = "alloc_frozen"
    SITE = "site"
    SET_COUNT = "set_count"
    FREE_PAGES_CORE = "free_pages_core"
    FRAG_REUSE = "frag_reuse"
    SET_FROZEN = "set_frozen"
    MEMSET = "memset"
    PAGE_REF_INC = "page_ref_inc"
    REVALIDATE = "revalidate"
    REMOVE_FROM_MAPPING = "remove_from_mapping"
    FREE_FROZEN = "free_frozen"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A refcount operation on page 0: a model method by name, or a call-site write.

    ``method`` is a PageRefModel method (``folio_try_get``, ``page_ref_freeze``, ...), or
    ``"site"`` (``args[0]`` names the site), or ``"set_page_refcounted"`` (the site write, after
    ``VM_BUG_ON_PAGE(page_ref_count(page) != 0)`` when ``check`` is set).
    """

    method: str
    args: tuple[int | str, ...] = ()
    check: bool = False


_SET_REFCOUNTED_CHECK = DebugCheck("VM_BUG_ON_PAGE", "set_page_refcounted", "page_ref_count(page) != 0")


def run_call(model: PageRefModel, call: ModelCall, sites: SiteTable) -> object:
    """Execute ``call`` on ``model`` (page 0); returns the operation's result."""
    if call.method == "site":
        apply_site(model, sites, str(call.args[0]), 0)
        return None
    if call.method == "set_page_refcounted":
        if call.check:  # mm/internal.h's check, reported like the model's own
            check = getattr(model, "vm_check", model._vm_check)
            check(_SET_REFCOUNTED_CHECK, model.page_ref_count(0) != 0, 0, None)
        apply_site(model, sites, "set_page_refcounted", 0)
        return None
    if call.method == "memset":
        model.atomic_set(0, 0)  # the struct page zeroed: a plain store of 0
        return None
    result: object = getattr(model, call.method)(0, *call.args)
    return result


# Footprint variables
WORD, PAGE, MAP, REFS_ALL = "word", "page", "map", "refs:*"


def refs_var(tid: int) -> str:
    return f"refs:{tid}"


@dataclass(frozen=True, slots=True)
class Instr:
    """One compiled action.

    ``label`` is what step tables show (``folio_try_get``, ``page_ref_sub_and_test(32769)``,
    ``revalidate``); ``nr`` the references a get takes or a put drops; ``ptype`` the type an
    allocation gives the page; ``destructor`` where a freeing put takes its destructor from.
    """

    op: Op
    label: str
    call: ModelCall | None = None
    nr: int = 1
    free: bool = True
    destructor: str = "page"
    ptype: str = "X"
    map: bool = False
    await_: str | None = None
    site: str = ""
    ok_next: int = END
    fail_next: int = END
    reads: frozenset[str] = frozenset()
    writes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Program:
    """A thread's compiled program: instructions (synthetic drops after ``main_len``)."""

    name: str
    intent: str
    instrs: tuple[Instr, ...]
    main_len: int
    refs: int = 0
    #: union of every instruction's footprint from index i on (for the reduction)
    rest_reads: tuple[frozenset[str], ...] = field(default=())
    rest_writes: tuple[frozenset[str], ...] = field(default=())


#: label and model call of the actions that need no parameters
_PLAIN: dict[Op, tuple[str, ModelCall | None]] = {
    Op.FREE_PAGES_CORE: ("__free_pages_core", ModelCall("site", ("__free_pages_core",))),
    Op.FRAG_REUSE: ("__page_frag_alloc_align (reuse)", ModelCall("site", ("__page_frag_alloc_align",))),
    Op.SET_FROZEN: ("frozen setter", ModelCall("set_frozen")),
    Op.MEMSET: ("memset(struct page, 0)", ModelCall("memset")),
    Op.PAGE_REF_INC: ("page_ref_inc", ModelCall("page_ref_inc")),
    Op.REVALIDATE: ("revalidate", None),
    Op.REMOVE_FROM_MAPPING: ("remove_from_mapping", None),
    Op.FREE_FROZEN: ("free_frozen_pages", None),
    Op.STOP: ("stop", None),
}

#: call sites whose refcount write comes with an allocator event
_SITE_OPS: dict[str, Op] = {
    "set_page_refcounted": Op.ALLOCATE,
    "__free_pages_core": Op.FREE_PAGES_CORE,
    "__page_frag_alloc_align": Op.FRAG_REUSE,
}

_DEFAULT_ON_FAIL = {Op.GET: "stop", Op.FREEZE: "stop", Op.REVALIDATE: "put_stop"}


def _footprint(op: Op, tid: int, *, free: bool, map_: bool, await_: str | None) -> tuple[set[str], set[str]]:
    me = refs_var(tid)
    r: set[str] = set()
    w: set[str] = set()
    if op in (Op.GET, Op.PAGE_REF_INC):
        r |= {WORD, PAGE}
        w |= {WORD, me}
    elif op is Op.PUT:
        r |= {WORD, PAGE, REFS_ALL}
        w |= {WORD, me, PAGE}
    elif op in (Op.FREEZE, Op.UNFREEZE):
        r |= {WORD}
        w |= {WORD, me}
    elif op in (Op.SET_COUNT, Op.SET_FROZEN, Op.MEMSET, Op.SITE):
        r |= {WORD}
        w |= {WORD}
    elif op in (Op.ALLOCATE, Op.FRAG_REUSE):
        r |= {WORD, PAGE, REFS_ALL}
        w |= {WORD, PAGE, me}
        if map_:
            w.add(MAP)
    elif op is Op.ALLOC_FROZEN:
        r |= {PAGE, REFS_ALL}
        w |= {PAGE, me}
        if map_:
            w.add(MAP)
    elif op in (Op.FREE_PAGES_CORE, Op.FREE_FROZEN):
        r |= {WORD, PAGE, REFS_ALL}
        w |= {WORD, PAGE, me}
    elif op is Op.REVALIDATE:
        r |= {PAGE, MAP, me}
    elif op is Op.REMOVE_FROM_MAPPING:
        w.add(MAP)
    if await_ is not None:
        r.add(PAGE)
    if op is Op.PUT and not free:
        w.discard(PAGE)
    return r, w


def _instr_for(
    spec: object,
    tid: int,
    intent: str,
    destructor: str,
    debug_vm: DebugVM,
) -> Instr:
    """The instruction for one action spec (targets filled in by :func:`compile_program`)."""
    dbg = debug_vm is not DebugVM.OFF
    await_ = getattr(spec, "await_", None)
    if isinstance(spec, GetAction):
        via = spec.via or ("folio_try_get" if spec.nr == 1 else "folio_ref_try_add")
        if via != "folio_ref_try_add" and spec.nr != 1:
            via = "folio_ref_try_add"
        args: tuple[int | str, ...] = (spec.nr,) if via == "folio_ref_try_add" else ()
        label = f"{via}({spec.nr})" if args else via
        op, call, extra = Op.GET, ModelCall(via, args), {"nr": spec.nr}
    elif isinstance(spec, PutAction):
        if spec.nr == 1 and spec.free:
            method, label = ("folio_put_testzero" if dbg else "folio_ref_dec_and_test"), "folio_put"
            call = ModelCall(method)
        elif spec.nr == 1:
            label, call = "page_ref_dec_and_test", ModelCall("page_ref_dec_and_test")
        else:
            label = f"page_ref_sub_and_test({spec.nr})"
            call = ModelCall("page_ref_sub_and_test", (spec.nr,))
        op = Op.PUT
        extra = {"nr": spec.nr, "free": spec.free, "destructor": spec.destructor or destructor}
    elif isinstance(spec, FreezeAction):
        op, label = Op.FREEZE, f"page_ref_freeze({spec.count})"
        call, extra = ModelCall("page_ref_freeze", (spec.count,)), {"nr": spec.count}
    elif isinstance(spec, UnfreezeAction):
        op, label = Op.UNFREEZE, f"page_ref_unfreeze({spec.count})"
        call, extra = ModelCall("page_ref_unfreeze", (spec.count,)), {"nr": spec.count}
    elif isinstance(spec, AllocateAction):
        ptype = spec.type or intent
        await_ = await_ or "free"
        if spec.action == "allocate":
            op, label = Op.ALLOCATE, f"allocate {ptype}: set_page_refcounted"
            call = ModelCall("set_page_refcounted", check=dbg)
        else:
            op, label, call = Op.ALLOC_FROZEN, f"alloc_frozen_page {ptype}", None
        extra = {"ptype": ptype, "map": spec.map}
    elif isinstance(spec, SiteAction):
        # The three sites with an allocator meaning get its bookkeeping; the rest are blind writes.
        op = _SITE_OPS.get(spec.site, Op.SITE)
        label = spec.site if op is not Op.ALLOCATE else f"allocate {intent}: set_page_refcounted"
        call = (
            ModelCall("set_page_refcounted", check=dbg)
            if op is Op.ALLOCATE
            else ModelCall("site", (spec.site,))
        )
        extra = {"site": spec.site, "ptype": intent}
        if op is Op.ALLOCATE:
            await_ = await_ or "free"
    elif isinstance(spec, SetCountAction):
        op, label = Op.SET_COUNT, f"set_page_count({spec.value})"
        call, extra = ModelCall("set_page_count", (spec.value,)), {}
    else:
        assert isinstance(spec, _Plain)
        op = Op(spec.action)
        extra = {"destructor": spec.destructor or destructor, "ptype": intent}
        label, call = _PLAIN[op]
    r, w = _footprint(op, tid, free=bool(extra.get("free", True)), map_=bool(extra.get("map")), await_=await_)
    return Instr(
        op=op,
        label=label,
        call=call,
        await_=await_,
        reads=frozenset(r),
        writes=frozenset(w),
        **extra,  # type: ignore[arg-type]
    )


def compile_program(
    spec: ThreadSpec | list[object],
    tid: int,
    *,
    name: str = "init",
    intent: str = "X",
    destructor: str = "page",
    debug_vm: DebugVM | str = DebugVM.OFF,
) -> Program:
    """Compile a thread (or a setup list) into a :class:`Program` with resolved control flow."""
    dbg = DebugVM(debug_vm)
    if isinstance(spec, ThreadSpec):
        name, actions = spec.name, list(spec.program)
        intent = spec.type or intent
        destructor = spec.destructor
        refs = spec.refs
    else:
        actions, refs = list(spec), 0
    main = [_instr_for(a, tid, intent, destructor, dbg) for a in actions]
    n = len(main)
    instrs: list[Instr] = []
    drops: list[Instr] = []
    last_nr = 1
    for i, (a, ins) in enumerate(zip(actions, main, strict=True)):
        if ins.op is Op.GET:
            last_nr = ins.nr
        ok = i + 1 if i + 1 < n else END
        on_fail = getattr(a, "on_fail", None) or _DEFAULT_ON_FAIL.get(ins.op, "continue")
        if ins.op is Op.STOP:
            ok = END
        if on_fail == "stop":
            fail = END
        elif on_fail == "continue":
            fail = ok
        else:  # put_stop: a synthetic drop of the reference, then the end
            fail = n + len(drops)
            drop_spec = PutAction(action="put", nr=last_nr)
            drop = _instr_for(drop_spec, tid, intent, destructor, dbg)
            drops.append(_replace(drop, label=f"{drop.label} (drop after failed {ins.op.value})"))
        instrs.append(_replace(ins, ok_next=ok, fail_next=fail))
    instrs.extend(drops)
    rest_r: list[frozenset[str]] = [frozenset()] * (len(instrs) + 1)
    rest_w: list[frozenset[str]] = [frozenset()] * (len(instrs) + 1)
    # Conservative: from instruction i on, anything after i may run (drops included).
    for i in range(len(instrs) - 1, -1, -1):
        rest_r[i] = rest_r[i + 1] | instrs[i].reads
        rest_w[i] = rest_w[i + 1] | instrs[i].writes
    drop_r = frozenset().union(*(d.reads for d in drops)) if drops else frozenset()
    drop_w = frozenset().union(*(d.writes for d in drops)) if drops else frozenset()
    rest_r = [r | drop_r for r in rest_r]
    rest_w = [w | drop_w for w in rest_w]
    return Program(
        name=name,
        intent=intent,
        instrs=tuple(instrs),
        main_len=n,
        refs=refs,
        rest_reads=tuple(rest_r),
        rest_writes=tuple(rest_w),
    )


def _replace(ins: Instr, **changes: object) -> Instr:
    return replace(ins, **changes)  # type: ignore[arg-type]
