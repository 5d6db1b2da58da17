"""Secrets stay out of saved configs, logs, checkpoints and argv: deny-by-default redaction of
``deeplake_credentials``, and ``--creds`` from a file or the environment."""

import json

import pytest

from lakedet.engine.checkpoints import redact_credentials
from lakedet.cli import parse_creds
from lakedet.errors import ConfigError

pytestmark = pytest.mark.timeout(60)

CREDS = dict(aws_access_key_id="AKIA-ID", aws_secret_access_key="S3CRET", endpoint_url="http://127.0.0.1:9",
             aws_region="us-east-1", some_future_cloud_key="FUTURE-SECRET")


def test_everything_under_deeplake_credentials_but_endpoint_and_region_is_redacted():
    cfg = dict(train_dataloader=dict(dataset=dict(type="DeepLakeDetDataset", deeplake_path="s3://b/ds",
                                                  deeplake_credentials=dict(token="TOKEN", creds=CREDS))),
               data=dict(train=dict(deeplake_credentials=dict(username=None, token="TOKEN2"))),
               model=dict(type="RetinaNet", password_hint=None), other=dict(token="T3", keep="me"))
    out = redact_credentials(cfg)
    creds = out["train_dataloader"]["dataset"]["deeplake_credentials"]
    assert creds["token"] == "<redacted>"
    assert creds["creds"] == dict(aws_access_key_id="<redacted>", aws_secret_access_key="<redacted>",
                                  endpoint_url="http://127.0.0.1:9", aws_region="us-east-1",
                                  some_future_cloud_key="<redacted>")  # a key lakedet does not know: redacted
    assert out["data"]["train"]["deeplake_credentials"] == dict(username=None, token="<redacted>")
    assert out["other"] == dict(token="<redacted>", keep="me") and out["model"] == cfg["model"]
    assert out["train_dataloader"]["dataset"]["deeplake_path"] == "s3://b/ds"
    assert cfg["train_dataloader"]["dataset"]["deeplake_credentials"]["token"] == "TOKEN"  # a copy


def test_the_config_a_run_writes_and_logs_holds_no_secret():
    from mmengine.config import Config

    from lakedet.engine.runner import _redacted

    cfg = Config(dict(train_dataloader=dict(dataset=dict(deeplake_credentials=dict(creds=CREDS)))))
    text = _redacted(cfg).pretty_text
    for secret in ("AKIA-ID", "S3CRET", "FUTURE-SECRET"):
        assert secret not in text
    assert "http://127.0.0.1:9" in text and "us-east-1" in text


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
    with pytest.raises(ConfigError, match="the environment variable 'NOPE' is not set"):
        parse_creds(["env:NOPE"])
    with pytest.raises(ConfigError, match="cannot read the file"):
        parse_creds([f"@{tmp_path / 'missing'}"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE, @FILE or env:NAME"):
        parse_creds(["justakey"])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_creds([f"@{tmp_path / 'bad.json'}"])
