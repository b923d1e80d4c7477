"""Trace events: the versioned JSON Lines trace format (docs/trace-format.md), as pydantic types.

A trace is a header line (:class:`Header`) then one event per line, each a JSON object tagged
by ``"op"``. Every op is a ``TypedDict`` with ``extra="forbid"`` and strict types; the events
form one union discriminated on ``op`` behind one module-level ``TypeAdapter``
(:data:`EVENT_ADAPTER`), so a line is validated by ``EVENT_ADAPTER.validate_json(line)`` in
pydantic-core without ``json.loads`` first. Ops are named after the kernel functions they
replay: memblock (mm/memblock.c), ``online_pages`` (mm/memory_hotplug.c), the page allocator
entry points (mm/page_alloc.c), include/linux/page_ref.h and mm.h, mm/page_frag_cache.c.

Why dicts and not frozen dataclasses: a validated event stays the ``dict`` pydantic-core builds
in Rust. ``TypedDict`` variants validate ≈2.5× faster than models (pydantic
docs/concepts/performance.md) and converting each event to a dataclass would add a Python-level
allocation per line on the replay hot path, the very cost the format exists to avoid. The
engine dispatches on ``event["op"]``; optional fields are absent (use ``event.get``), never
``None``, except ``pfn: null`` on an allocation or page_frag_alloc (an observed failure). gfp strings are turned into
``int`` masks during validation (:func:`buddysim.mm.gfp.parse_gfp`, cached), so the engine
always sees ``event["gfp"]`` as an ``int``.

Pages are named by ``handle`` (synthetic traces: a name given at allocation, independent of
placement) or by ``pfn`` (recorded traces). Ops that act on an existing page take exactly one of
the two; the per-op validators say so in one clear message. No I/O here (reader.py reads,
recorder.py writes).
"""

import difflib
from typing import Annotated, Any, Literal, NotRequired, TypeAlias

from pydantic import AfterValidator, ConfigDict, Field, GetPydanticSchema, TypeAdapter, with_config
from pydantic_core import PydanticCustomError, core_schema
from typing_extensions import TypedDict

from buddysim.mm.gfp import GfpParseError, parse_gfp

__all__ = [
    "EVENT_ADAPTER",
    "FIELD_ORDER",
    "FORMAT_VERSION",
    "HEADER_ADAPTER",
    "MAX_ORDER_SCHEMA",
    "OPS",
    "PAGE_REF_FUNCTIONS",
    "RECORDED_OPS",
    "REF_OPS",
    "SUPPORTED_VERSIONS",
    "AllocFrozenPages",
    "AllocPages",
    "Check",
    "DrainAllPages",
    "Event",
    "FolioPut",
    "FolioTryGet",
    "FreeFrozenPages",
    "FreePages",
    "GetPage",
    "Header",
    "Mark",
    "MemblockAdd",
    "MemblockFreeAll",
    "MemblockPhysAllocRange",
    "MemblockPhysFree",
    "MemblockReserve",
    "MmPageAllocExtfrag",
    "MmPageAllocZoneLocked",
    "MmPageFreeBatched",
    "MmPagePcpuDrain",
    "OnlinePages",
    "PageFragAlloc",
    "PageFragCacheDrain",
    "PageFragFree",
    "PageRef",
    "PutPage",
    "event_json_schema",
    "header_json_schema",
    "register_page_ref_function",
    "trace_json_schema",
]

#: The version this code writes. Bump it whenever an op or field is added, removed or changes
#: meaning (docs/trace-format.md, "Compatibility").
FORMAT_VERSION = 1
#: Versions the reader accepts.
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)

