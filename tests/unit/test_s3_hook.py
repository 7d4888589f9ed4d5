"""sparkify.s3's S3Hook subclass: the same user agent as the provider's, found without inspect.stack()."""

from __future__ import annotations

import json

import pytest

from sparkify.s3 import s3_hook_class


@pytest.fixture
def aws_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing-secret-key",
        "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-west-2"}}))


class StageToRedshiftOperator:  # the name the user agent must carry, as the real operator's
    def execute(self, hook_class):
        return self.inner(hook_class)

    def inner(self, hook_class):
        hook = hook_class(aws_conn_id="aws")
        return hook._get_caller(), hook.get_conn().meta.config.user_agent_extra


class SomeSensor:
    def poke(self, hook_class):
        return hook_class(aws_conn_id="aws")._get_caller()


def test_the_subclass_names_the_same_caller_as_the_provider(aws_conn):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    ours, theirs = StageToRedshiftOperator().execute(s3_hook_class()), StageToRedshiftOperator().execute(S3Hook)
    assert ours[0] == theirs[0] == "StageToRedshiftOperator"
    assert "Caller/StageToRedshiftOperator" in ours[1]
    # The rest of the user agent is the provider's, field for field.
    assert ours[1].split() == theirs[1].split()
    assert issubclass(s3_hook_class(), S3Hook)


def test_outside_an_operator_it_falls_back_as_the_provider_does(aws_conn):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    assert SomeSensor().poke(s3_hook_class()) == SomeSensor().poke(S3Hook)
    assert s3_hook_class()(aws_conn_id="aws")._get_caller() == S3Hook(aws_conn_id="aws")._get_caller()


def test_finding_the_caller_reads_no_source(aws_conn, monkeypatch):
    """The provider's way reads every frame's source through inspect; ours must not touch it."""
    import inspect

    def refuse(*args, **kwargs):
        raise AssertionError("inspect.stack() called")

    monkeypatch.setattr(inspect, "stack", refuse)
    assert StageToRedshiftOperator().execute(s3_hook_class())[0] == "StageToRedshiftOperator"


def test_the_hooks_clients_parse_botocore_models_once_per_process(aws_conn, monkeypatch):
    """Every session of the hook shares one botocore loader: the second client parses no JSON file,
    and its service model is the very object the first one was built from."""
    from botocore.loaders import JSONFileLoader

    from sparkify.botodata import shared_loader

    first = s3_hook_class()(aws_conn_id="aws").get_conn()
    parsed: list[str] = []
    real_load = JSONFileLoader.load_file

    def counting(self, file_path):
        parsed.append(file_path)
        return real_load(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", counting)
    second = s3_hook_class()(aws_conn_id="aws").get_conn()
    assert parsed == []
    assert second is not first and second.meta.service_model.service_name == "s3"
    session = s3_hook_class()(aws_conn_id="aws").get_session()
    assert session._session.get_component("data_loader") is shared_loader()
    # The provider's own hook still builds a loader of its own per session (nothing global changed).
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    S3Hook(aws_conn_id="aws").get_conn()
    assert parsed, "the provider's S3Hook parsed nothing: the test no longer tells the two apart"


def test_warm_parses_the_s3_models_without_a_network_call(monkeypatch):
    from botocore.endpoint import Endpoint

    from sparkify import botodata

    def refuse(*args, **kwargs):
        raise AssertionError("a request was sent")

    monkeypatch.setattr(Endpoint, "make_request", refuse)
    botodata.shared_loader.cache_clear()
    try:
        botodata.warm()
        loader = botodata.shared_loader()
        assert loader.load_service_model("s3", "service-2") is loader.load_service_model("s3", "service-2")
    finally:
        botodata.shared_loader.cache_clear()
