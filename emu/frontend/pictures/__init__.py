"""Pictures of physical memory (issue 16 part 3): the census drawn as a grid.

``terminal`` (Unicode/ANSI, no dependency), ``svg`` (written by kmemu, no
dependency), ``png`` (matplotlib, the optional ``plot`` extra); ``grid`` is
what they share: the cells, the colours and the legend with the census's
counts.  ``emu.frontend.plots`` draws a replay's timeline.
"""
