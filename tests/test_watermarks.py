"""Watermarks, min_free_kbytes and lowmem_reserve, computed by hand from spec §1.4.

Two layouts whose managed pages are known exactly:

* a 1 GiB x86-64-like machine: DMA [0, 4096) with pfn 0 reserved (trim_bios_range), DMA32
  [4096, 262144); managed 4095 + 258048 = 262143;
* a four-zone machine: DMA 4096, DMA32 61440, Normal 65536, Movable 65536 pages.

Every expected number below is derived in the comments (integer division throughout), not
read back from the code under test.
"""

from __future__ import annotations

import math

import pytest
from support import one_gib

from buddysim.machine import Machine
from buddysim.mm import page_alloc as pa
from buddysim.mm.debug import validate_watermarks
from buddysim.mm.gfp import GFP_KERNEL
from buddysim.mm.mmzone import ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NORMAL


def four_zones(**kw) -> Machine:
    mm = Machine.simple(
        196608,
        zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 65536), (ZONE_NORMAL, 131072), (ZONE_MOVABLE, 196608)],
        nr_cpus=4,
        **kw,
    )
    mm.boot()
    return mm


def test_managed_pages_of_the_layouts():
    mm = one_gib()
    assert [z.managed_pages for z in mm.zones] == [4095, 258048]
    assert mm.totalram_pages == 262143
    mm = four_zones()
    assert [z.managed_pages for z in mm.zones] == [4096, 61440, 65536, 65536]
    assert mm.totalram_pages == 196608


def test_min_free_kbytes_one_gib():
    # nr_free_buffer_pages() at the first init_per_zone_wmark_min: watermarks are still 0, so
    # it is the managed pages of the zones GFP_USER may use (DMA, DMA32) = 262143.
    # lowmem_kbytes = 262143 * (4096 >> 10) = 1048572; * 16 = 16777152;
    # int_sqrt(16777152) = 4095 (4095^2 = 16769025 <= 16777152 < 4096^2 = 16777216);
    # clamp(4095, 128, 262144) = 4095.
    assert math.isqrt(16777152) == 4095
    assert one_gib().min_free_kbytes == 4095


def test_min_free_kbytes_four_zones_ignores_movable():
    # GFP_USER zones: DMA + DMA32 + Normal = 4096 + 61440 + 65536 = 131072 pages (Movable is
    # not a GFP_USER zone). 131072 * 4 * 16 = 8388608; int_sqrt = 2896 (2896^2 = 8386816,
    # 2897^2 = 8392609).
    assert four_zones().min_free_kbytes == 2896


def test_min_free_kbytes_clamps():
    # 64 pages: 64 * 4 * 16 = 4096 -> int_sqrt 64 -> clamped up to 128
    mm = Machine.simple(64, zones=[(ZONE_DMA, 64)], max_page_order=3, pageblock_order=2)
    mm.boot()
    assert mm.min_free_kbytes == 128


def test_setup_per_zone_wmarks_one_gib():
    mm = one_gib()
    dma, dma32 = mm.zones
    # pages_min = 4095 >> (12 - 10) = 1023; lowmem_pages = 262143
    # DMA:   tmp = 1023 * 4095 // 262143 = 4189185 // 262143 = 15   (16 * 262143 = 4194288)
    #        gap = max(15 >> 2 = 3, 4095 * 10 // 10000 = 4) = 4
    #        min 15, low 19, high 23, promo 27
    # DMA32: tmp = 1023 * 258048 // 262143 = 263983104 // 262143 = 1007 (1008 * 262143 =
    #        264240144); gap = max(1007 >> 2 = 251, 258048 * 10 // 10000 = 258) = 258
    #        min 1007, low 1265, high 1523, promo 1781
    assert dma._watermark == [15, 19, 23, 27]
    assert dma32._watermark == [1007, 1265, 1523, 1781]
    assert dma.watermark_boost == dma32.watermark_boost == 0
    assert (dma32.min_wmark_pages(), dma32.low_wmark_pages(), dma32.high_wmark_pages()) == (1007, 1265, 1523)