#: Orders the schema accepts: MAX_PAGE_ORDER of x86-64 (mmzone.h); the engine checks the
#: machine's own MAX_PAGE_ORDER.
MAX_ORDER_SCHEMA = 10
_PFN_LIMIT = 1 << 40  # x86-64 MAX_PHYSMEM_BITS 52 (5-level paging) - PAGE_SHIFT 12
_PHYS_LIMIT = 1 << 52  # physical addresses (memblock base/size), bytes
_NR_CPUS = 8192  # x86 CONFIG_NR_CPUS maximum
_MAX_NUMNODES = 1024  # CONFIG_NODES_SHIFT maximum 10
_INT_MIN, _UINT_LIMIT = -(1 << 31), 1 << 32
_COUNT_LIMIT = (1 << 63) - 1

_STRICT = ConfigDict(extra="forbid", strict=True)


def _err(kind: str, text: str) -> PydanticCustomError:
    # The text goes in as context, so braces in user input are never read as a template.
    return PydanticCustomError(kind, "{reason}", {"reason": text})


# ---------------------------------------------------------------- field types
Order = Annotated[int, Field(ge=0, le=MAX_ORDER_SCHEMA, description="allocation order, 0..10")]
Pfn = Annotated[int, Field(ge=0, lt=_PFN_LIMIT, description="page frame number, 0 <= pfn < 2^40")]
Cpu = Annotated[int, Field(ge=0, lt=_NR_CPUS, description="CPU number, 0..8191")]
Nid = Annotated[int, Field(ge=0, lt=_MAX_NUMNODES, description="NUMA node id, 0..1023")]
PhysAddr = Annotated[int, Field(ge=0, lt=_PHYS_LIMIT, description="physical address in bytes, < 2^52")]
PhysSize = Annotated[int, Field(gt=0, le=_PHYS_LIMIT, description="size in bytes, 1..2^52")]
Count = Annotated[int, Field(ge=0, le=_COUNT_LIMIT)]
RawRefcount = Annotated[
    int,
    Field(
        ge=_INT_MIN,
        lt=_UINT_LIMIT,
        description="the 32-bit _refcount word, signed (-2^31..2^31-1) or unsigned (..2^32-1)",
    ),
]
RefArg = Annotated[int, Field(ge=_INT_MIN, lt=1 << 31, description="int argument (32-bit)")]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@/-]+$")]
ZoneName = Literal["DMA", "DMA32", "Normal", "Movable"]
MigratetypeName = Literal["Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"]


def _union(kind: str, message: str, *choices: core_schema.CoreSchema) -> GetPydanticSchema:
    # A union that reports one error in our words instead of one per member (whose locations
    # would end in pydantic's member labels such as 'constrained-int').
    def schema(_source: Any, _handler: Any) -> core_schema.CoreSchema:
        return core_schema.union_schema(list(choices), custom_error_type=kind, custom_error_message=message)

    return GetPydanticSchema(schema)


#: A synthetic page (or fragment) name: an int or a string; ``5`` and ``"5"`` are different handles.
Handle = Annotated[
    int | str,
    _union(
        "handle_type",
        "handle must be an integer 0..2^63-1 or a string of 1 to 128 characters",
        core_schema.int_schema(ge=0, le=_COUNT_LIMIT, strict=True),
        core_schema.str_schema(min_length=1, max_length=128, strict=True),
    ),
]


_gfp_cache: dict[str | int, int] = {}


def _gfp_to_mask(value: int | str) -> int:
    # Hot path: one dict lookup per allocation event; parse_gfp only on a new spelling.
    try:
        return _gfp_cache[value]
    except KeyError:
        pass
    try:
        mask = parse_gfp(value)
    except GfpParseError as e:
        raise _err("gfp_flags", str(e)) from None
    if len(_gfp_cache) < 65536:
        _gfp_cache[value] = mask
    return mask


#: gfp as the trace writes it (symbolic, hex string or int), validated into an ``int`` mask.
Gfp = Annotated[
    int | str,
    _union(
        "gfp_type",
        "gfp must be flag names like 'GFP_KERNEL|__GFP_COMP', a hex string like '0x140cca', "
        "or an integer 0..2^32-1",
        core_schema.int_schema(ge=0, lt=_UINT_LIMIT, strict=True),
        core_schema.str_schema(min_length=1, max_length=512, strict=True),
    ),
    AfterValidator(_gfp_to_mask),
]


