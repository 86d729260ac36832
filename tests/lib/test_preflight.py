import pytest

from bosun.lib import preflight
from bosun.lib.config import ConfigError


def test_the_web_role_refuses_to_start_without_collected_static_files(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    with pytest.raises(ConfigError, match=r"collectstatic --noinput"):
        preflight.check_static_collected()
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "staticfiles.json").write_text("{}")
    preflight.check_static_collected()
