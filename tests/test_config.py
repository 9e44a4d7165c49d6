import dataclasses
import typing
from pathlib import Path

import pytest

from broadsheet.core.config import MAXIMUM, Config, find_config, load_config, secret
from broadsheet.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broadsheet.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_config_loads_typed_values():
    config = load_config(ROOT / "broadsheet.toml")
    assert config.name == "BCECC Newsletter"
    assert config.from_address.endswith("<newsletter@example.org>")
    assert config.send.transport == "outbox"
    assert config.smtp.security == "starttls"
    assert isinstance(config.send.rate_per_second, float)
    assert config.root == ROOT
    assert config.footer.links["Events"].startswith("https://")


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    path = write(tmp_path, 'name = "x"\n\n[send]\nconections = 4\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert f"{path}:4" in message
    assert "send.conections" in message
    assert "did you mean 'connections'" in message


def test_unknown_top_level_key_suggests_toml_name(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'from'"):
        load_config(write(tmp_path, 'frm = "a@example.org"\n'))


def test_wrong_type_says_what_is_allowed(tmp_path):
    path = write(tmp_path, '[send]\nconnections = "four"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert f"{path}:2" in str(raised.value)
    assert "must be a whole number" in str(raised.value)


def test_literal_choices_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="'starttls' or 'ssl' or 'none'"):
        load_config(write(tmp_path, '[smtp]\nsecurity = "tls"\n'))


def test_table_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"must be a table \[smtp\]"):
        load_config(write(tmp_path, 'smtp = "localhost"\n'))


def test_invalid_toml_is_a_config_error_naming_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"broadsheet.toml:2: invalid TOML"):
        load_config(write(tmp_path, 'language = "en"\nname = \n'))


def test_config_not_utf8_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "broadsheet.toml"
    path.write_bytes(b'language = "en"\nname = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"broadsheet.toml:2: .*not UTF-8.*save it as UTF-8"):
        load_config(path)


def test_integers_accepted_for_floats_and_bools_refused_for_ints(tmp_path):
    config = load_config(write(tmp_path, "[send]\nrate_per_second = 10\n"))
    assert config.send.rate_per_second == 10.0
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "[send]\nconnections = true\n"))


def test_found_upward_and_defaults_without_file(tmp_path):
    path = write(tmp_path, 'name = "Up"\n')
    nested = tmp_path / "issues" / "one"
    nested.mkdir(parents=True)
    assert find_config(nested) == path
    assert load_config(start=nested).name == "Up"
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    (empty / "x").mkdir()
    assert find_config(empty / "x") in (None, path)


def test_defaults_when_no_config():
    config = Config()
    assert config.send.connections == 4 and config.smtp.security == "starttls"


def test_secret_from_environment_only(monkeypatch):
    monkeypatch.delenv("BROADSHEET_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as raised:
        secret("smtp")
    assert "BROADSHEET_SMTP_PASSWORD" in str(raised.value)
    monkeypatch.setenv("BROADSHEET_SMTP_PASSWORD", "hunter2-secret")
    assert secret("smtp") == "hunter2-secret"


def test_base_url_must_be_an_absolute_web_address(tmp_path):
    with pytest.raises(ConfigError, match=r"broadsheet.toml:2: .*base_url.*https://"):
        load_config(write(tmp_path, 'name = "N"\nbase_url = "news.example.org"\n'))
    assert load_config(write(tmp_path, 'base_url = "https://news.example.org"\n')).base_url


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[smtp]\ntimeout = 0\n", "'smtp.timeout' must be a number above 0 and at most 3600"),
        ("[send]\nretries = -1\n", "'send.retries' must be a whole number from 0 to 100"),
        ("[send]\nrate_per_second = -2.5\n", "'send.rate_per_second' must be a number from 0 to 10000"),
        ("[send]\nconnections = 0\n", "'send.connections' must be a whole number from 1 to 100"),
        ("[send]\nconnections = 2.5\n", "'send.connections' must be a whole number"),
        ("[send]\nrate_per_second = inf\n", r"'send.rate_per_second' must be a number from 0 to 10000, not float inf"),
        ("[send]\nrate_per_hour = nan\n", r"'send.rate_per_hour' must be a number from 0 to 36000000, not float nan"),
        (
            "[send]\nconnections = 100000\n",
            r"broadsheet.toml:2: 'send.connections' must be a whole number from 1 to 100",
        ),
        ("[smtp]\ntimeout = -inf\n", "'smtp.timeout' must be a number above 0 and at most 3600, not float -inf"),
        ("[bounces]\nwindow_days = 99999999\n", "'bounces.window_days' must be a whole number from 0 to 3650"),
        (
            "[serve]\nport = 70000\n",
            r"'serve.port' must be a whole number from 1 to 65535, not int 70000 \(set serve.port to a whole",
        ),
    ],
)
def test_numbers_out_of_range_are_refused(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text))


