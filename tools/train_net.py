#!/usr/bin/env python
"""``dgnet-train`` from a clone (same options, ``--help``): a thin wrapper of
:mod:`dgnet_plugin.cli.train_net`, the module the installed command runs."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dgnet_plugin.cli.train_net import *  # noqa: E402,F403 (the tool's public functions)
from dgnet_plugin.cli.train_net import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli())
