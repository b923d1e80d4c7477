"""Replay-based stepping: cut any refcount model's operation into the atomic steps it performs.

A kernel-level action (``folio_try_get``, ``folio_put``, ``page_ref_freeze``, a call-site
write, ...) is a deterministic Python function of a :class:`~buddysim.refcount.page_ref.PageRefModel`.
The stepper never looks inside a model: it subclasses the model class on the fly and wraps every
``atomic_*`` method, and it gives the model a storage whose word array is an object that sees
every read and write of the raw ``_refcount`` word. A *leaf* is one call of an ``atomic_*`` method that touches
the word itself (the innermost ``atomic_*`` frame at the time of the access): ``atomic_read``,
``atomic_cmpxchg``, ``atomic_add_return``, ``atomic_set``, a model's own ``atomic_or``... A
composite such as the base class's ``atomic_add_unless`` (a read, then a CAS loop) is not a leaf;
its inner calls are, so baseline's add-unless splits into a read and each CAS attempt by itself.

One step of a thread = one leaf performed for real on the shared word. To take it, the action is
re-run from its start: the leaves the thread already performed in this action are *replayed*
(their reads return the recorded values, their writes are dropped), the next leaf is performed
*live* and recorded, and the run goes on through the local code that follows until the next leaf
starts (the run is abandoned there with a private ``BaseException``) or the action returns (it
has completed; its return value feeds the thread's program). The log of recorded leaves is part
of the thread's state, so a step is a pure function of (action, log, word): it is memoised.

Simplified and assumed: the model is deterministic given the values it reads; a plain read of
the word outside any ``atomic_*`` method (the models do this only to fill in debug reports) sees
the current word and is not an interleaving point; a plain write outside them is a step of its
own. Reads made by debug checks inside ``atomic_*`` calls (v2/v3/final's ``_check_modify``) are
steps, as they are with CONFIG_DEBUG_VM=y. Only pfn 0 exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from buddysim.findings import Finding, VMBug
from buddysim.refcount.page_ref import DebugVM, PageRefModel, wrap32

__all__ = ["Leaf", "ModelNondeterminism", "StepOutcome", "Stepper", "fmt_word", "litmus_class"]

INT_MIN = -0x80000000


def fmt_word(v: int) -> str:
    """A raw word the way the spec's step tables write it: ``1``, ``0``, ``F``, ``F+1``, hex."""
    if 0 <= v < 1 << 20:
        return str(v)
    if v == INT_MIN:
        return "F"
    if INT_MIN < v < INT_MIN + (1 << 20):
        return f"F+{v - INT_MIN}"
    return f"{v & 0xFFFFFFFF:#010x}"


class ModelNondeterminism(RuntimeError):
    """Replaying a model's recorded reads did not retrace the same atomic operations."""


class _Pause(BaseException):
    """Abandons a run at the start of the leaf after the live one (never caught by models)."""


class Leaf(NamedTuple):
    """One recorded atomic operation: method, its arguments, the values it read, did it write."""

    name: str
    args: tuple[Any, ...]
    reads: tuple[int, ...]
    wrote: bool


