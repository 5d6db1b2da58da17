"""Run by test_v3.py in its own process: a Deep Lake 3 dataset on S3 behind a proxy that stops
answering. Opening and reading must fail within their bounds (LAKEDET_OPEN_TIMEOUT,
LAKEDET_READ_TIMEOUT), naming the URL. Prints one JSON line; exits without waiting for Deep
Lake's I/O threads (they may still wait on the paused proxy).

    python v3_stalls.py URL ENDPOINT CREDS_JSON
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import ThreadedProxy  # noqa: E402

url, endpoint, creds = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
proxy = ThreadedProxy(endpoint)
creds["endpoint_url"] = proxy.endpoint
from lakedet.data.reader import ImageReader  # noqa: E402
from lakedet.source import SourceSpec, open_source  # noqa: E402

result = {}
view = open_source(SourceSpec(url, creds=creds, view="dogs"))  # reachable: opens
reader = ImageReader(view, "images", True, url, remote=True, timeout=2)
result["read_before"] = len(reader.read(1))
proxy.paused = True
for name, call in (("read", lambda: reader.read(2)),
                   ("open", lambda: open_source(SourceSpec(url, creds=creds, commit="relabel")))):
    started = time.monotonic()
    try:
        call()
        result[name] = "finished"
    except Exception as exc:
        result[name] = f"{type(exc).__name__}: {exc}"
    result[name + "_s"] = time.monotonic() - started
print(json.dumps(result), flush=True)
os._exit(0)
