"""The Session Manager settings: read from the environment, refused at start when wrong."""

from __future__ import annotations

import pytest

from bosun.lib.config import ConfigError, load


def env_with(base, **values: str) -> dict[str, str]:
    return {"BOSUN_DATA_DIR": str(base / "var"), **values}


def test_the_defaults(tmp_path):
    config = load(env_with(tmp_path), base_dir=tmp_path)
    assert config.session_reason_required is False
    assert config.session_run_as == "" and config.session_allow_root is False
    assert config.session_recording_required is True and config.session_record_input is True
    assert config.session_idle_timeout_minutes == 20
    assert config.session_max_duration_minutes == 0


def test_each_is_read_from_its_variable(tmp_path):
    config = load(
        env_with(
            tmp_path,
            BOSUN_SESSION_REASON_REQUIRED="true",
            BOSUN_SESSION_RUN_AS="ssm-user",
            BOSUN_SESSION_ALLOW_ROOT="1",
            BOSUN_SESSION_RECORDING_REQUIRED="0",
            BOSUN_SESSION_RECORD_INPUT="no",
            BOSUN_SESSION_IDLE_TIMEOUT_MINUTES="60",
            BOSUN_SESSION_MAX_DURATION_MINUTES="1440",
        ),
        base_dir=tmp_path,
    )
    assert config.session_reason_required and config.session_allow_root
    assert config.session_run_as == "ssm-user"
    assert not config.session_recording_required and not config.session_record_input
    assert (config.session_idle_timeout_minutes, config.session_max_duration_minutes) == (60, 1440)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOSUN_SESSION_IDLE_TIMEOUT_MINUTES", "0"),
        ("BOSUN_SESSION_IDLE_TIMEOUT_MINUTES", "61"),
        ("BOSUN_SESSION_MAX_DURATION_MINUTES", "1441"),
        ("BOSUN_SESSION_MAX_DURATION_MINUTES", "-1"),
        ("BOSUN_SESSION_RECORDING_REQUIRED", "maybe"),
        ("BOSUN_SESSION_RUN_AS", "root; rm -rf /"),
    ],
)
def test_a_wrong_value_fails_naming_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load(env_with(tmp_path, **{name: value}), base_dir=tmp_path)