def _power_of_two(value: int) -> int:
    if value & (value - 1):
        raise _err("align_power_of_two", f"align must be a power of two, got {value}")
    return value


Align = Annotated[int, Field(ge=1, le=1 << 31), AfterValidator(_power_of_two)]


# ---------------------------------------------------------------- header
@with_config(ConfigDict(extra="forbid", strict=True))
class Header(TypedDict):
    """First line of every trace: format version, machine, refcount model, provenance."""

    op: Literal["header"]
    version: int
    #: a preset name (``buddysim/presets/<name>.toml``) or an inline machine config object
    machine: Annotated[
        str | dict[str, Any],
        _union(
            "machine_type",
            "machine must be a preset name or an inline machine config object",
            core_schema.str_schema(min_length=1, strict=True),
            core_schema.dict_schema(core_schema.str_schema(), core_schema.any_schema(), strict=True),
        ),
    ]
    #: refcount model name (``buddysim models``); default: the CLI's ``--refcount`` or baseline
    refcount: NotRequired[Annotated[str, Field(min_length=1)]]
    #: call-site table name or null (the model's own table)
    sites: NotRequired[Annotated[str, Field(min_length=1)] | None]
    #: seed of the generator that wrote the trace, or null
    seed: NotRequired[int | None]
    #: free text: generator and options, capture host, kernel, ...
    source: NotRequired[str]
    #: free-form metadata (generator parameters, ...); never interpreted by the engine
    meta: NotRequired[dict[str, Any]]


# ---------------------------------------------------------------- memblock / hotplug
@with_config(_STRICT)
class MemblockAdd(TypedDict):
    """``memblock_add(base, size)`` / ``memblock_add_node(base, size, nid, MEMBLOCK_NONE)``."""

    op: Literal["memblock_add"]
    base: PhysAddr
    size: PhysSize
    nid: NotRequired[Nid]


@with_config(_STRICT)
class MemblockReserve(TypedDict):
    """``memblock_reserve(base, size)``."""

    op: Literal["memblock_reserve"]
    base: PhysAddr
    size: PhysSize


@with_config(_STRICT)
class MemblockPhysFree(TypedDict):
    """``memblock_phys_free(base, size)``: give a reserved range back before the handoff."""

    op: Literal["memblock_phys_free"]
    base: PhysAddr
    size: PhysSize


@with_config(_STRICT)
class MemblockPhysAllocRange(TypedDict):
    """``memblock_phys_alloc_range(size, align, start, end)`` (``_try_nid`` with ``nid``)."""

    op: Literal["memblock_phys_alloc_range"]
    size: PhysSize
    align: NotRequired[Align]
    start: NotRequired[PhysAddr]
    #: exclusive; absent = MEMBLOCK_ALLOC_ACCESSIBLE
    end: NotRequired[PhysAddr]
    nid: NotRequired[Nid]
    #: the base a recording observed (0 = the allocation failed)
    base: NotRequired[PhysAddr]


@with_config(_STRICT)
class MemblockFreeAll(TypedDict):
    """``memblock_free_all()``: hand all free memblock memory to the buddy allocator."""

    op: Literal["memblock_free_all"]


@with_config(_STRICT)
class OnlinePages(TypedDict):
    """``online_pages(pfn, nr_pages, zone, group)`` (mm/memory_hotplug.c)."""

    op: Literal["online_pages"]
    start_pfn: Pfn
    nr_pages: Annotated[int, Field(gt=0, le=_PFN_LIMIT)]
    nid: NotRequired[Nid]
    #: the sysfs online type that picks the zone; absent = "online" (the kernel's default policy)
    online_type: NotRequired[Literal["online", "online_kernel", "online_movable"]]


