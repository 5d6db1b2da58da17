"""``lakedet demo``: build the embedded synthetic Deep Lake datasets once, train, evaluate.

The config is ``configs/demo_retinanet_r18_shapes.py`` (a plain MMDetection 3 config); the data
is rendered by ``lakedet.tools.synthetic`` into a cache folder and reused on later runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..evaluation.tables import format_table, per_class_tables

__all__ = ["DEMO_CONFIG", "ensure_demo_datasets", "run_demo", "write_example_datasets"]

DEMO_CONFIG = Path(__file__).parent.parent / "configs" / "demo_retinanet_r18_shapes.py"
_VERSION = "shapes-v1"


def default_data_dir() -> Path:
    return Path(os.environ.get("LAKEDET_CACHE", Path.home() / ".cache" / "lakedet")) / "demo"


def ensure_demo_datasets(data_dir: Path, train_size: int = 400, val_size: int = 100) -> tuple[str, str]:
    """Render and write the train/val datasets unless an identical copy exists; return their paths."""
    import deeplake

    from .synthetic import make_shapes_dataset

    paths = []
    for split, size, seed in (("train", train_size, 1), ("val", val_size, 2)):
        path = Path(data_dir) / f"{_VERSION}-{split}-{size}"
        marker = f"{_VERSION}:{split}:{size}:{seed}"
        if path.exists():
            try:
                existing = deeplake.open_read_only(str(path))
                if len(existing) == size and existing.metadata["lakedet_demo"] == marker:
                    paths.append(str(path))
                    continue
            except Exception:
                pass
            import shutil

            shutil.rmtree(path)
        print(f"building the demo {split} dataset ({size} images) at {path} ...", flush=True)
        ds, _ = make_shapes_dataset(str(path), size, seed=seed, message=f"lakedet demo {split} split")
        ds.metadata["lakedet_demo"] = marker
        ds.commit("mark as lakedet demo data")
        paths.append(str(path))
    return paths[0], paths[1]


def write_example_datasets(data_dir: str, train_size: int = 64, val_size: int = 16) -> tuple[str, str]:
    """The data of the repository's example configs (``configs/``): ``DATA_DIR/shapes-train`` and
    ``DATA_DIR/shapes-val``, with the seed example's column names (``images``, ``boxes``,
    ``categories``, ``masks``: binary masks) and 3 classes. Existing folders are an error (nothing
    is overwritten)."""
    from ..errors import ConfigError
    from .synthetic import make_shapes_dataset

    paths = [Path(data_dir) / "shapes-train", Path(data_dir) / "shapes-val"]
    for path in paths:
        if path.exists():
            raise ConfigError(f"{path} exists; remove it, or give another --examples-data folder")
    for path, size, seed in zip(paths, (train_size, val_size), (1, 2)):
        make_shapes_dataset(str(path), size, seed=seed, labels_column="categories", masks="binary",
                            message="lakedet example data")
        print(f"wrote {path} ({size} rows: images, boxes, categories, masks)", flush=True)
    return str(paths[0]), str(paths[1])


def run_demo(work_dir: str = "work_dirs/demo", data_dir: str | None = None, epochs: int | None = None,
             train_size: int = 400, val_size: int = 100, num_workers: int | None = None,
             cfg_options: dict | None = None) -> dict:
    """Train the demo detector and return the final validation metrics."""
    from mmengine.config import Config

    from ..engine.runner import build_runner, last_metrics

    started = time.monotonic()
    train_path, val_path = ensure_demo_datasets(Path(data_dir) if data_dir else default_data_dir(),
                                                train_size, val_size)
    cfg = Config.fromfile(str(DEMO_CONFIG))
    cfg.train_dataloader.dataset.deeplake_path = train_path
    cfg.val_dataloader.dataset.deeplake_path = val_path
    cfg.test_dataloader = cfg.val_dataloader
    cfg.work_dir = work_dir
    if epochs:
        cfg.train_cfg.max_epochs = epochs
        cfg.train_cfg.val_interval = epochs
        cfg.param_scheduler[1].end = epochs
        cfg.default_hooks.checkpoint.interval = epochs
    if num_workers is not None:
        for loader in (cfg.train_dataloader, cfg.val_dataloader):
            loader.num_workers = num_workers
            loader.persistent_workers = num_workers > 0
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    runner = build_runner(cfg)
    runner.train()
    values = {k.split("/", 1)[1]: v for k, v in last_metrics(runner).items() if k.startswith("coco/")}
    elapsed = time.monotonic() - started
    rows = [(name, values[name]) for name in ("bbox_mAP", "bbox_mAP_50", "bbox_mAP_75", "bbox_mAP_s",
                                              "bbox_mAP_m", "bbox_mAP_l") if name in values]
    print("\nlakedet demo: RetinaNet-R18 from scratch on synthetic shapes streamed from Deep Lake")
    for metric in runner.val_evaluator.metrics:
        for title, headers, table in per_class_tables(metric):
            print(title)
            print(format_table(headers, table))
    if rows:
        print(format_table(["metric (val)", "value"], rows))
    else:
        print(f"no COCO metrics: the model predicted no box above "
              f"model.test_cfg.score_thr={cfg.model.test_cfg.score_thr} (train longer, or lower it)")
    print(f"wall time: {elapsed:.0f} s; work dir: {work_dir}")
    values["wall_time_s"] = elapsed
    return values
