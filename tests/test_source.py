import deeplake
import numpy as np
import pytest

from lakedet.errors import ConfigError, SourceError
from lakedet.source import SourceSpec, open_source

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def versioned(tmp_path):
    """A dataset with two commits (2 rows, then 3), a saved view of row 0 and its commit ids."""
    path = str(tmp_path / "v")
    ds = deeplake.create(path)
    ds.add_column("x", deeplake.types.Array("int32", dimensions=1))
    ds.append({"x": [np.array([1]), np.array([2])]})
    ds.commit("two rows")
    first = ds.version
    ds.append({"x": [np.array([3])]})
    ds.commit("three rows")
    ds.query("SELECT * WHERE ROW_NUMBER() = 0").tag("first_row")
    return path, first


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_opens_local_paths_read_only(versioned, prefix):
    path, _ = versioned
    ds = open_source(SourceSpec(prefix + path))
    assert len(ds) == 3
    with pytest.raises(Exception):
        ds.append({"x": [np.array([4])]})


def test_opens_mem_datasets():
    ds = deeplake.create("mem://lakedet-source-test")
    ds.add_column("x", deeplake.types.Array("int32", dimensions=1))
    ds.append({"x": [np.array([7])]})
    ds.commit()
    opened = open_source(SourceSpec("mem://lakedet-source-test"))  # keep it: columns don't hold it
    assert opened["x"][0].tolist() == [7]


def test_commit_view_and_query_select_rows(versioned):
    path, first = versioned
    assert len(open_source(SourceSpec(path, commit=first))) == 2
    view = open_source(SourceSpec(path, view="first_row"))
    assert [np.asarray(r).tolist() for r in view["x"][:]] == [[1]]
    assert len(open_source(SourceSpec(path, query="SELECT * WHERE ROW_NUMBER() >= 1"))) == 2


def test_empty_strings_mean_not_set(versioned):
    path, _ = versioned
    assert len(open_source(SourceSpec(path, token="", commit="", view="", query=""))) == 3


def test_errors_name_the_problem(versioned, tmp_path):
    path, first = versioned
    with pytest.raises(SourceError, match="deeplake_path=.*nothing-here"):
        open_source(SourceSpec(str(tmp_path / "nothing-here")))
    with pytest.raises(SourceError) as err:
        open_source(SourceSpec(path, commit="0000000099m00000000"))
    assert "0000000099m00000000" in str(err.value) and first in str(err.value) and "three rows" in str(err.value)
    with pytest.raises(SourceError, match=r"saved views: \['first_row'\]"):
        open_source(SourceSpec(path, view="frist_row"))
    with pytest.raises(SourceError, match="deeplake_query"):
        open_source(SourceSpec(path, query="SELECT * WHERE nope > 1"))
    with pytest.raises(ConfigError, match="both set"):
        SourceSpec(path, view="first_row", query="SELECT *")


def test_remote_paths_without_credentials_fail_before_any_network_wait(monkeypatch, tmp_path):
    import time

    for var in ("ACTIVELOOP_TOKEN", "DEEPLAKE_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_PROFILE",
                "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aws/credentials
    started = time.monotonic()
    with pytest.raises(SourceError, match="hub://org/ds.*token.*ACTIVELOOP_TOKEN"):
        open_source(SourceSpec("hub://org/ds"))
    with pytest.raises(SourceError, match="s3://bucket/ds.*no credentials.*aws_access_key_id"):
        open_source(SourceSpec("s3://bucket/ds"))
    with pytest.raises(SourceError, match="gs://bucket/ds.*no credentials"):
        open_source(SourceSpec("gs://bucket/ds", token=""))
    assert time.monotonic() - started < 2


def test_a_remote_open_that_stalls_is_bounded(tmp_path):
    """A server that accepts connections and never answers: the command gives up after the timeout.

    Run in a subprocess: Deep Lake's native threads keep waiting on the dead server after the
    open is cancelled, so the command leaves with os._exit (see lakedet.cli).
    """
    import os
    import socket
    import subprocess
    import sys
    import threading
    import time

    from conftest import CONFIG_DIR

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held = []

    def accept_forever():
        while True:
            try:
                held.append(server.accept())
            except OSError:
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    config = tmp_path / "stall.py"
    config.write_text(f"_base_ = {str(CONFIG_DIR / 'tiny_retinanet.py')!r}\n"
                      "train_dataloader = dict(dataset=dict(deeplake_path='s3://stall/ds', deeplake_credentials="
                      "dict(creds=dict(aws_access_key_id='k', aws_secret_access_key='s', "
                      f"endpoint_url='http://127.0.0.1:{server.getsockname()[1]}'))))\n")
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "lakedet", "train", str(config), "--work-dir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, LAKEDET_OPEN_TIMEOUT="3"))
    elapsed = time.monotonic() - started
    server.close()
    assert out.returncode == 2, out.stderr[-2000:]
    assert "s3://stall/ds" in out.stderr and "did not finish within 3 s" in out.stderr
    assert elapsed < 30