# ---------------------------------------------------------------- allocator
@with_config(_STRICT)
class AllocPages(TypedDict):
    """``alloc_pages(gfp, order)`` / ``alloc_pages_node(nid, gfp, order)``: refcount 1."""

    op: Literal["alloc_pages"]
    order: Order
    gfp: Gfp
    cpu: NotRequired[Cpu]
    nid: NotRequired[Nid]
    #: name the block for later ops (synthetic traces)
    handle: NotRequired[Handle]
    #: the pfn a recording observed; null = the allocation failed (NULL)
    pfn: NotRequired[Pfn | None]


@with_config(_STRICT)
class AllocFrozenPages(TypedDict):
    """``alloc_frozen_pages(gfp, order)`` (mm/internal.h, 6.14+): the block stays at refcount 0."""

    op: Literal["alloc_frozen_pages"]
    order: Order
    gfp: Gfp
    cpu: NotRequired[Cpu]
    nid: NotRequired[Nid]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn | None]


@with_config(_STRICT)
class FreePages(TypedDict):
    """``__free_pages(page, order)``: put one reference, free the block when it was the last."""

    op: Literal["__free_pages"]
    order: Order
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class FreeFrozenPages(TypedDict):
    """``free_frozen_pages(page, order)``: free a block whose refcount is already 0."""

    op: Literal["free_frozen_pages"]
    order: Order
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class PutPage(TypedDict):
    """``put_page(page)``: drop a reference; the last one frees the folio."""

    op: Literal["put_page"]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class GetPage(TypedDict):
    """``get_page(page)``: take a reference on a live page."""

    op: Literal["get_page"]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]


@with_config(_STRICT)
class FolioTryGet(TypedDict):
    """``folio_try_get(folio)``: speculative reference; fails on a frozen (free) page."""

    op: Literal["folio_try_get"]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    #: the result a recording observed
    ret: NotRequired[bool]


@with_config(_STRICT)
class FolioPut(TypedDict):
    """``folio_put(folio)``: drop a reference; the last one frees the folio."""

    op: Literal["folio_put"]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    cpu: NotRequired[Cpu]


#: page_ref.h / mm.h functions by kernel name → the name of their int argument (None: no argument).
#: The union of every built-in refcount model's API; the engine checks the chosen model has it.
PAGE_REF_FUNCTIONS: dict[str, str | None] = {
    "page_ref_count": None,
    "folio_ref_count": None,
    "page_count": None,
    "set_page_count": "v",
    "folio_set_count": "v",
    "init_page_count": None,
    "folio_init_count": None,
    "set_page_count_frozen": None,
    "set_page_count_as_frozen": None,
    "page_ref_add": "nr",
    "page_ref_sub": "nr",
    "page_ref_inc": None,
    "page_ref_dec": None,
    "folio_ref_add": "nr",
    "folio_ref_sub": "nr",
    "folio_ref_inc": None,
    "folio_ref_dec": None,
    "page_ref_sub_return": "nr",
    "page_ref_inc_return": None,
    "page_ref_dec_return": None,
    "folio_ref_sub_return": "nr",
    "folio_ref_inc_return": None,
    "folio_ref_dec_return": None,
    "page_ref_sub_and_test": "nr",
    "page_ref_dec_and_test": None,
    "folio_ref_sub_and_test": "nr",
    "folio_ref_dec_and_test": None,
    "page_ref_add_unless": "nr",
    "page_ref_add_unless_zero": "nr",
    "folio_ref_add_unless_zero": "nr",
    "page_ref_add_unless_frozen": "nr",
    "folio_ref_add_unless_frozen": "nr",
    "folio_try_get": None,
    "folio_ref_try_add": "count",
    "get_page_unless_zero": None,
    "page_ref_freeze": "count",
    "page_ref_unfreeze": "count",
    "folio_ref_freeze": "count",
    "folio_ref_unfreeze": "count",
    "page_ref_zero_or_close_to_overflow": None,
    "folio_ref_zero_or_close_to_overflow": None,
    "folio_get": None,
    "get_page": None,
    "put_page_testzero": None,
    "folio_put_testzero": None,
}
_REF_ARGS = ("nr", "count", "v")


