"""``lakedet eval CONFIG CHECKPOINT``: OpenMMLab's ``tools/test.py``, plus tables.

Evaluates the checkpoint on the config's test split (optionally at another commit, saved view or
query of it), prints per-class tables and the summary, and writes ``metrics.json`` in the work dir.
"""

from __future__ import annotations

import argparse

from .options import add_cfg_options, add_launcher, load_config, standalone_parser

HELP = "evaluate a checkpoint on the config's test split"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="the config file")
    parser.add_argument("checkpoint", help="the .pth file to evaluate")
    parser.add_argument("--work-dir", help="where metrics.json and lineage.json go (default: work_dirs/<config name>)")
    add_cfg_options(parser)
    parser.add_argument("--out", help="dump raw predictions to this pickle file")
    parser.add_argument("--commit", help="evaluate on the dataset as of this commit (deeplake_commit_id)")
    selected = parser.add_mutually_exclusive_group()
    selected.add_argument("--view", help="evaluate on this saved view (deeplake_view_id)")
    selected.add_argument("--query", help="evaluate on the rows this TQL query selects (deeplake_query)")
    add_launcher(parser)


def get_args_parser() -> argparse.ArgumentParser:
    return standalone_parser("eval", HELP, add_arguments)


def main(args) -> int:
    from mmengine.dist import is_main_process

    from ..engine.launch import end_process_group
    from ..engine.runner import build_runner

    cfg = load_config(args)
    cfg.load_from, cfg.resume = args.checkpoint, False  # evaluate exactly this checkpoint
    select_test_rows(cfg, commit=args.commit, view=args.view, query=args.query)
    runner = build_runner(cfg, training=False)
    if args.out:
        from mmdet.evaluation.metrics import DumpDetResults

        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    metrics = runner.test()  # every rank gets the metrics, computed once on rank 0 from all ranks' results
    if is_main_process():
        _report_metrics(runner, metrics, cfg.work_dir, args)
    end_process_group()
    return 0


def select_test_rows(cfg, commit: str | None = None, view: str | None = None, query: str | None = None) -> None:
    """Set ``deeplake_commit_id`` / ``deeplake_view_id`` / ``deeplake_query`` on the test split's
    Deep Lake dataset(s); a view or a query replaces the one the config selects.

    Raises:
        ConfigError: the test split has no ``DeepLakeDetDataset``.
    """
    from ..config.walk import run_dataset_configs
    from ..errors import ConfigError

    chosen = {key: value for key, value in (("deeplake_commit_id", commit), ("deeplake_view_id", view),
                                             ("deeplake_query", query)) if value}
    if not chosen:
        return
    found = [dataset for _, dataset in run_dataset_configs(cfg, ("test",))]
    if not found:
        raise ConfigError("--commit/--view/--query: the config's test_dataloader has no DeepLakeDetDataset")
    for dataset in found:
        if "deeplake_view_id" in chosen or "deeplake_query" in chosen:
            dataset.pop("deeplake_view_id", None)
            dataset.pop("deeplake_query", None)
        if "deeplake_commit_id" in chosen:
            dataset.pop("deeplake_commit", None)  # the other spelling of the same key
        dataset.update(chosen)


def _report_metrics(runner, metrics, work_dir, args) -> None:
    import json
    from pathlib import Path

    from ..evaluation.tables import format_table, per_class_tables

    for metric in runner.test_evaluator.metrics:
        for title, headers, rows in per_class_tables(metric):
            print(f"\n{title}")
            print(format_table(headers, rows))
    summary = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    print("\nsummary")
    print(format_table(["metric", "value"], sorted(summary.items())))
    out = Path(work_dir) / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(config=args.config, checkpoint=args.checkpoint, metrics=summary), indent=2))
    print(f"metrics written to {out}" + (f"; raw predictions to {args.out}" if args.out else ""))
