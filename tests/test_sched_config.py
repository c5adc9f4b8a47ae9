"""Scheduler config resolution (spec §1.2): embedded configs, JSON overrides, literal JSON, fatal texts."""

import json

import pytest

from scootpy.sched.config import (ConfigError, SchedulerConfig, parse_config, resolve_config_text,
                                  scheduler_config_from_dict)


def test_embedded_configs_parse():
    memory = parse_config(resolve_config_text("local.memory"))
    assert memory.cluster == {"Type": "memory", "Count": 10}
    assert memory.workers == {"Type": ""}
    assert memory.saga_log["Type"] == "memory"
    assert memory.scheduler == SchedulerConfig()
    local = parse_config(resolve_config_text("local.local"))
    assert local.cluster["Type"] == "local" and local.workers["Type"] == "rpc"
    assert local.saga_log == {"Type": "file", "Directory": ".scootdata/filesagalog"}
    assert local.scheduler.recover_jobs_on_startup is True


def test_override_is_deep_merged():
    text = resolve_config_text('local.local.{"SchedulerConfig":{"MaxRetriesPerTask":3},"Cluster":{"Type":"memory"}}')
    setup = parse_config(text)
    assert setup.scheduler.max_retries == 3
    assert setup.scheduler.recover_jobs_on_startup is True
    assert setup.cluster["Type"] == "memory"


def test_literal_json_and_defaults():
    setup = parse_config(resolve_config_text('{"SchedulerConfig":{"defaulttasktimeout":"1m","Admins":"a,,b",'
                                             '"MaxRequestors":0,"TaskTimeoutOverhead":"2s"}}'))
    assert setup.scheduler.default_task_timeout == 60.0
    assert setup.scheduler.task_timeout_overhead == 2.0
    assert setup.scheduler.admins == ("a", "b")
    assert setup.scheduler.max_requestors == 10 and setup.scheduler.max_jobs_per_requestor == 100
    assert parse_config("").cluster == {"Type": ""}


def test_unknown_asset_is_fatal_with_the_reference_text():
    with pytest.raises(ConfigError, match="^Scheduler: Error Loading Config File config/x.y: Asset config/x.y not"):
        resolve_config_text("x.y")


@pytest.mark.parametrize("option", ["SagaLog", "Cluster", "Workers", "SchedulerConfig"])
def test_unknown_type_is_fatal(option):
    with pytest.raises(ConfigError, match=f'^Error parsing Implementations {option}: "bogus" is not a valid '
                                          "Implementation"):
        parse_config(json.dumps({option: {"Type": "bogus"}}))


@pytest.mark.parametrize("text", ["[1]", "{", '{"SchedulerConfig":{"MaxRetriesPerTask":"x"}}',
                                  '{"SchedulerConfig":{"DefaultTaskTimeout":"soon"}}',
                                  '{"SagaLog":{"Type":"file"}}', "local.memory.[1]", "local.memory.{bad"])
def test_bad_configs_are_refused(text):
    with pytest.raises(ConfigError):
        parse_config(resolve_config_text(text))


def test_negative_retries_clamp_to_zero():
    assert scheduler_config_from_dict({"MaxRetriesPerTask": -4}).max_retries == 0