def register_page_ref_function(name: str, arg: Literal["nr", "count", "v"] | None) -> None:
    """Let ``page_ref`` events name a function a plug-in model adds (``arg``: its int parameter)."""
    if arg is not None and arg not in _REF_ARGS:
        raise ValueError(f"arg must be one of {_REF_ARGS} or None, not {arg!r}")
    PAGE_REF_FUNCTIONS[name] = arg


@with_config(_STRICT)
class PageRef(TypedDict):
    """Any page_ref.h / mm.h function by kernel name: ``{"fn": "page_ref_add", "nr": 2, ...}``."""

    op: Literal["page_ref"]
    fn: Annotated[str, Field(min_length=1, max_length=64)]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    nr: NotRequired[RefArg]
    count: NotRequired[RefArg]
    v: NotRequired[RefArg]
    #: the value a recording observed the function return
    ret: NotRequired[
        Annotated[
            bool | int,
            _union(
                "ret_type",
                "ret must be a boolean or a 32-bit integer",
                core_schema.bool_schema(strict=True),
                core_schema.int_schema(ge=_INT_MIN, lt=1 << 31, strict=True),
            ),
        ]
    ]


# ---------------------------------------------------------------- page_frag_cache
@with_config(_STRICT)
class PageFragAlloc(TypedDict):
    """``page_frag_alloc(nc, fragsz, gfp)`` / ``page_frag_alloc_align(.., align)`` on cache ``cache``."""

    op: Literal["page_frag_alloc"]
    cache: Name
    size: Annotated[int, Field(ge=1, lt=_UINT_LIMIT, description="fragsz in bytes (unsigned int)")]
    align: NotRequired[Align]
    gfp: Gfp
    #: names the fragment for page_frag_free
    handle: NotRequired[Handle]
    #: what a recording observed: the head pfn of the cache page and the fragment's offset
    pfn: NotRequired[Pfn | None]
    offset: NotRequired[Annotated[int, Field(ge=0, lt=_UINT_LIMIT)]]


@with_config(_STRICT)
class PageFragFree(TypedDict):
    """``page_frag_free(addr)``: a fragment by its handle, or by the pfn of its page."""

    op: Literal["page_frag_free"]
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]


@with_config(_STRICT)
class PageFragCacheDrain(TypedDict):
    """``page_frag_cache_drain(nc)``: return the cache's unused bias and drop its page."""

    op: Literal["page_frag_cache_drain"]
    cache: Name


# ---------------------------------------------------------------- pcp, checks, labels
@with_config(_STRICT)
class DrainAllPages(TypedDict):
    """``drain_all_pages(zone)``: flush pcp lists to the buddy (one CPU: ``drain_local_pages``)."""

    op: Literal["drain_all_pages"]
    cpu: NotRequired[Cpu]
    zone: NotRequired[ZoneName]
    nid: NotRequired[Nid]


# ---------------------------------------------------------------- recorded-only ops (kmem tracepoints)
# What a capture of a real kernel (buddysim import ftrace) observed, named after the tracepoint
# (include/trace/events/kmem.h). They describe a move the kernel made, not a call to replay:
# only directed replay (buddysim replay --directed) applies them.
@with_config(_STRICT)
class MmPageAllocZoneLocked(TypedDict):
    """``mm_page_alloc_zone_locked``: ``__rmqueue_smallest`` took this block off the buddy lists."""

    op: Literal["mm_page_alloc_zone_locked"]
    pfn: Pfn
    order: Order
    migratetype: MigratetypeName
    #: pcp_allowed_order(order) && migratetype < MIGRATE_PCPTYPES (not proof of a pcp refill)
    percpu_refill: bool
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class MmPagePcpuDrain(TypedDict):
    """``mm_page_pcpu_drain``: ``free_pcppages_bulk`` moved this block from a pcp list to the buddy."""

    op: Literal["mm_page_pcpu_drain"]
    pfn: Pfn
    order: Order
    migratetype: MigratetypeName
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class MmPageAllocExtfrag(TypedDict):
    """``mm_page_alloc_extfrag``: a fallback allocation (claim or steal) from another migratetype."""

    op: Literal["mm_page_alloc_extfrag"]
    pfn: Pfn
    alloc_order: Order
    fallback_order: Order
    alloc_migratetype: MigratetypeName
    fallback_migratetype: MigratetypeName
    change_ownership: NotRequired[bool]
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class MmPageFreeBatched(TypedDict):
    """``mm_page_free_batched`` (old name ``mm_pagevec_free``): a free through a folio batch."""

    op: Literal["mm_page_free_batched"]
    pfn: Pfn
    order: NotRequired[Order]
    cpu: NotRequired[Cpu]


