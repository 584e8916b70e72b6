"""`clipshoe dev` ends what it started. dg dev runs in a session of its own, so a
terminal's Ctrl-C or a `kill` reaches `clipshoe dev` alone: it must pass the signal on
to dg dev's whole process group, kill a group that does not stop in time, and leave
nothing behind. `supervise` is tested against a stand-in for dg dev (a process with a
child of its own), then `clipshoe dev` against the real dg dev."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from clipshoe_pipeline.cli import FORWARDED_SIGNALS
from tests.dev_server import start_dev

# The stand-in for dg dev: it starts a child (which keeps the default signal actions)
# and prints its pid; argv[1] says how it meets a signal. "obeys" stops as dg dev does,
# a signal raising KeyboardInterrupt and the services then waited for, so it exits only
# if the signal reached its child as well.
FAKE_DEV = r"""
import signal, subprocess, sys, time
mode = sys.argv[1]
handler = signal.SIG_IGN if mode == "ignores" else signal.default_int_handler
for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, handler)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(child.pid, flush=True)
if mode == "exits":
    sys.exit(3)
try:
    time.sleep(600)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    child.wait()
"""
SUPERVISE = ("import os, sys; from clipshoe_pipeline.cli import supervise; "
             "sys.exit(supervise(sys.argv[2:], cwd=os.getcwd(), env=dict(os.environ), "
             "shutdown_timeout=float(sys.argv[1])))")


@pytest.fixture
def supervised_fake(tmp_path) -> Iterator[Callable[[str, float], tuple[subprocess.Popen, list[psutil.Process]]]]:
    """Starts `supervise` running the stand-in and returns, once the stand-in's child is
    up, the supervisor and its tree (supervisor, stand-in, child); whatever of a tree
    still runs at teardown is killed, so a failing test leaves nothing behind."""
    trees: list[list[psutil.Process]] = []

    def start(mode: str, shutdown_timeout: float) -> tuple[subprocess.Popen, list[psutil.Process]]:
        out, err = tmp_path / "out.txt", tmp_path / "err.txt"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen([sys.executable, "-c", SUPERVISE, str(shutdown_timeout),
                                        sys.executable, "-c", FAKE_DEV, mode],
                                       stdout=stdout, stderr=stderr, start_new_session=True)
        trees.append([psutil.Process(process.pid)])
        deadline = time.monotonic() + 30
        while not out.read_text().strip():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        root, child = trees[-1][0], psutil.Process(int(out.read_text().split()[0]))
        # The child named too: in "exits" mode the stand-in may be gone, its child no longer below us.
        trees[-1] = list({each.pid: each for each in (root, *root.children(recursive=True), child)}.values())
        return process, trees[-1]

    yield start
    for tree in trees:
        still_running(tree, timeout=0)


def still_running(tree: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of `tree` not gone within `timeout`, killed."""
    _, alive = psutil.wait_procs(tree, timeout=timeout)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("signum", FORWARDED_SIGNALS, ids=lambda signum: signal.Signals(signum).name)
def test_a_signal_reaches_the_whole_group_and_sets_the_exit_status(supervised_fake, tmp_path, signum):
    process, tree = supervised_fake("obeys", shutdown_timeout=10)
    assert len(tree) == 3
    process.send_signal(signum)
    returncode = process.wait(timeout=30)
    assert "did not stop" not in (tmp_path / "err.txt").read_text(), "the child never got the signal"
    assert not still_running(tree, timeout=5)
    assert returncode == 128 + signum
    assert "interrupted" in (tmp_path / "out.txt").read_text()


def test_a_group_that_ignores_the_signal_is_killed_after_the_timeout(supervised_fake, tmp_path):
    process, tree = supervised_fake("ignores", shutdown_timeout=1)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    returncode = process.wait(timeout=20)
    assert time.monotonic() - started >= 1
    assert not still_running(tree, timeout=5)
    assert returncode == 128 + signal.SIGTERM
    assert "did not stop 1 s after SIGTERM" in (tmp_path / "err.txt").read_text()


def test_what_outlives_the_command_is_killed_and_its_exit_status_kept(supervised_fake):
    process, tree = supervised_fake("exits", shutdown_timeout=30)
    assert process.wait(timeout=20) == 3
    assert not still_running(tree, timeout=5), "the stand-in's child outlived it"


@pytest.mark.slow
def test_sigterm_stops_dg_dev_and_everything_it_started(tmp_path):
    server = start_dev(tmp_path / "data", tmp_path / "dev.log", "--products-per-site", "5")
    try:
        commands = [" ".join(process.cmdline()) for process in server.tree()]
        for service in ("dg dev", "dagster_webserver", "dagster._daemon", "dagster code-server"):
            assert any(service in command for command in commands), (service, commands)
        stopped = server.stop()
    finally:
        server.kill()
    assert stopped.leftovers == [], stopped
    assert stopped.returncode == 128 + signal.SIGTERM, server.log_tail()
    log = server.log_tail()
    assert "Dagster services shut down." in log and "did not stop" not in log, log
