"""Layer 5: ``Machine.replay`` (the mixin; the work is in :mod:`emu.machine.replay`,
imported on first use so ``import emu`` stays light)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.kernel.tracetext import Trace
    from emu.machine.core import Machine
    from emu.machine.replay import ReplayResult


class ReplayMixin:
    """``Machine.replay`` (mixed into :class:`emu.Machine`)."""

    def replay(self: Machine, trace: str | Path | Iterable[str] | Trace,  # type: ignore[misc]
               *, batch: int = 4096, pages: bool = True, timeline: bool = True,
               count_ops: int | None = None, measure: bool = True,
               progress: Callable[[int, int, float], None] | None = None,
               census: bool = False) -> ReplayResult:
        """Replay a Linux kmem trace inside the guest and report on it: see
        :func:`emu.machine.replay.run_replay` and ``ReplayResult``."""
        from emu.machine.replay import run_replay

        kw = {} if count_ops is None else {"count_ops": count_ops}  # None: run_replay's default
        return run_replay(self, trace, batch=batch, pages=pages, timeline=timeline,
                          measure=measure, progress=progress, census=census, **kw)
