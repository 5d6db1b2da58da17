"""Every remote read is bounded: storage that stops answering after the dataset was opened gives,
for each kind of read lakedet makes (masks, start-up annotation chunks, images, commits, saved
views, queries), an error naming the URL and what was read, within the bound."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(240)


class _Never:
    def is_completed(self):
        return False

    def cancel(self):
        self.cancelled = True


def test_wait_gives_up_at_the_deadline_with_a_message_naming_the_read():
    from lakedet.source.deadline import wait
    from lakedet.errors import ReadTimeout, SourceTimeout

    future = _Never()
    started = time.monotonic()
    with pytest.raises(ReadTimeout, match=r"row 3 of 's3://b/ds': the read did not finish within 0.2 s "
                                          r"\(LAKEDET_READ_TIMEOUT\)"):
        wait(future, "row 3 of 's3://b/ds'", 0.2)
    assert 0.2 <= time.monotonic() - started < 2 and future.cancelled
    with pytest.raises(SourceTimeout, match="LAKEDET_OPEN_TIMEOUT"):
        wait(_Never(), "opening", 0.1, error=SourceTimeout, setting="LAKEDET_OPEN_TIMEOUT")


@pytest.mark.remote
@pytest.mark.slow
def test_every_remote_read_is_bounded_when_storage_stops_answering(s3_server, tmp_path):
    url = "s3://lakedet/stalls"
    # written from a subprocess, so no Deep Lake I/O thread of this process talks to the server
    # (an older commit than the head: opening the head needs no request)
    commit = subprocess.run(
        [sys.executable, "-c", "import sys, json; from lakedet.tools.synthetic import make_shapes_dataset; "
         "ds, _ = make_shapes_dataset(sys.argv[1], 12, size=64, seed=2, min_side=12, max_side=30, "
         "masks='polygon', creds=json.loads(sys.argv[2])); first = ds.version; "
         "ds.query('SELECT * WHERE ROW_NUMBER() < 4').tag('some'); ds.add_column('score', 'float32'); "
         "ds['score'][0:12] = list(range(12)); ds.commit('second'); print(first)", url, json.dumps(s3_server)],
        check=True, timeout=120, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    out = subprocess.run([sys.executable, str(Path(__file__).parent / "remote_stalls.py"), url, json.dumps(s3_server),
                          commit], capture_output=True, text=True, timeout=150)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(results) == {"masks", "annotations", "image", "version.open", "tag.open", "query"}
    for read, (kind, message, seconds) in results.items():
        assert seconds < 3 + 2, (read, seconds)  # the bound (3 s here; 20 s / 25 s by default) and no more
        if kind == "no error" and read in ("version.open", "tag.open"):
            continue  # Deep Lake had what it needed from the open (the history): no request, nothing to bound
        assert kind in ("ReadTimeout", "SourceTimeout"), (read, kind, message)
        assert url in message, (read, message)
    assert "row 5, column 'polygons'" in results["masks"][1]
    assert "column 'boxes'" in results["annotations"][1] and "rows 0-11" in results["annotations"][1]
    assert "row 6, column 'images'" in results["image"][1]
    if results["version.open"][0] != "no error":
        assert commit in results["version.open"][1] and "LAKEDET_OPEN_TIMEOUT" in results["version.open"][1]
    if results["tag.open"][0] != "no error":
        assert "deeplake_view_id='some'" in results["tag.open"][1]
    assert "deeplake_query=" in results["query"][1] and "LAKEDET_OPEN_TIMEOUT" in results["query"][1]
