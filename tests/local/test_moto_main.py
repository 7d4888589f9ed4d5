"""moto's server as the project starts it (sparkify_local.moto_main): moto's module listing is read
once, not on every request, and the server still answers the S3 API."""

from __future__ import annotations

import os

import moto.backends

from sparkify_local import moto_main


def test_the_module_listing_is_read_once_and_unchanged(monkeypatch):
    monkeypatch.setattr(moto.backends, "list_of_moto_modules", moto.backends.list_of_moto_modules)
    expected = list(moto.backends.list_of_moto_modules())
    assert "s3" in expected

    moto_main.list_modules_once()
    calls = []
    monkeypatch.setattr(os, "listdir", lambda *a: calls.append(a) or [])
    assert list(moto.backends.list_of_moto_modules()) == expected
    assert list(moto.backends.list_of_moto_modules()) == expected
    assert calls == []


def test_the_server_started_this_way_answers_s3(tmp_path):
    import boto3

    from sparkify_local.s3server import MotoServer

    server = MotoServer(log_file=tmp_path / "moto.log").start()
    try:
        assert "sparkify_local.moto_main" in server.process.args
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        s3.create_bucket(Bucket="moto-main-probe")
        s3.put_object(Bucket="moto-main-probe", Key="a/b.json", Body=b'{"x": 1}')
        assert s3.get_object(Bucket="moto-main-probe", Key="a/b.json")["Body"].read() == b'{"x": 1}'
    finally:
        server.stop()
