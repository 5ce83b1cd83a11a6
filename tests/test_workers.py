"""forked_map: short work shared with forks of this process, the results in order as a plain map gives them."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from sparsebench.workers import forked_map

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks are used on Linux only")
_set_up_here = {"flag": False}
HERE = os.getpid()  # the test process: what goes wrong below goes wrong in forks only


def _square_where(x: int) -> tuple[int, int, bool]:
    return x * x, os.getpid(), _set_up_here["flag"]


def _set_up() -> None:
    _set_up_here["flag"] = True


def _fails_in_a_fork(x: int) -> int:
    if os.getpid() != HERE:
        raise ValueError(f"not here: {x}")
    return x


def _killed_in_a_fork(x: int) -> int:
    if os.getpid() != HERE:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_results_in_order_computed_here_and_in_forks():
    results = forked_map(_square_where, list(range(7)), 3, initializer=_set_up)
    assert [value for value, _, _ in results] == [0, 1, 4, 9, 16, 25, 36]
    pids = {pid for _, pid, _ in results}
    assert os.getpid() in pids and len(pids) == 3
    # The initializer ran in the forks only: this process's state is its own.
    assert all(flag == (pid != os.getpid()) for _, pid, flag in results)
    assert _set_up_here["flag"] is False


def test_one_process_is_a_plain_map_here():
    assert forked_map(_square_where, [2, 5], 1) == [(4, os.getpid(), False), (25, os.getpid(), False)]


def test_an_error_in_a_fork_is_raised_here_with_its_traceback():
    with pytest.raises(RuntimeError, match=r"(?s)forked worker raised.*ValueError: not here: "):
        forked_map(_fails_in_a_fork, list(range(6)), 2)


def test_a_fork_killed_under_its_work_is_named():
    with pytest.raises(RuntimeError, match="ended without a result \\(killed by signal 9\\)"):
        forked_map(_killed_in_a_fork, list(range(6)), 2)