@with_config(_STRICT)
class Check(TypedDict):
    """Assertions on the simulated state at this point; a failed one is a finding."""

    op: Literal["check"]
    #: restrict free_per_order / nr_free / pcp_count to a zone (and node); absent = all zones
    zone: NotRequired[ZoneName]
    nid: NotRequired[Nid]
    #: restrict free_per_order to one migratetype's lists
    migratetype: NotRequired[MigratetypeName]
    #: pcp_count of one CPU; absent = all CPUs
    cpu: NotRequired[Cpu]
    #: free blocks per order, orders 0.. (one entry per order of the machine)
    free_per_order: NotRequired[Annotated[list[Count], Field(min_length=1, max_length=MAX_ORDER_SCHEMA + 1)]]
    #: free pages (nr_free_pages), in the zone or in total
    nr_free: NotRequired[Count]
    #: pages on pcp lists
    pcp_count: NotRequired[Count]
    #: the page whose refcount is asserted
    handle: NotRequired[Handle]
    pfn: NotRequired[Pfn]
    #: the raw _refcount word (compared modulo 2^32)
    raw: NotRequired[RawRefcount]
    #: page_ref_count() as the model reads it
    count: NotRequired[RawRefcount]
    #: text printed with a failed assertion
    message: NotRequired[Annotated[str, Field(max_length=200)]]


@with_config(_STRICT)
class Mark(TypedDict):
    """A label (``buddysim show --at LABEL``); changes nothing."""

    op: Literal["mark"]
    label: Annotated[str, Field(min_length=1, max_length=200)]


# ---------------------------------------------------------------- cross-field rules
def _one_page(event: dict[str, Any]) -> dict[str, Any]:
    # Exactly one of handle / pfn. Runs per event, so: two dict probes, no allocation.
    if ("handle" in event) is ("pfn" in event):
        if "handle" in event:
            raise _err("page_both", "give exactly one of 'handle' or 'pfn', not both")
        raise _err("page_missing", "the page is missing: give 'handle' or 'pfn'")
    return event


def _page_ref_rules(event: dict[str, Any]) -> dict[str, Any]:
    _one_page(event)
    fn = event["fn"]
    given = [a for a in _REF_ARGS if a in event]
    try:
        arg = PAGE_REF_FUNCTIONS[fn]
    except KeyError:
        close = difflib.get_close_matches(fn, PAGE_REF_FUNCTIONS, n=1, cutoff=0.7)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _err("page_ref_fn", f"unknown page_ref function {fn!r}{hint}") from None
    if arg is None and given:
        raise _err("page_ref_args", f"{fn}() takes no argument, got {', '.join(given)}")
    if arg is not None and given != [arg]:
        raise _err("page_ref_args", f"{fn}() takes one argument, {arg!r}; got {', '.join(given) or 'none'}")
    return event


def _check_rules(event: dict[str, Any]) -> dict[str, Any]:
    page_assert = "raw" in event or "count" in event
    if page_assert:
        _one_page(event)
    elif "handle" in event or "pfn" in event:
        raise _err("check_page", "'handle'/'pfn' only go with a 'raw' or 'count' assertion")
    if not (page_assert or "free_per_order" in event or "nr_free" in event or "pcp_count" in event):
        raise _err(
            "check_empty", "a check needs at least one of free_per_order, nr_free, pcp_count, raw, count"
        )
    return event


