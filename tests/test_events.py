"""Progress bars that stay short in log files (utils.events.progress_bar)."""

import io
import time

from dgnet_plugin.utils.events import NON_TTY_MININTERVAL, progress_bar


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_in_a_file_refreshes_rarely():
    log = io.StringIO()  # not a terminal, like a redirected stderr
    bar = progress_bar(total=300, file=log, desc="train")
    assert bar.mininterval == NON_TTY_MININTERVAL
    for _ in range(300):  # 1.2 s: plain tqdm would write about 12 refreshes
        time.sleep(0.004)
        bar.update(1)
    bar.close()
    refreshes = log.getvalue().count("\r")
    assert 1 <= refreshes <= 3, log.getvalue()  # start and end, not one per update
    assert "300/300" in log.getvalue()


def test_progress_bar_on_a_terminal_keeps_tqdms_pace():
    term = FakeTerminal()
    bar = progress_bar(total=5, file=term)
    assert bar.mininterval == 0.1  # tqdm's default
    bar.close()
    assert progress_bar(total=5, file=io.StringIO(), mininterval=2.0).mininterval == 2.0