def test_setup_per_zone_wmarks_four_zones_movable_branch():
    mm = four_zones()
    dma, dma32, normal, movable = mm.zones
    # pages_min = 2896 >> 2 = 724; lowmem_pages = 4096 + 61440 + 65536 = 131072 (no Movable)
    # DMA:    tmp = 724 * 4096 // 131072 = 22; gap = max(5, 4) = 5     -> 22, 27, 32, 37
    # DMA32:  tmp = 724 * 61440 // 131072 = 339; gap = max(84, 61) = 84 -> 339, 423, 507, 591
    # Normal: tmp = 724 * 65536 // 131072 = 362; gap = max(90, 65) = 90 -> 362, 452, 542, 632
    # Movable: min = clamp(65536 // 1024 = 64, SWAP_CLUSTER_MAX 32, 128) = 64; the gap still
    #         comes from tmp = 362: max(90, 65) = 90                  -> 64, 154, 244, 334
    assert dma._watermark == [22, 27, 32, 37]
    assert dma32._watermark == [339, 423, 507, 591]
    assert normal._watermark == [362, 452, 542, 632]
    assert movable._watermark == [64, 154, 244, 334]


def test_setup_per_zone_lowmem_reserve_one_gib():
    dma, dma32 = one_gib().zones
    # DMA, ratio 256: j = DMA32: 258048 // 256 = 1008; Normal and Movable add 0 -> 1008
    # DMA32, ratio 256: Normal and Movable are empty -> 0
    assert dma.lowmem_reserve == [0, 1008, 1008, 1008]
    assert dma32.lowmem_reserve == [0, 0, 0, 0]


def test_setup_per_zone_lowmem_reserve_four_zones():
    dma, dma32, normal, movable = four_zones().zones
    # DMA (256):    61440 // 256 = 240; (61440 + 65536) // 256 = 496; (+ 65536) // 256 = 752
    # DMA32 (256):  65536 // 256 = 256; 131072 // 256 = 512
    # Normal (32):  65536 // 32 = 2048
    # Movable: the loop stops at MAX_NR_ZONES - 2; all 0
    assert dma.lowmem_reserve == [0, 240, 496, 752]
    assert dma32.lowmem_reserve == [0, 0, 256, 512]
    assert normal.lowmem_reserve == [0, 0, 0, 2048]
    assert movable.lowmem_reserve == [0, 0, 0, 0]
    for z in (dma, dma32, normal, movable):
        assert list(validate_watermarks(z.mm, z)) == []


def test_user_min_free_kbytes_and_scale_factor():
    # min_free_kbytes = 8192 set by the user: pages_min = 2048.
    # DMA32: tmp = 2048 * 258048 // 262143 = 528482304 // 262143 = 2016 (2017 * 262143 =
    #        528742431); gap = max(504, 258) = 504 -> 2016, 2520, 3024, 3528
    mm = one_gib(min_free_kbytes=8192)
    assert mm.min_free_kbytes == 8192
    assert mm.zones[1]._watermark == [2016, 2520, 3024, 3528]

    # watermark_scale_factor = 200 (2%): DMA32 gap = max(251, 258048 * 200 // 10000 = 5160)
    mm = Machine.simple(
        1 << 18, zones=[(ZONE_DMA, 4096), (ZONE_DMA32, 1 << 18)], reserved=[(0, 1)], nr_cpus=4
    )
    mm.watermark_scale_factor = 200
    mm.boot()
    assert mm.zones[1]._watermark == [1007, 1007 + 5160, 1007 + 2 * 5160, 1007 + 3 * 5160]
    # DMA: gap = max(3, 4095 * 200 // 10000 = 81) = 81
    assert mm.zones[0]._watermark == [15, 96, 177, 258]


def test_zone_watermark_ok_uses_the_reserve_of_the_requested_zone():
    """__zone_watermark_ok (§4.3): free - (2^order - 1) must exceed mark + lowmem_reserve."""
    mm = one_gib()
    dma = mm.zones[0]
    free = dma.NR_FREE_PAGES
    assert free == 4095
    # order 0 for a Normal request: 4095 > 23 + 1008
    assert pa.zone_watermark_ok(dma, 0, dma.high_wmark_pages(), ZONE_NORMAL, 0)
    # just at the edge: mark = 4095 - 1008 = 3087 -> 4095 <= 3087 + 1008 -> refused
    assert not pa.zone_watermark_ok(dma, 0, 3087, ZONE_NORMAL, 0)
    assert pa.zone_watermark_ok(dma, 0, 3086, ZONE_NORMAL, 0)
    # the same mark for a DMA request (reserve[DMA] = 0) passes
    assert pa.zone_watermark_ok(dma, 0, 3087, ZONE_DMA, 0)
    # order 10: free - 1023 = 3072 must exceed mark + reserve, and an order>=10 block must
    # exist: DMA holds free blocks up to order 10 ([1024, 4096) as three order-10 blocks)
    assert pa.zone_watermark_ok(dma, 10, 3072 - 1008 - 1, ZONE_NORMAL, 0)
    assert not pa.zone_watermark_ok(dma, 10, 3072 - 1008, ZONE_NORMAL, 0)


