"""``python -m emu`` is the ``kmemu`` command."""

import sys

from emu.frontend.cli import main

sys.exit(main())
