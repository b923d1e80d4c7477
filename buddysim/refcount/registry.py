"""Refcount models and site tables by name: built-ins, entry-point plug-ins, ``module:Class``.

Third-party models register under the entry-point group ``buddysim.refcount_models``
(``name = "package.module:Class"``) or are named directly as ``module:Class`` on the command
line. A plug-in class subclasses :class:`~buddysim.refcount.page_ref.PageRefModel`; it may
bring its own site table as a class attribute ``SITE_TABLE`` (a
:class:`~buddysim.refcount.sites.SiteTable`). See docs/plugins.md.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from buddysim.refcount.baseline import Baseline
from buddysim.refcount.final import Final
from buddysim.refcount.inverted import Inverted
from buddysim.refcount.page_ref import PageRefModel
from buddysim.refcount.rfc import RFC
from buddysim.refcount.sites import SITE_TABLES, SiteTable
from buddysim.refcount.v1 import V1
from buddysim.refcount.v2 import V2
from buddysim.refcount.v3 import V3

__all__ = [
    "BUILTIN_MODELS",
    "ENTRY_POINT_GROUP",
    "ModelLookupError",
    "available_models",
    "broken_plugins",
    "get_model",
    "get_site_table",
]

ENTRY_POINT_GROUP = "buddysim.refcount_models"

BUILTIN_MODELS: dict[str, type[PageRefModel]] = {
    m.name: m for m in (Baseline, RFC, V1, V2, V3, Final, Inverted)
}


class ModelLookupError(LookupError):
    """A model or site table name that cannot be resolved (bad input: exit 2)."""


def _plugin_models() -> tuple[dict[str, type[PageRefModel]], dict[str, str]]:
    """Entry-point plug-ins that load, and the load error of each one that does not."""
    found: dict[str, type[PageRefModel]] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[ep.name] = _checked(ep.load(), f"entry point {ep.name!r}")
        except ModelLookupError as e:
            broken[ep.name] = str(e)
        except Exception as e:  # a broken third-party package must not take the CLI down
            broken[ep.name] = (
                f"refcount plug-in {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}"
            )
    return found, broken


def broken_plugins() -> dict[str, str]:
    """Entry-point plug-ins that fail to load, with why (``buddysim models`` shows them)."""
    return _plugin_models()[1]


def _checked(cls: object, origin: str) -> type[PageRefModel]:
    if not (isinstance(cls, type) and issubclass(cls, PageRefModel)):
        raise ModelLookupError(f"{origin} is not a PageRefModel subclass: {cls!r}")
    return cls


def available_models() -> dict[str, type[PageRefModel]]:
    """Every model by name: built-ins first, then entry-point plug-ins."""
    models = dict(BUILTIN_MODELS)
    for name, cls in _plugin_models()[0].items():
        models.setdefault(name, cls)
    return models


def get_model(spec: str) -> type[PageRefModel]:
    """Resolve ``spec``: a built-in or plug-in name, or ``module:Class``."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ModelLookupError(f"expected module:Class, got {spec!r}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ModelLookupError(f"cannot import refcount model module {module_name!r}: {e}") from e
        try:
            cls = getattr(module, attr)
        except AttributeError:
            raise ModelLookupError(f"module {module_name!r} has no attribute {attr!r}") from None
        return _checked(cls, spec)
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec]
    found, broken = _plugin_models()
    if spec in found:
        return found[spec]
    if spec in broken:
        raise ModelLookupError(broken[spec])
    models = {**BUILTIN_MODELS, **found}
    try:
        return models[spec]
    except KeyError:
        raise ModelLookupError(
            f"unknown refcount model {spec!r}; expected one of {', '.join(models)} or module:Class"
        ) from None


def get_site_table(spec: str) -> SiteTable:
    """A site table by name, or the default table of the model ``spec`` names."""
    if spec in SITE_TABLES:
        return SITE_TABLES[spec]
    cls = get_model(spec)
    own = getattr(cls, "SITE_TABLE", None)
    if isinstance(own, SiteTable):
        return own
    try:
        return SITE_TABLES[cls.default_sites]
    except KeyError:
        raise ModelLookupError(
            f"model {spec!r} names site table {cls.default_sites!r}, which does not exist"
        ) from None