class _Ctl:
    """Per-run bookkeeping shared by the wrapped ``atomic_*`` methods and the word proxy."""

    __slots__ = (
        "chain",
        "findings",
        "frames",
        "idx",
        "leaf",
        "live",
        "live_chain",
        "live_done",
        "live_leaf",
        "live_ret",
        "log",
        "nlog",
        "rec_reads",
        "replay",
        "word",
        "wrote",
    )

    def __init__(self) -> None:
        self.reset((), 0)

    def reset(self, log: tuple[Leaf, ...], word: int) -> None:
        self.log = log
        self.nlog = len(log)
        self.word = word
        self.idx = -1
        self.frames: list[list[Any]] = []
        self.leaf: list[Any] | None = None
        self.live = False
        self.live_done = False
        self.live_leaf: Leaf | None = None
        self.live_ret: Any = None
        self.live_chain: tuple[str, ...] = ()
        self.rec_reads: list[int] = []
        self.replay: list[int] = []
        self.wrote = False
        self.findings: list[Finding] = []

    # -- leaves ----------------------------------------------------------------------
    def _begin(self, frame: list[Any]) -> None:
        if self.live:
            self._finish_live()
        if self.live_done:
            raise _Pause
        self.idx += 1
        self.leaf = frame
        if self.idx < self.nlog:
            rec = self.log[self.idx]
            if rec.name != frame[0] or rec.args != frame[1]:
                raise ModelNondeterminism(
                    f"replay diverged at atomic step {self.idx + 1}: recorded {rec.name}{rec.args}, "
                    f"model now calls {frame[0]}{frame[1]}"
                )
            self.replay = list(reversed(rec.reads))
        else:
            self.live = True
            self.rec_reads = []
            self.live_chain = (*tuple(f[0] for f in self.frames if f is not frame), frame[0])

    def _finish_live(self) -> None:
        frame = self.leaf
        assert frame is not None
        self.live = False
        self.live_done = True
        self.live_leaf = Leaf(frame[0], frame[1], tuple(self.rec_reads), self.wrote)

    def pop(self, frame: list[Any], ret: Any) -> None:
        self.frames.pop()
        if frame is self.leaf:
            if self.live:
                self.live_ret = ret
                self._finish_live()
            self.leaf = None

    # -- word accesses ---------------------------------------------------------------
    def read(self) -> int:
        frame = self.frames[-1] if self.frames else None
        if frame is None:  # a plain read for a debug report: current value, not a step
            return self.word
        if frame is not self.leaf:
            self._begin(frame)
        if self.live:
            v = self.word
            self.rec_reads.append(v)
            return v
        if not self.replay:
            raise ModelNondeterminism(f"replay of {frame[0]}{frame[1]} reads more than it recorded")
        return self.replay.pop()

    def write(self, v: int) -> None:
        frame = self.frames[-1] if self.frames else None
        if frame is None:  # a plain store outside atomic_*: a step of its own
            frame = ["<store>", (0, v)]
            self.frames.append(frame)
            self._begin(frame)
            self.write(v)
            self.pop(frame, None)
            return
        if frame is not self.leaf:
            self._begin(frame)
        if self.live:
            self.word = wrap32(v)
            self.wrote = True

    def on_finding(self, finding: Finding) -> None:
        # Code between leaves runs again on every replay: keep only what the live part produced
        # (the segment after the live leaf, or the opening segment of the very first step).
        if self.live_done or (self.nlog == 0 and self.idx == -1):
            self.findings.append(finding)


class _Word:
    """Stands in for the model's ``_w`` memoryview: one page, every access seen by the ctl."""

    __slots__ = ("ctl",)

    def __init__(self, ctl: _Ctl) -> None:
        self.ctl = ctl

    def __getitem__(self, pfn: int) -> int:
        if pfn != 0:
            raise IndexError(f"litmus models have one page (pfn 0), model touched pfn {pfn}")
        return self.ctl.read()

    def __setitem__(self, pfn: int, v: int) -> None:
        if pfn != 0:
            raise IndexError(f"litmus models have one page (pfn 0), model touched pfn {pfn}")
        self.ctl.write(v)


class _WordStorage:
    """A RefcountStorage whose ``refcount`` array is the intercepting :class:`_Word`."""

    def __init__(self, ctl: _Ctl) -> None:
        self.refcount = _Word(ctl)

    def compound_head(self, pfn: int) -> int:
        return pfn


def _wrap(name: str, orig: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: Any, *args: Any) -> Any:
        ctl: _Ctl | None = self.__dict__.get("_litmus_ctl")
        if ctl is None:  # an instance the model made for itself (e.g. frozen_setter_raw's scratch)
            return orig(self, *args)
        frame = [name, args]
        ctl.frames.append(frame)
        ret = orig(self, *args)
        ctl.pop(frame, ret)
        return ret

    wrapper.__name__ = name
    wrapper.__qualname__ = f"litmus.{name}"
    wrapper.__doc__ = orig.__doc__
    return wrapper