# ---------------------------------------------------------------- the union
Event: TypeAlias = Annotated[
    MemblockAdd
    | MemblockReserve
    | MemblockPhysFree
    | MemblockPhysAllocRange
    | MemblockFreeAll
    | OnlinePages
    | AllocPages
    | AllocFrozenPages
    | Annotated[FreePages, AfterValidator(_one_page)]
    | Annotated[FreeFrozenPages, AfterValidator(_one_page)]
    | Annotated[PutPage, AfterValidator(_one_page)]
    | Annotated[GetPage, AfterValidator(_one_page)]
    | Annotated[FolioTryGet, AfterValidator(_one_page)]
    | Annotated[FolioPut, AfterValidator(_one_page)]
    | Annotated[PageRef, AfterValidator(_page_ref_rules)]
    | PageFragAlloc
    | Annotated[PageFragFree, AfterValidator(_one_page)]
    | PageFragCacheDrain
    | DrainAllPages
    | MmPageAllocZoneLocked
    | MmPagePcpuDrain
    | MmPageAllocExtfrag
    | MmPageFreeBatched
    | Annotated[Check, AfterValidator(_check_rules)]
    | Mark,
    Field(discriminator="op"),
]

_EVENT_TYPES: tuple[type, ...] = (
    MemblockAdd,
    MemblockReserve,
    MemblockPhysFree,
    MemblockPhysAllocRange,
    MemblockFreeAll,
    OnlinePages,
    AllocPages,
    AllocFrozenPages,
    FreePages,
    FreeFrozenPages,
    PutPage,
    GetPage,
    FolioTryGet,
    FolioPut,
    PageRef,
    PageFragAlloc,
    PageFragFree,
    PageFragCacheDrain,
    DrainAllPages,
    MmPageAllocZoneLocked,
    MmPagePcpuDrain,
    MmPageAllocExtfrag,
    MmPageFreeBatched,
    Check,
    Mark,
)

#: op name → its TypedDict, in format order
OPS: dict[str, type] = {t.__annotations__["op"].__args__[0]: t for t in _EVENT_TYPES}
#: ops that name an existing page with exactly one of handle / pfn
REF_OPS: frozenset[str] = frozenset(
    {
        "__free_pages",
        "free_frozen_pages",
        "put_page",
        "get_page",
        "folio_try_get",
        "folio_put",
        "page_ref",
        "page_frag_free",
    }
)
#: recorded-only ops: what a capture observed (kmem tracepoints); only directed replay applies them
RECORDED_OPS: frozenset[str] = frozenset(
    {"mm_page_alloc_zone_locked", "mm_page_pcpu_drain", "mm_page_alloc_extfrag", "mm_page_free_batched"}
)
#: op name → its keys in declaration order ("op" first): the recorder's stable key order
FIELD_ORDER: dict[str, tuple[str, ...]] = {op: tuple(t.__annotations__) for op, t in OPS.items()}
FIELD_ORDER["header"] = tuple(Header.__annotations__)

#: validates one event line: ``EVENT_ADAPTER.validate_json(b'{"op": ...}')`` → a dict
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
#: validates the header line
HEADER_ADAPTER: TypeAdapter[Header] = TypeAdapter(Header)


def event_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event line (the discriminated union)."""
    return EVENT_ADAPTER.json_schema()


def header_json_schema() -> dict[str, Any]:
    """JSON Schema of the header line."""
    return HEADER_ADAPTER.json_schema()


def trace_json_schema() -> dict[str, Any]:
    """JSON Schema of any trace line: the header or an event, with the format version."""
    events = event_json_schema()
    defs = dict(events.pop("$defs", {}))
    header = header_json_schema()
    defs.update(header.pop("$defs", {}))
    defs["Header"] = header
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"buddysim trace line (format version {FORMAT_VERSION})",
        "description": "The first line is a Header; every other line is one event, tagged by 'op'.",
        "oneOf": [{"$ref": "#/$defs/Header"}, events],
        "$defs": defs,
    }
