"""The one declaration of every variable and setting, and its one reader (nodes/config.py): the variable wins
over the setting, and every bad value is refused the same way, naming the variable or the setting, the value
and what is allowed (start-ahead used to mean 0 silently, the window its default, an unknown layout auto)."""
import pytest

from nodes import config
from nodes.errors import PixVerseInputError


def test_nothing_set_is_the_declared_defaults():
    read = config.load({}, env={})
    assert read == config.Config() and read.sources == {}
    assert (read.start_ahead, read.layout, read.unavailable_window, read.allowed_hosts) == (0, None, 120.0, ())


def test_start_ahead_from_the_variable_then_the_setting():
    setting = config.START_AHEAD.setting
    assert config.load({setting: 4}, env={}).start_ahead == 4
    assert config.load({setting: 4.0}, env={}).start_ahead == 4  # a number setting may come back as a float
    read = config.load({setting: 4}, env={config.START_AHEAD.env: "2"})
    assert read.start_ahead == 2 and read.source("start_ahead") == "env"
    assert config.load({setting: ""}, env={config.START_AHEAD.env: " "}).start_ahead == 0


@pytest.mark.parametrize("env, setting, named", [
    ({config.START_AHEAD.env: "many"}, {}, "RUNWARE_PIXVERSE_START_AHEAD = 'many'"),
    ({config.START_AHEAD.env: "2.5"}, {}, "RUNWARE_PIXVERSE_START_AHEAD = '2.5'"),
    ({config.START_AHEAD.env: "-1"}, {}, "RUNWARE_PIXVERSE_START_AHEAD = '-1'"),
    ({}, {config.START_AHEAD.setting: 65}, "(Runware.PixVerse.StartAhead) = 65"),
    ({config.UNAVAILABLE_WINDOW.env: "-5"}, {}, "RUNWARE_PIXVERSE_UNAVAILABLE_WINDOW = '-5'"),
    ({config.MIN_BALANCE.env: "nan"}, {}, "RUNWARE_PIXVERSE_MIN_BALANCE = 'nan'"),
    ({}, {config.ALLOW_UNKNOWN_COST.setting: "sometimes"}, "(Runware.PixVerse.AllowUnknownCost) = 'sometimes'"),
    ({}, {config.LAYOUT.setting: "newest"}, "(Runware.PixVerse.Layout) = 'newest'"),
    ({}, {config.PROMPT_LIMIT.setting: True}, "(Runware.PixVerse.PromptLimit) = True"),
])
def test_a_bad_value_is_refused_naming_it_the_value_and_what_is_allowed(env, setting, named):
    with pytest.raises(PixVerseInputError) as err:
        config.load(setting, env=env)
    text = str(err.value)
    assert named in text and "Allowed:" in text, text


def test_allowed_hosts_are_a_list_and_the_table_lists_every_option():
    assert config.load({}, env={config.ALLOWED_HOSTS.env: "Studio.lan., .example, *"}).allowed_hosts == (
        "studio.lan", ".example", "*")
    table = config.markdown_table()
    assert all(f"`{o.env}`" in table for o in config.OPTIONS)
    assert len(table.splitlines()) == 2 + len(config.OPTIONS)


def test_the_settings_file_is_read_from_the_user_directory(tmp_path):
    (tmp_path / "default").mkdir()
    (tmp_path / "default" / config.SETTINGS_FILE).write_text('{"Runware.PixVerse.DailyLimit": 2.5}')
    read = config.load(user_dir=tmp_path, env={})
    assert read.daily_limit == 2.5 and read.source("daily_limit") == "setting"
    assert config.load(user_dir=tmp_path / "none", env={}) == config.Config()  # no file: nothing set


def test_the_command_line_refuses_a_bad_variable_before_anything(tmp_path, monkeypatch, capsys):
    from nodes.cli import main as cli

    monkeypatch.setenv(config.START_AHEAD.env, "many")
    code = cli.main(["generate", "text-to-video", "--prompt", "a red fox in snow", "--offline",
                     "--out", str(tmp_path / "out"), "--job-seconds", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "RUNWARE_PIXVERSE_START_AHEAD = 'many'" in err and "Allowed:" in err
    assert not (tmp_path / "out" / "pixverse-ledger.sqlite3").exists()  # refused before the ledger opened
