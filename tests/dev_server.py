"""`clipshoe dev` as the tests run it: the real command on a free loopback port over a
given data dir, awaited until its code location has loaded, stopped the way a user
or a service manager stops it (SIGTERM to `clipshoe dev` alone), with the check that
nothing it started is left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from clipshoe_common import PROJECT_ROOT

CLIPSHOE = Path(sys.executable).with_name("clipshoe")  # the console script `make dev` runs
LOCATION = "clipshoe"  # [tool.dg.project] code_location_name
# Loading the code location imports torch, open_clip and numba: tens of seconds on 2 busy cores.
STARTUP_TIMEOUT_S = 180
# Past clipshoe dev's own --shutdown-timeout (30 s), so a hung dg dev shows as killed, not as a timeout here.
STOP_TIMEOUT_S = 45

LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stopped:
    returncode: int | None  # None: clipshoe dev itself did not exit in time
    seconds: float
    leftovers: list[str]  # processes of its tree still running at the deadline (then killed)


@dataclass
class DevServer:
    process: subprocess.Popen
    url: str
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def graphql(self, query: str, timeout: float = 30) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", data=json.dumps({"query": query}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.load(response)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def wait_until_loaded(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until the webserver answers and our code location has loaded: /server_info
        answers before the location's definitions are in."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, f"clipshoe dev exited ({self.process.returncode}):\n{self.log_tail()}"
            try:
                entries = self.graphql(LOCATION_QUERY, timeout=10)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                entries = []
            entry = next((e for e in entries if e["name"] == LOCATION), None)
            if entry and entry["loadStatus"] == "LOADED":
                location = entry["locationOrLoadError"]
                assert location["__typename"] == "RepositoryLocation", location
                return
            assert time.monotonic() < deadline, f"no loaded {LOCATION} location in {timeout} s:\n{self.log_tail()}"
            time.sleep(1)

    def tree(self) -> list[psutil.Process]:
        """clipshoe dev and every process below it."""
        root = psutil.Process(self.process.pid)
        return [root, *root.children(recursive=True)]

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> Stopped:
        """SIGTERM to clipshoe dev only (dg dev runs in a session of its own, so this
        tests that the signal is passed on); then whatever of its tree outlives the
        timeout is reported and killed."""
        tree = self.tree()
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        _, alive = psutil.wait_procs(tree, timeout=max(0.0, started + timeout - time.monotonic()))
        seconds = time.monotonic() - started
        leftovers = [_describe(process) for process in alive]
        _kill(alive)
        self.kill()
        return Stopped(returncode, seconds, leftovers)

    def kill(self) -> None:
        """Everything of the tree, now: the backstop after a failed test. Once clipshoe
        dev is reaped its pid may be another process's, so only a running (or unreaped)
        one is followed down."""
        if self.process.poll() is None:
            _kill(self.tree())
            self.process.wait(timeout=30)


def start_dev(data_dir: Path, log: Path, *args: str) -> DevServer:
    """`clipshoe dev --port <free> *args` with its run history under `data_dir`, in a
    session of its own (so no signal meant for pytest reaches it), loaded."""
    port = free_port()
    env = {**os.environ, "CLIPSHOE_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / "dagster_home"),
           "PYTHONUNBUFFERED": "1"}
    # To a file, not a pipe: a pipe left to fill would block the server.
    with log.open("wb") as output:
        process = subprocess.Popen([str(CLIPSHOE), "dev", "--port", str(port), *args], cwd=PROJECT_ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    server = DevServer(process, f"http://127.0.0.1:{port}", log)
    try:
        server.wait_until_loaded()
    except BaseException:
        server.kill()
        raise
    return server


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:160]}"
    except psutil.Error:
        return str(process.pid)
