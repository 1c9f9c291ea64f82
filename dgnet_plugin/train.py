"""``python -m dgnet_plugin.train`` = ``dgnet-train`` = ``tools/train_net.py``: train or
evaluate any method (:mod:`dgnet_plugin.cli.train_net`)."""

import sys

from .cli.train_net import cli

if __name__ == "__main__":
    sys.exit(cli())
