"""``python -m emu`` is the ``kmemu`` command."""

import sys

from emu.cli import main

sys.exit(main())
