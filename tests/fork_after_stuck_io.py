"""Run by test_fork_safety.py in its own process: Deep Lake remote reads stuck on storage that
stopped answering (a paused proxy), then either a plain ``os.fork()`` (``fork``) or a lakedet
DataLoader with 2 workers over the same data on a healthy endpoint (``loader``). Prints one JSON
line with what happened within the watchdog's time. Leaves with os._exit (stuck native threads)."""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import ThreadedProxy  # noqa: E402


def main(mode: str, url: str, creds: dict) -> dict:
    import deeplake

    proxy = ThreadedProxy(creds["endpoint_url"])
    ds = deeplake.open_read_only(url, creds=dict(creds, endpoint_url=proxy.endpoint))
    proxy.paused = True
    stuck = [ds["images"].get_bytes_async(row) for row in range(len(ds))]  # noqa: F841  (kept in flight)
    time.sleep(0.5)
    done = threading.Event()
    result = {}

    def run():
        started = time.monotonic()
        if mode == "fork":
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        else:
            from mmengine.config import Config
            from mmengine.registry import init_default_scope
            from mmengine.runner import Runner

            from lakedet.engine.hooks import prepare_dataloader

            init_default_scope("mmdet")
            cfg = Config(dict(train_dataloader=dict(
                batch_size=4, num_workers=2, persistent_workers=False, collate_fn=dict(type="pseudo_collate"),
                sampler=dict(type="DefaultSampler", shuffle=True, seed=0),
                dataset=dict(type="DeepLakeDetDataset", deeplake_path=url, deeplake_credentials=dict(creds=creds),
                             pipeline=[dict(type="LoadImageFromFile"), dict(type="PackDetInputs")]))))
            loader = Runner.build_dataloader(cfg.train_dataloader.to_dict(), seed=0)
            prepare_dataloader(loader)
            result["context"] = loader.multiprocessing_context.get_start_method()
            result["rows"] = sorted(s.img_id for batch in loader for s in batch["data_samples"])
            from lakedet.data.workers import worker_server_forked

            result["server_forked"] = worker_server_forked()
        result["seconds"] = time.monotonic() - started
        done.set()

    threading.Thread(target=run, daemon=True).start()
    result["finished"] = done.wait(float(os.environ.get("WATCHDOG_S", "60")))
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))), flush=True)
    os._exit(0)
