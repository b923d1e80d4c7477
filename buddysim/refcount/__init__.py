"""Page refcount models: include/linux/page_ref.h for every version of the frozen-bit series."""

from buddysim.refcount.page_ref import (
    GUP_PIN_COUNTING_BIAS,
    DebugVM,
    ListStorage,
    PageRefModel,
    PageRefTrace,
)
from buddysim.refcount.registry import available_models, get_model, get_site_table
from buddysim.refcount.sites import SITE_TABLES, SITES, SiteTable, apply_site, apply_site_range

__all__ = [
    "GUP_PIN_COUNTING_BIAS",
    "SITES",
    "SITE_TABLES",
    "DebugVM",
    "ListStorage",
    "PageRefModel",
    "PageRefTrace",
    "SiteTable",
    "apply_site",
    "apply_site_range",
    "available_models",
    "get_model",
    "get_site_table",
]