_CLASSES: dict[type[PageRefModel], type[PageRefModel]] = {}


def litmus_class(model_cls: type[PageRefModel]) -> type[PageRefModel]:
    """``model_cls`` with every ``atomic_*`` method wrapped (built once per class)."""
    cls = _CLASSES.get(model_cls)
    if cls is None:
        ns: dict[str, Any] = {}
        for attr in dir(model_cls):
            if attr.startswith("atomic_"):
                fn = getattr(model_cls, attr)
                if callable(fn):
                    ns[attr] = _wrap(attr, fn)
        ns["__doc__"] = f"{model_cls.__name__} with its atomic_* primitives intercepted (litmus)."
        ns["__module__"] = __name__
        cls = type(f"Litmus{model_cls.__name__}", (model_cls,), ns)
        _CLASSES[model_cls] = cls
    return cls


class StepOutcome(NamedTuple):
    """What one step did.

    ``done``: the action returned (``result`` is its value) or oopsed (``bug`` says where);
    ``log``: the action's leaves so far (empty once done); ``raw``: the word after the step;
    ``leaf``: the live leaf (None if the action completed without touching the word);
    ``chain``: the atomic_* frames around the live leaf, outermost first; ``ret``: what the
    live leaf returned; ``findings``: debug checks that fired in the live part.
    """

    done: bool
    result: Any
    log: tuple[Leaf, ...]
    raw: int
    leaf: Leaf | None
    chain: tuple[str, ...]
    ret: Any
    findings: tuple[str, ...]
    bug: str | None


class Stepper:
    """Takes one atomic step of an action on one model instance; memoised on (action, log, word).

    ``run_action(model, call)`` is how an action is executed (the program layer supplies it).
    """

    def __init__(
        self,
        model_cls: type[PageRefModel],
        run_action: Callable[[PageRefModel, Any], Any],
        debug_vm: DebugVM | str = DebugVM.OFF,
    ) -> None:
        self.model_cls = model_cls
        self._run_action = run_action
        self._ctl = _Ctl()
        self.model = litmus_class(model_cls)(
            _WordStorage(self._ctl), debug_vm=debug_vm, report=self._ctl.on_finding
        )
        self.model.__dict__["_litmus_ctl"] = self._ctl
        self._memo: dict[tuple[object, tuple[Leaf, ...], int], StepOutcome] = {}
        self.runs = 0

    def step(self, call: object, log: tuple[Leaf, ...], raw: int) -> StepOutcome:
        """Advance ``call`` (whose leaves so far are ``log``) by one atomic step on word ``raw``."""
        key = (call, log, raw)
        out = self._memo.get(key)
        if out is None:
            out = self._memo[key] = self._step(call, log, raw)
        return out

    def _step(self, call: object, log: tuple[Leaf, ...], raw: int) -> StepOutcome:
        ctl = self._ctl
        ctl.reset(log, raw)
        self.model._warned = set()  # WARN_ONCE state must not leak between runs
        self.runs += 1
        done = True
        result: Any = None
        bug: str | None = None
        try:
            result = self._run_action(self.model, call)
        except _Pause:
            done = False
        except VMBug as e:
            bug = _describe(e.finding)
        if done and ctl.live:  # defensive: a leaf still open when the action returned
            ctl._finish_live()
        if done and bug is None and ctl.nlog and not ctl.live_done:
            raise ModelNondeterminism(
                f"action completed during replay after {ctl.idx + 1} of {ctl.nlog} recorded steps"
            )
        new_log: tuple[Leaf, ...] = ()
        if not done:
            assert ctl.live_leaf is not None
            new_log = (*log, ctl.live_leaf)
        return StepOutcome(
            done=done,
            result=result,
            log=new_log,
            raw=ctl.word,
            leaf=ctl.live_leaf,
            chain=ctl.live_chain if ctl.live_leaf is not None else (),
            ret=ctl.live_ret,
            findings=tuple(_describe(f) for f in ctl.findings),
            bug=bug,
        )


def _describe(f: Finding) -> str:
    return f"{f.check} in {f.function}"
