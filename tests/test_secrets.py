"""Secrets stay out of every file a run writes: given by reference in configs ('env:NAME',
'file:PATH'), hidden by lakedet's entry points when written as values, refused from a config
that reaches the dataset any other way; and ``--creds`` from a file or the environment.
(The end-to-end check, every file of three entry points' work dirs searched: test_entry_points.py.)"""

import json

import pytest
from mmengine.config import Config

from lakedet.config.secrets import Secret, hide_secrets, literal_secrets
from lakedet.errors import ConfigError
from lakedet.source.credentials import parse_creds, resolve_credentials

pytestmark = pytest.mark.timeout(60)

CREDS = dict(aws_access_key_id="AKIA-ID", aws_secret_access_key="S3CRET", endpoint_url="http://127.0.0.1:9",
             aws_region="us-east-1", some_future_cloud_key="FUTURE-SECRET")


def test_every_value_under_deeplake_credentials_but_where_the_storage_is_counts_as_secret():
    assert literal_secrets(dict(token="TOKEN", creds=CREDS)) == [
        "token", "creds['aws_access_key_id']", "creds['aws_secret_access_key']", "creds['some_future_cloud_key']"]
    # references and the storage's location are not secrets
    assert literal_secrets(dict(token="env:ACTIVELOOP_TOKEN", creds="env:LAB_S3")) == []
    assert literal_secrets(dict(creds=dict(aws_secret_access_key="file:~/s3.key", endpoint_url="http://x",
                                           profile_name="lab", aws_access_key_id="@/etc/key-id"))) == []
    assert literal_secrets(dict(username=None, password=None, token=None, creds=None)) == []  # the seed's example


def test_hidden_secrets_show_as_redacted_in_every_copy_of_the_config_and_keep_their_value():
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type="DeepLakeDetDataset", deeplake_path="s3://b/ds",
                                                          deeplake_credentials=dict(token="TOKEN", creds=CREDS))),
                      val_dataloader=dict(dataset=dict(type="RepeatDataset", times=2, dataset=dict(
                          type="DeepLakeDetDataset", deeplake_credentials=dict(creds=dict(CREDS)))))))
    assert hide_secrets(cfg) == 7
    text = cfg.pretty_text  # what mmengine logs, dumps, and stores in checkpoints
    for secret in ("AKIA-ID", "S3CRET", "FUTURE-SECRET", "TOKEN"):
        assert secret not in text
    assert "http://127.0.0.1:9" in text and "us-east-1" in text and "<redacted>" in text
    Config.fromstring(text, ".py")  # still a valid config file
    import copy
    import pickle

    credentials = copy.deepcopy(cfg).train_dataloader.dataset.deeplake_credentials
    assert resolve_credentials(credentials) == ("TOKEN", CREDS)  # the run reads the values
    secret = credentials.creds.aws_secret_access_key
    assert isinstance(secret, Secret) and secret.value == "S3CRET"
    with pytest.raises(TypeError):  # no pickled config carries it
        pickle.dumps(secret)


def test_references_are_resolved_from_the_environment_and_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_S3", json.dumps(dict(aws_access_key_id="A", aws_secret_access_key="B")))
    monkeypatch.setenv("LAB_TOKEN", "tok\n")
    key_file = tmp_path / "secret.key"
    key_file.write_text("C\n")
    lines = tmp_path / "creds.env"
    lines.write_text("# lab\naws_access_key_id = D\nendpoint_url=http://127.0.0.1:9\n")
    assert resolve_credentials(dict(token="env:LAB_TOKEN", creds="env:LAB_S3")) == (
        "tok", dict(aws_access_key_id="A", aws_secret_access_key="B"))
    assert resolve_credentials(dict(creds=dict(aws_access_key_id="x", aws_secret_access_key=f"file:{key_file}")))[1] == \
        dict(aws_access_key_id="x", aws_secret_access_key="C")
    assert resolve_credentials(dict(creds=f"@{lines}"))[1] == dict(aws_access_key_id="D", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match=r"deeplake_credentials\['creds'\]: the environment variable 'NOPE' is not set"):
        resolve_credentials(dict(creds="env:NOPE"))
    with pytest.raises(ConfigError, match=r"deeplake_credentials\['token'\]: cannot read the file"):
        resolve_credentials(dict(token=f"file:{tmp_path / 'missing'}"))
    with pytest.raises(ConfigError, match=r"unknown key 'tokn' \(did you mean 'token'\?\)"):
        resolve_credentials(dict(tokn="x"))
    with pytest.raises(ConfigError, match=r"deeplake_credentials\['password'\] is not supported by Deep Lake 4"):
        resolve_credentials(dict(password="p"))


