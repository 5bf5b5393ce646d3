from pathlib import Path

import pytest

from steadylink.errors import ConfigError
from steadylink.settings import load_settings


def test_defaults_file_env_and_overrides_in_that_order(tmp_path: Path) -> None:
    config = tmp_path / "steadylink.toml"
    config.write_text(
        'base_url = "https://sl.example"\n[links]\ncode_length = 9\nredirect_status = 301\n'
    )
    settings = load_settings(config, environ={"STEADYLINK_LINKS_CODE_LENGTH": "10"}, port=9000)
    assert settings.base_url == "https://sl.example"
    assert settings.links.code_length == 10
    assert settings.links.redirect_status == 301
    assert settings.port == 9000
    assert settings.links.cache_size == 1_000_000


def test_environment_lists_and_booleans() -> None:
    settings = load_settings(
        environ={
            "STEADYLINK_LINKS_BLOCKED_DOMAINS": "a.example, b.example",
            "STEADYLINK_LINKS_ANONYMOUS_CREATE": "no",
        }
    )
    assert settings.links.blocked_domains == ("a.example", "b.example")
    assert settings.links.anonymous_create is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense = 1\n", "Unknown setting 'nonsense'"),
        ("[links]\ncode_lenght = 7\n", "Unknown setting 'links.code_lenght'"),
        ("[links]\ncode_length = 'seven'\n", "code_length"),
        ("[links]\nredirect_status = 200\n", "redirect_status"),
        ("links = 3\n", "must be a table"),
        ("port = [", "not valid TOML"),
    ],
)
def test_bad_config_fails_loudly_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "steadylink.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="STEADYLINK_PORT"):
        load_settings(environ={"STEADYLINK_PORT": "eighty"})


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'links.db'}"
    assert (
        load_settings(environ={"STEADYLINK_DATABASE": "postgresql://x/y"}).database_url
        == "postgresql://x/y"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[slo]\navailability_percent = 100\n", "slo.availability_percent must be between 0 and 100"),
        ("[slo]\navailability_percent = 0\n", "slo.availability_percent must be between 0 and 100"),
        ("[slo]\navailability_percent = 120.5\n", "slo.availability_percent must be between 0 and 100"),
        ("[slo]\nbudget_minutes_per_year = 0\n", "slo.budget_minutes_per_year must be above 0 and below a year"),
        ("[slo]\nbudget_minutes_per_year = 30\navailability_percent = 99.99\n",
         "set slo.availability_percent or slo.budget_minutes_per_year, not both"),
        ("[watch]\nerror_ratio_seconds = 1\nprobe_interval_seconds = 2.0\nprobe_timeout_seconds = 1.0\n",
         r"watch.error_ratio_seconds \(1\) is shorter than watch.probe_interval_seconds \(2.0\)"),
        ("[watch]\nprobe_timeout_seconds = 3.0\n", "probe_timeout_seconds must be positive and at most"),
        ("[notify]\napprise_urls = 5\n", "'apprise_urls' must be tuple"),
    ],
)  # fmt: skip
def test_watch_slo_and_notify_settings_are_checked_at_start_up(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "steadylink.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})