def _discounted(mark: int, flags: int) -> int:
    """The minimum __zone_watermark_ok compares with, as §4.3 writes it."""
    m = mark
    if flags & pa.ALLOC_RESERVES:
        if flags & pa.ALLOC_MIN_RESERVE:
            m -= m // 2
            if flags & pa.ALLOC_NON_BLOCK:
                m -= m // 4
        if flags & pa.ALLOC_OOM:
            m -= m // 2
    return m


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # mark 1000: MIN_RESERVE halves it (500), NON_BLOCK then takes a quarter (375);
        # OOM halves it; NON_BLOCK alone is a reserve flag but discounts nothing
        (pa.ALLOC_MIN_RESERVE, 500),
        (pa.ALLOC_MIN_RESERVE | pa.ALLOC_NON_BLOCK, 375),
        (pa.ALLOC_OOM, 500),
        (pa.ALLOC_NON_BLOCK, 1000),
        (0, 1000),
    ],
)
def test_zone_watermark_ok_reserve_discounts(flags, expected):
    assert _discounted(1000, flags) == expected
    mm = one_gib()
    dma = mm.zones[0]
    free = dma.NR_FREE_PAGES  # 4095, reserve[DMA] = 0
    # the largest mark whose discounted minimum is free - 1 passes; any mark whose
    # discounted minimum reaches free is refused
    accept = max(m for m in range(4 * free) if _discounted(m, flags) == free - 1)
    refuse = min(m for m in range(4 * free) if _discounted(m, flags) == free)
    assert pa.zone_watermark_ok(dma, 0, accept, ZONE_DMA, flags)
    assert not pa.zone_watermark_ok(dma, 0, refuse, ZONE_DMA, flags)


def test_gfp_kernel_leaves_dma32_at_its_low_watermark():
    """§4.3 fast path: each zone is tested against its high watermark (failing sets
    ZONE_BELOW_HIGH), then against low (ALLOC_WMARK_LOW); the zonelist walk continues to DMA
    before any slow path. So GFP_KERNEL takes its first DMA page once DMA32's NR_FREE_PAGES
    is at or below low = 1265 (DMA's own test: 4095 > low 19 + lowmem_reserve 1008)."""
    mm = one_gib()
    dma32 = mm.zones[1]
    for _ in range(250):  # order-10 blocks: 258048 - 250 * 1024 = 2048 free, above high 1523
        assert mm.alloc(GFP_KERNEL, 10, cpu=0) >= 4096
    assert dma32.NR_FREE_PAGES == 2048
    assert not dma32.flags & pa.ZONE_BELOW_HIGH
    while mm.alloc(GFP_KERNEL, 0, cpu=0) >= 4096:
        pass
    assert dma32.flags & pa.ZONE_BELOW_HIGH
    assert dma32.NR_FREE_PAGES <= 1265


def test_recompute_overrides_a_smaller_user_min_free_kbytes():
    """User value 128 KiB: pages_min 32. DMA: tmp = 32 * 4095 // 262143 = 0, gap 4 -> high 8.
    DMA32: tmp = 32 * 258048 // 262143 = 31, gap max(7, 258) = 258 -> high 31 + 2 * 258 = 547.
    The recompute (init_per_zone_wmark_min, as online_pages() calls it):
    nr_free_buffer_pages = (4095 - 8) + (258048 - 547) = 261588; * 4 * 16 = 16741632;
    int_sqrt = 4091 (4091^2 = 16736281, 4092^2 = 16744464) > 128, so the kernel sets
    min_free_kbytes = clamp(4091, 128, 262144) = 4091 and recomputes the watermarks."""
    mm = one_gib(min_free_kbytes=128)
    assert mm.min_free_kbytes == 128
    assert [z.high_wmark_pages() for z in mm.zones] == [8, 547]
    pa.init_per_zone_wmark_min(mm)
    assert mm.min_free_kbytes == 4091