def test_every_number_key_has_its_range_and_each_default_is_in_it(tmp_path):
    """Each int and float of the schema, in every table, is checked against its range on load."""
    tables = [Config, *(hint for hint in typing.get_type_hints(Config).values() if dataclasses.is_dataclass(hint))]
    numbers = [(table, item) for table in tables for item in dataclasses.fields(table) if item.type in ("int", "float")]
    assert len(numbers) > 20
    for table, item in numbers:
        assert 0 <= getattr(table(), item.name) <= MAXIMUM[item.name], (table.__name__, item.name)


def test_errors_name_the_line_in_the_key_s_own_table(tmp_path):
    path = tmp_path / "broadsheet.toml"
    path.write_text('[smtp]\nport = 587\n\n[preview]\nport = 0\n\n[footer.links]\n"Our site" = 5\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broadsheet.toml:5: 'preview.port' must be"):
        load_config(path)
    path.write_text('[preview]\nsample_subscriber = { email = "a@example.org", name = 7 }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broadsheet.toml:2: 'preview.sample_subscriber.name' must be a string"):
        load_config(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('name = "Weekly\\u0000"\n', r"broadsheet.toml:1: 'name' holds the control character U\+0000"),
        ('\nfrom = "a@example.org\\r\\nBcc: b@example.org"\n', r"broadsheet.toml:2: 'from' holds a line break"),
        (
            '[brand]\nprimary_color = "red; } body { display: none"\n',
            r"broadsheet.toml:2: 'brand.primary_color' must be a CSS",
        ),
        (
            '[preview.sample_subscriber]\nname = "Sam\\u0007"\n',
            r"broadsheet.toml:2: 'preview.sample_subscriber.name' holds",
        ),
    ],
)
def test_control_characters_and_bad_colours_name_the_line(tmp_path, text, expected):
    path = tmp_path / "broadsheet.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_a_multi_line_postal_address_is_fine(tmp_path):
    path = tmp_path / "broadsheet.toml"
    path.write_text('[footer]\npostal_address = """Rue Example 1\n1000 Brussels"""\n', encoding="utf-8")
    assert load_config(path).footer.postal_address == "Rue Example 1\n1000 Brussels"


def test_a_config_that_is_no_regular_file_or_too_large_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="/dev/zero: not a regular file"):
        load_config(Path("/dev/zero"))
    big = tmp_path / "broadsheet.toml"
    big.write_text("# padding\n" * 200_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="over 1 MiB"):
        load_config(big)


def test_a_database_url_is_postgresql_and_holds_no_password(tmp_path):
    url = "postgresql://news@db.example.org:5432/broadsheet"
    assert load_config(write(tmp_path, f'[database]\nurl = "{url}"\n')).database.url == url
    assert load_config(write(tmp_path, 'name = "x"\n')).database.url == ""  # SQLite, as before
    for written, said in (
        ("postgresql://news:hunter2@db.example.org/broadsheet", "holds a password"),
        ("postgresql://news@db.example.org/broadsheet?password=hunter2", "holds a password"),
        ("mysql://news@db.example.org/broadsheet", "must start with postgresql://"),
        ("postgresql://news@db.example.org:port/broadsheet", "is not a URL"),
    ):
        path = write(tmp_path, f'name = "x"\n[database]\nurl = "{written}"\n')
        with pytest.raises(ConfigError, match=said) as raised:
            load_config(path)
        assert f"{path}:3" in str(raised.value) and "hunter2" not in str(raised.value)
