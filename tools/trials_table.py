#!/usr/bin/env python
"""``dgnet-trials-table`` from a clone (same options, ``--help``): a thin wrapper of
:mod:`dgnet_plugin.cli.trials_table`, the module the installed command runs."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dgnet_plugin.cli.trials_table import *  # noqa: E402,F403 (the tool's public functions)
from dgnet_plugin.cli.trials_table import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
