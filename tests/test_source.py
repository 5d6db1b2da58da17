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
    with pytest.raises(ConfigError, match="both set"):  # on Deep Lake 4 data (a v3 query runs over the view)
        open_source(SourceSpec(path, view="first_row", query="SELECT *"))


def test_no_credentials_are_refused_before_the_sdk_chain_is_asked(monkeypatch, tmp_path):
    """Credentials may come from anywhere the cloud SDK looks (instance roles, SSO profiles, files
    outside ~/.aws): nothing is refused up front (the S3 chain itself is tested in test_remote.py)."""
    for var in ("ACTIVELOOP_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for path in ("hub://org/ds", "s3://bucket/ds", "gs://bucket/ds", "az://account/ds"):
        assert SourceSpec.from_keys(deeplake_path=path).creds is None  # no exception
    with pytest.raises(ConfigError, match="deeplake_credentials\\['creds'\\] must be a dict"):
        SourceSpec("s3://bucket/ds", creds=["aws_access_key_id=x"])


def test_source_spec_repr_shows_no_secret():
    spec = SourceSpec("s3://bucket/ds", token="tok-SECRET", creds=dict(aws_secret_access_key="key-SECRET",
                                                                        endpoint_url="http://127.0.0.1:1"))
    assert "SECRET" not in repr(spec) and "SECRET" not in str(spec) and "s3://bucket/ds" in repr(spec)


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



_OPEN_IN_A_SUBPROCESS = """
import importlib.util, json, os, sys, time, types
# load lakedet.source.open without lakedet/__init__.py, which imports MMDetection (seconds per process)
package = types.ModuleType("lakedet")
package.__path__ = list(importlib.util.find_spec("lakedet").submodule_search_locations)
sys.modules["lakedet"] = package
from lakedet.errors import SourceError
from lakedet.source import SourceSpec, open_source
started = time.monotonic()
try:
    open_source(SourceSpec(sys.argv[1], token=sys.argv[2]))
    result = dict(type=None, error=None)
except SourceError as exc:
    result = dict(type=type(exc).__name__, error=str(exc))
result["seconds"] = time.monotonic() - started
print(json.dumps(result), flush=True)
os._exit(0)  # Deep Lake's native threads may still wait on the network after a cancelled open
"""


@pytest.fixture(scope="module")
def token_opens():
    """``open_source`` of hub:// / al:// paths with a token, each in a fresh interpreter, all at once.

    Keys: ``silent-hub`` / ``silent-al``: through a proxy that accepts connections and never answers
    (a dead network), LAKEDET_OPEN_TIMEOUT=3; ``refused``: through a proxy port where every
    connection is refused; ``plain``: this machine's own network (none in the sandbox, internet on CI).
    Values: ``{type, error, seconds}`` (the SourceError's class name and message, time to fail).
    """
    import json
    import os
    import socket
    import subprocess
    import sys
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    held = []

    def accept_forever():
        while True:
            try:
                held.append(silent.accept())
            except OSError:
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    refusing = socket.socket()  # bound, never listening: every connection to it is refused
    refusing.bind(("127.0.0.1", 0))
    silent_url, refused_url = (f"http://127.0.0.1:{s.getsockname()[1]}" for s in (silent, refusing))
    proxies = ("https_proxy", "http_proxy", "all_proxy", "no_proxy")
    base = {k: v for k, v in os.environ.items() if k.lower() not in proxies}
    silent_env = dict(https_proxy=silent_url, HTTPS_PROXY=silent_url, LAKEDET_OPEN_TIMEOUT="3")
    runs = {
        "silent-hub": ("hub://lakedet-test/none", silent_env),
        "silent-al": ("al://lakedet-test/none", silent_env),
        "refused": ("hub://lakedet-test/none", dict(https_proxy=refused_url, HTTPS_PROXY=refused_url)),
        "plain": ("hub://lakedet-test/none", dict(LAKEDET_OPEN_TIMEOUT="20")),
    }
    procs = {name: subprocess.Popen([sys.executable, "-c", _OPEN_IN_A_SUBPROCESS, path, "not-a-real-token"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(base, **env))
             for name, (path, env) in runs.items()}
    results = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err[-2000:]
            results[name] = json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
        silent.close()
        refusing.close()
    return results


@pytest.mark.parametrize("scheme", ["hub", "al"])
def test_a_token_but_a_network_that_never_answers_is_bounded(token_opens, scheme):
    result = token_opens[f"silent-{scheme}"]
    assert result["type"] == "SourceTimeout", result
    assert f"deeplake_path='{scheme}://lakedet-test/none'" in result["error"], result
    assert "did not finish within 3 s" in result["error"] and "LAKEDET_OPEN_TIMEOUT" in result["error"]
    assert result["seconds"] < 6


def test_a_token_but_no_route_to_the_api_is_a_clear_error_at_once(token_opens):
    result = token_opens["refused"]
    assert result["type"] == "SourceError", result
    assert ("deeplake_path='hub://lakedet-test/none': cannot reach the Deep Lake API" in result["error"]
            and "HTTPS_PROXY" in result["error"]), result
    assert result["seconds"] < 5


def test_a_fake_token_fails_clearly_with_or_without_internet(token_opens):
    """Offline: the API cannot be reached; online (CI): the token is refused. Either way: fast, clear."""
    result = token_opens["plain"]
    assert result["type"] in ("SourceError", "SourceTimeout"), result
    assert "deeplake_path='hub://lakedet-test/none'" in result["error"], result
    assert result["seconds"] < 25


@pytest.mark.parametrize("path, deeplake_says, expected", [
    # Deep Lake 4.7's text after ~43 s of retries when nothing listens at endpoint_url
    ("s3://b/ds", "[S3] Network connection error: action=ListObjectsV2 resource=_deeplake_log/_meta/ status=-1 "
     "code=unknown message=curlCode: 7, Could not connect to server",
     "deeplake_path='s3://b/ds': cannot reach the storage server at endpoint_url='http://127.0.0.1:1'; check "
     "the network connection, proxy settings (HTTPS_PROXY) and, for an S3-compatible server, "
     "deeplake_credentials['creds']['endpoint_url']"),
    ("gs://b/ds", "status=403 code=AccessDenied message=denied",
     "deeplake_path='gs://b/ds': the server refused the credentials at endpoint_url='http://127.0.0.1:1'; check "
     "deeplake_credentials['creds'] (a Google service account with read access to the bucket)"),
    ("hub://org/ds", "Method failed: GET message: 401 Unauthorized",
     "deeplake_path='hub://org/ds': the Deep Lake API token was refused; set deeplake_credentials['token']"),
], ids=["s3-unreachable", "gs-refused", "hub-token-refused"])
def test_open_failures_are_explained_without_secrets(path, deeplake_says, expected):
    from lakedet.source.remote import explain_open_failure

    creds = dict(aws_access_key_id="AK", aws_secret_access_key="s3cr3t-value", endpoint_url="http://127.0.0.1:1")
    message = explain_open_failure(SourceSpec(path, token="t0ken-value", creds=creds), RuntimeError(deeplake_says))
    assert message.startswith(expected) and deeplake_says.split(":")[0] in message, message
    assert "s3cr3t-value" not in message and "t0ken-value" not in message