def test_a_config_that_holds_a_secret_as_a_value_is_refused_by_the_dataset(shapes):
    """Built from an mmengine Config (as MMDetection's tools and Runner.from_cfg build it), the
    dataset refuses a secret value: mmengine has written the config out already."""
    from mmengine.registry import DATASETS, init_default_scope

    import lakedet  # noqa: F401

    init_default_scope("mmdet")
    cfg = Config(dict(dataset=dict(type="DeepLakeDetDataset", deeplake_path=shapes[0],
                                   deeplake_credentials=dict(creds=dict(aws_secret_access_key="S3CRET")))))
    with pytest.raises(ConfigError, match=r"deeplake_credentials\[creds\['aws_secret_access_key'\]\] is written in the "
                                          r"config as a value.*'env:NAME'"):
        DATASETS.build(cfg.dataset)
    cfg.dataset.deeplake_credentials.creds.aws_secret_access_key = "<redacted>"  # a config a run wrote out
    with pytest.raises(ConfigError, match="written out by a run, with its secrets hidden"):
        DATASETS.build(cfg.dataset)
    cfg.dataset.deeplake_credentials.creds.aws_secret_access_key = Secret("S3CRET")  # what lakedet train hides
    assert len(DATASETS.build(cfg.dataset)) == 24
    # given in Python, not through a config: nothing is written out, nothing refused
    assert len(DATASETS.build(dict(type="DeepLakeDetDataset", deeplake_path=shapes[0],
                                   deeplake_credentials=dict(creds=dict(aws_secret_access_key="S3CRET"))))) == 24


def test_creds_come_from_arguments_files_or_the_environment(tmp_path, monkeypatch):
    as_json = tmp_path / "creds.json"
    as_json.write_text(json.dumps(dict(aws_access_key_id="A", aws_secret_access_key="B")))
    as_lines = tmp_path / "creds.env"
    as_lines.write_text("# S3 of the lab\naws_access_key_id = C\n\nendpoint_url=http://127.0.0.1:9\n")
    monkeypatch.setenv("LAB_CREDS", json.dumps(dict(aws_secret_access_key="D")))
    assert parse_creds(["aws_region=eu", f"@{as_json}"]) == dict(aws_region="eu", aws_access_key_id="A",
                                                                 aws_secret_access_key="B")
    assert parse_creds([f"@{as_lines}", "env:LAB_CREDS"]) == dict(aws_access_key_id="C", endpoint_url="http://127.0.0.1:9",
                                                                  aws_secret_access_key="D")
    assert parse_creds([f"file:{as_json}"])["aws_access_key_id"] == "A"
    with pytest.raises(ConfigError, match="the environment variable 'NOPE' is not set"):
        parse_creds(["env:NOPE"])
    with pytest.raises(ConfigError, match="cannot read the file"):
        parse_creds([f"@{tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE, @FILE or env:NAME"):
        parse_creds(["justakey"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_creds([f"@{tmp_path / 'bad.json'}"])


def test_every_copy_of_the_credentials_in_a_config_is_hidden(tmp_path):
    """A config keeps top-level variables (train_dataset = dict(...)) beside the dataloader that
    uses them, as separate copies; nested settings and a secret's usual name elsewhere count too."""
    from lakedet.engine.runner import prepare_config

    text = (
        "train_dataset = dict(type='DeepLakeDetDataset', deeplake_path='s3://b/ds',\n"
        "    deeplake_credentials=dict(creds=dict(aws_secret_access_key='TOPSECRET1', nested=dict(key='TOPSECRET2'),"
        " endpoint_url='http://127.0.0.1:9')))\n"
        "train_dataloader = dict(batch_size=1, dataset=train_dataset)\n"
        "model = dict(type='RetinaNet')\ntrain_cfg = dict(max_epochs=1)\noptim_wrapper = dict(optimizer=dict(type='SGD'))\n"
        "wandb = dict(token='TOPSECRET3')\n")
    (tmp_path / "cfg.py").write_text(text)
    cfg = prepare_config(Config.fromfile(str(tmp_path / "cfg.py")))
    for secret in ("TOPSECRET1", "TOPSECRET2", "TOPSECRET3"):
        assert secret not in cfg.pretty_text
    assert "http://127.0.0.1:9" in cfg.pretty_text and cfg.default_scope == "mmdet"
    # from YAML: written out as a Python config, the form that shows '<redacted>'
    import yaml

    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(Config.fromfile(str(tmp_path / "cfg.py")).to_dict()))
    from_yaml = prepare_config(Config.fromfile(str(tmp_path / "cfg.yaml")))
    assert from_yaml.filename is None and "TOPSECRET1" not in from_yaml.pretty_text
    with pytest.raises(TypeError, match="a Secret is not pickled"):
        import pickle

        pickle.dumps(from_yaml.train_dataset.deeplake_credentials.creds.aws_secret_access_key)
    # a config a run wrote out, fed back: the hidden values are gone, and that is what the error says
    written = tmp_path / "written.py"
    written.write_text(cfg.pretty_text)
    with pytest.raises(ConfigError, match=r"is '<redacted>': this config was written out by a run"):
        prepare_config(Config.fromfile(str(written)))
