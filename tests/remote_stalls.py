"""Run by test_deadline.py in its own process: storage that stops answering after a dataset was
opened, and each kind of remote read lakedet makes then. Prints one JSON line: for each read, the
error type, its message and the seconds it took. The process leaves with os._exit: Deep Lake's
native threads still wait on the stalled proxy."""

import json
import os
import sys
import time

import numpy as np

os.environ["LAKEDET_READ_TIMEOUT"] = os.environ["LAKEDET_OPEN_TIMEOUT"] = "3"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import ThreadedProxy  # noqa: E402


def main(url: str, creds: dict, commit: str) -> dict:
    from lakedet.data.annotations import read_annotations
    from lakedet.data.dataset import DeepLakeDetDataset
    from lakedet.source import SourceSpec, open_source
    from lakedet.source.deeplake4 import open_deeplake4
    from lakedet.source.tql import run_query

    proxy = ThreadedProxy(creds["endpoint_url"])
    via = dict(creds, endpoint_url=proxy.endpoint)
    pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
                dict(type="PackDetInputs")]
    dataset = DeepLakeDetDataset(deeplake_path=url, deeplake_credentials=dict(creds=via), pipeline=pipeline)
    at_commit = SourceSpec(url, creds=via, commit=commit)
    view = SourceSpec(url, creds=via, view="some")
    query = SourceSpec(url, creds=via, query="SELECT * WHERE score > 5.5")  # a column nothing read yet
    fresh = open_source(SourceSpec(url, creds=via))  # its annotation columns not read yet
    proxy.paused = True
    results = {}

    def timed(name, call):
        started = time.monotonic()
        try:
            call()
            results[name] = ["no error", "", time.monotonic() - started]
        except Exception as exc:
            results[name] = [type(exc).__name__, str(exc), time.monotonic() - started]

    timed("masks", lambda: dataset.masks.add(dataset.opened, {"instances": [{}] * 3}, 5, np.arange(3), 3, True, False))
    timed("annotations", lambda: read_annotations(fresh, dataset.tensor_map, dataset.box_format, remote=url))
    timed("image", lambda: dataset.reader.read(6))
    timed("version.open", lambda: open_deeplake4(at_commit, fresh))
    timed("tag.open", lambda: open_deeplake4(view, fresh))
    timed("query", lambda: run_query(fresh, query))
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])), flush=True)
    os._exit(0)
