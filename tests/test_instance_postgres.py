"""The production instance template (deploy/dagster.postgres.yaml) works against a real
PostgreSQL server: a materialization is written to the database and read back by another
process, and the template carries the local default's limits.

A typo in the template, a dagster-postgres not paired with dagster, or a database URL
scheme SQLAlchemy resolves to a driver that is not installed shows up only when an
instance connects, so this test starts a PostgreSQL server of its own (Debian's
`postgresql` package; `.ci/run` installs it).
"""

import glob
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
import yaml

from clipshoe_common import PROJECT_ROOT
from clipshoe_pipeline.paths import _DAGSTER_YAML

TEMPLATE = PROJECT_ROOT / "deploy" / "dagster.postgres.yaml"
DB_NAME = "clipshoe_dagster"
DB_USER = "clipshoe"
# Characters a URL must quote, so the password reaches the server only if dagster-postgres
# quotes it.
DB_PASSWORD = "p@ss:w/rd"


@dataclass(frozen=True)
class Server:
    port: int

    def env(self) -> dict[str, str]:
        """The template's variables, pointing at this server."""
        return {"CLIPSHOE_PG_HOST": "127.0.0.1", "CLIPSHOE_PG_PORT": str(self.port),
                "CLIPSHOE_PG_USER": DB_USER, "CLIPSHOE_PG_PASSWORD": DB_PASSWORD, "CLIPSHOE_PG_DB": DB_NAME}

    def connect(self, db_name: str = DB_NAME):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_USER, password=DB_PASSWORD,
                                dbname=db_name)


def _unavailable(reason: str) -> None:
    """Skip on a developer's machine; fail in CI, where a missing install must be seen."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: see .ci/run and pyproject.toml)")
    pytest.skip(reason)


def _postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: Debian keeps them off PATH, one folder per version."""
    if initdb := shutil.which("initdb"):
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres() -> Iterator[Server]:
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    if importlib.util.find_spec("dagster_postgres") is None:  # what `storage: postgres` loads
        _unavailable("dagster-postgres is not installed (pip install -e '.[dev]')")
    # initdb and postgres refuse to run as root.
    user = None
    if os.geteuid() == 0:
        user = "postgres" if "postgres" in {entry.pw_name for entry in pwd.getpwall()} else "nobody"
    as_user = ["runuser", "-u", user, "--"] if user else []
    # Not pytest's tmp_path: its parent is private to root, and the server's user must reach it.
    with tempfile.TemporaryDirectory(prefix="clipshoe-pg-") as scratch:
        scratch = Path(scratch)
        (scratch / "password").write_text(DB_PASSWORD)
        if user:
            for path in (scratch, scratch / "password"):
                shutil.chown(path, user=user)
        data, log = scratch / "data", scratch / "server.log"
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER,
                        f"--pwfile={scratch / 'password'}", "--auth-local=trust",
                        "--auth-host=scram-sha-256", "--no-sync", "--locale=C", "-E", "UTF8"],
                       check=True, stdout=subprocess.DEVNULL)
        server = Server(_free_port())
        options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {scratch} -c fsync=off"
        try:
            started = subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log),
                                      "-o", options, "-w", "-t", "30", "start"], stdout=subprocess.DEVNULL)
            assert started.returncode == 0, log.read_text() if log.exists() else "pg_ctl start failed"
            with closing(server.connect("postgres")) as admin:
                admin.autocommit = True  # CREATE DATABASE cannot run in a transaction
                admin.cursor().execute(f"CREATE DATABASE {DB_NAME}")
            yield server
        finally:
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_the_template_carries_the_local_defaults_limits():
    local = yaml.safe_load(_DAGSTER_YAML.format(home="/unused"))
    production = yaml.safe_load(TEMPLATE.read_text())
    assert "postgres" in production["storage"]
    assert {key: value for key, value in production.items() if key != "storage"} == \
        {key: value for key, value in local.items() if key != "storage"}


READ_BACK = """
import dagster as dg
with dg.DagsterInstance.get() as instance:
    event = instance.get_latest_materialization_event(dg.AssetKey("shoe_pairs"))
    print(event.run_id, event.asset_materialization.metadata["pairs"].value)
"""


@pytest.mark.slow
def test_a_materialization_is_kept_in_postgres(postgres, tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(TEMPLATE, home / "dagster.yaml")
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    @dg.asset
    def shoe_pairs() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"pairs": 3})

    with dg.DagsterInstance.from_config(str(home)) as instance:
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == 1
        assert concurrency.run_queue_config.tag_concurrency_limits == \
            [{"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
        assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
        result = dg.materialize([shoe_pairs], instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(dg.AssetKey("shoe_pairs"))
        assert (event.run_id, event.asset_materialization.metadata["pairs"].value) == (result.run_id, 3)

    # A second process finds the run only if it is in the database, not in this one's memory.
    read_back = subprocess.run([sys.executable, "-c", READ_BACK], check=True, capture_output=True, text=True,
                               cwd=tmp_path)
    assert read_back.stdout.split() == [result.run_id, "3"]

    with closing(postgres.connect()) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,))
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
                       (result.run_id, "ASSET_MATERIALIZATION"))
        assert cursor.fetchone() == (1,)
