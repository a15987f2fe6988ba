"""matplotlib, the optional ``plot`` extra, imported on first use.

Only PNG maps and the replay plots need it; the terminal and SVG maps do not.
"""

from __future__ import annotations

from types import ModuleType

from emu.core.errors import PlotUnavailable

INSTALL_HINT = "pip install 'kmemu[plot]'"


def pyplot(what: str) -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), or a
    one-line :class:`PlotUnavailable` naming what needed it."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailable(f"{what} needs matplotlib, which is not installed: "
                              f"{INSTALL_HINT}") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt
