"""The supervisor's restart policy, on real (short-lived) processes."""

from __future__ import annotations

import subprocess
import sys

from skiff_cli.supervisor import MAX_BACKOFF_S, STABLE_S, Child, backoff_s


def exits(code: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])


def test_the_backoff_doubles_from_one_second_to_thirty() -> None:
    assert [backoff_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, MAX_BACKOFF_S, MAX_BACKOFF_S]


def test_a_process_that_keeps_dying_waits_longer_each_time_and_each_restart_counts() -> None:
    child = Child("crashing", lambda: exits(3))
    child.start(now=0.0)
    assert child.process is not None
    child.process.wait()

    assert child.tick(now=0.5)  # noticed dead: restarts after the first backoff
    assert (child.pid, child.restarts, child.due) == (None, 0, 1.5)
    assert child.last_exit.startswith("exit 3 at ")
    assert not child.tick(now=1.0)  # not due yet
    assert child.tick(now=1.5) and child.restarts == 1 and child.pid is not None
    assert child.process is not None
    child.process.wait()
    assert child.tick(now=2.0) and child.due == 4.0  # died again at once: twice the wait


def test_a_process_that_stayed_up_a_while_starts_its_backoff_over() -> None:
    child = Child("steady", lambda: exits(0), failures=4)
    child.start(now=0.0)
    assert child.process is not None
    child.process.wait()
    assert child.tick(now=STABLE_S + 1)
    assert child.due == STABLE_S + 1 + backoff_s(1)
