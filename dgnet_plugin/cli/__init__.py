"""The command-line tools. Each module is one console command of the installed package and
one script of ``tools/`` in a clone (same options):

========================  ==================================  ==============================
command                   module                              clone
========================  ==================================  ==============================
``dgnet-train``           :mod:`.train_net`                   ``tools/train_net.py``
``dgnet-generate``        :mod:`.generate`                    ``tools/generate.py``
``dgnet-leaderboard``     :mod:`.leaderboard`                 ``tools/leaderboard.py``
``dgnet-export``          :mod:`.export`                      ``tools/export.py``
``dgnet-generation-quality`` :mod:`.generation_quality`       ``tools/generation_quality.py``
``dgnet-trials-table``    :mod:`.trials_table`                ``tools/trials_table.py``
``dgnet-convert``         ``dgnet_plugin.methods.dgnet.convert_cli`` (DG-Net's official checkpoints)
========================  ==================================  ==============================

``python -m dgnet_plugin.train`` is ``dgnet-train``. ``--config-file`` takes a path or the
name of a packaged config (``dgnet_cuhk03_cpu_demo.yml``; see
:func:`dgnet_plugin.model_zoo.get_config_file`).
"""
