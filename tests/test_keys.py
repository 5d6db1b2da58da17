"""One list of ``deeplake_*`` keys (``lakedet.config.keys``), checked both ways against the README:
every key the docs list is accepted where it belongs, every other is refused with a did-you-mean."""

import re
from pathlib import Path

import pytest
from mmengine.config import Config

from lakedet import DeepLakeDetDataset
from lakedet.config.keys import ALL_KEYS, DATASET_KEYS, SPLIT_KEYS, TOP_LEVEL_KEYS
from lakedet.config.translate import translate_config
from lakedet.engine.hooks import check_run_config
from lakedet.errors import ConfigError

pytestmark = pytest.mark.timeout(120)

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_keys() -> set[str]:
    """The keys in the first column of README's "Dataset keys" table."""
    section = README.read_text().split("## Dataset keys", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `deeplake_")]
    return {key for row in rows for key in re.findall(r"`(deeplake_\w+)`", row.split("|")[1])}


def test_the_readme_lists_exactly_the_keys_lakedet_reads():
    assert documented_keys() == set(ALL_KEYS)


def misspelled(key: str) -> str:
    return key[:-1] + ("x" if key[-1] != "x" else "y")


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """A small dataset with a saved view (tag) and its commit."""
    from lakedet.tools.synthetic import make_shapes_dataset

    path = str(tmp_path_factory.mktemp("keys") / "ds")
    ds, _ = make_shapes_dataset(path, 6, size=32, seed=1)
    ds.query("SELECT * LIMIT 4").tag("first_four")
    return path, str(ds.version)


def test_every_dataset_key_is_accepted_and_a_misspelled_one_refused(tagged, tmp_path):
    import deeplake

    path, commit = tagged
    values = dict(deeplake_path=path, deeplake_credentials=dict(token=None, creds=None), deeplake_commit_id=commit,
                  deeplake_commit=commit, deeplake_view_id="first_four", deeplake_query="SELECT * LIMIT 3",
                  deeplake_tensors=dict(img="images"), deeplake_dataloader_type="python",
                  deeplake_cache=str(tmp_path / "cache"), deeplake_prefetch=0)
    assert set(values) | {"deeplake_dataset"} == set(DATASET_KEYS)
    for key, value in values.items():
        rows = DeepLakeDetDataset(**dict(dict(deeplake_path=path), **{key: value}))
        assert len(rows) == {"deeplake_view_id": 4, "deeplake_query": 3}.get(key, 6), key
    assert len(DeepLakeDetDataset(deeplake_dataset=deeplake.open_read_only(path))) == 6
    for key in DATASET_KEYS:
        with pytest.raises(ConfigError, match=rf"unknown key '{misspelled(key)}' \(did you mean '{key}'\?\)"):
            DeepLakeDetDataset(deeplake_path=path, **{misspelled(key): 1})


def seed_style(**top):
    train = dict(deeplake_path="/data/train", pipeline=[dict(type="LoadImageFromFile"), dict(type="PackDetInputs")])
    return Config(dict(model=dict(type="RetinaNet"), data=dict(train=train), **top))


def test_every_split_and_top_level_key_is_accepted_and_a_misspelled_one_refused():
    values = dict(deeplake_path="/data/train", deeplake_credentials=dict(creds="env:S3"), deeplake_commit_id="abc",
                  deeplake_commit="abc", deeplake_view_id="v", deeplake_query="SELECT * LIMIT 3",
                  deeplake_tensors=dict(img="images"), deeplake_dataloader_type="python",
                  deeplake_cache="/tmp/c", deeplake_prefetch=0, deeplake_dataloader=dict(batch_size=3))
    assert set(values) == set(SPLIT_KEYS)
    for key, value in values.items():
        cfg = seed_style()
        cfg.data.train[key] = value
        loader = translate_config(cfg).train_dataloader
        if key == "deeplake_dataloader":
            assert loader.batch_size == 3
        else:
            assert loader.dataset[key] == value, key
    for key in SPLIT_KEYS:
        cfg = seed_style()
        cfg.data.train[misspelled(key)] = 1
        with pytest.raises(ConfigError, match=rf"data.train: unknown key '{misspelled(key)}' \(did you mean '{key}'\?\)"):
            translate_config(cfg)
    top = dict(deeplake_dataloader_type="python", deeplake_metrics_format="COCO")
    assert set(top) == set(TOP_LEVEL_KEYS)
    translate_config(seed_style(**top))
    check_run_config(Config(dict(top, val_evaluator=dict(type="CocoMetric"))))  # an MMDetection 3 config's
    for key in TOP_LEVEL_KEYS:
        for check in (lambda c: translate_config(c), check_run_config):
            with pytest.raises(ConfigError, match=rf"unknown key '{misspelled(key)}' \(did you mean '{key}'\?\)"):
                check(seed_style(**{misspelled(key): 1}))
