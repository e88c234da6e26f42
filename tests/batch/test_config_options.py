"""BatchConfig is the one options object of a run: the report's options and its reproducible command line are
derived from it, and that command line, parsed again, gives the same configuration."""

from __future__ import annotations

import pytest

from app.cli.infer import batch_config
from app.cli.main import build_parser

CASES = [
    [],
    [
        "--device",
        "cpu",
        "--formats",
        "nifti",
        "--seg-type",
        "labelmap",
        "--backend",
        "torch",
        "--threads",
        "1",
    ],
    [
        "--no-skip-empty",
        "--float64-resampling",
        "--series",
        "Modality=MR",
        "--series",
        "SeriesDescription~T1",
    ],
    ["--overlap", "0.5", "--sw-batch-size", "2", "--modality", "any", "--resume", "--no-preview"],
    ["--shard", "2/5", "--max-input-gib", "0.5", "--strict-orientation"],
    ["--cluster", "ray", "--address", "127.0.0.1:6379", "--workers", "3", "--threads-per-worker", "2"],
]


def _config(argv, tmp_path):
    args = build_parser().parse_args(argv)
    return batch_config(args)


@pytest.mark.parametrize("options", CASES)
def test_the_canonical_command_reproduces_the_configuration(options, tmp_path):
    base = [
        "infer",
        str(tmp_path / "in"),
        "--bundle",
        str(tmp_path / "bundle"),
        "--out",
        str(tmp_path / "out"),
    ]
    config = _config([*base, *options], tmp_path)
    command = config.canonical_command()
    assert command[:2] == ("unetseg", "infer")
    again = _config(list(command[1:]), tmp_path)
    assert again == config
    for word in options:
        if word.startswith("--"):
            assert word in command, (word, command)


def test_options_name_every_setting_once(tmp_path):
    config = _config(
        ["infer", str(tmp_path), "--bundle", str(tmp_path), "--out", str(tmp_path), "--max-input-gib", "2"],
        tmp_path,
    )
    options = config.options()
    assert options["read"] == {"max_bytes": 2 * 2**30, "strict_orientation": False}
    assert options["formats"] == ["nifti", "seg"] and options["inputs"] == [str(tmp_path)]
    assert "command_line" not in options


def test_the_infer_parser_is_built_from_the_configuration_fields():
    """Every option of `unetseg infer` but INPUT/--bundle/--out and the readers' two is a BatchConfig field's
    Flag, and every Flag is an option: adding an option is a field, not a parser line as well."""
    from app.batch.config import config_flags

    parser = build_parser()
    infer = next(
        action.choices["infer"]
        for action in parser._actions
        if getattr(action, "choices", None) and "infer" in action.choices
    )
    options = {a.option_strings[0]: a for a in infer._actions if a.option_strings and a.dest != "help"}
    flags = {flag.word: (f, flag) for f, flag in config_flags()}
    assert set(options) - set(flags) == {"--bundle", "--out", "--max-input-gib", "--strict-orientation"}
    assert set(flags) <= set(options)
    for word, (f, flag) in flags.items():
        assert options[word].dest == f.name and options[word].help == flag.help


def test_a_bad_option_value_is_refused_naming_it(tmp_path):
    from app.errors import InputError

    base = ["infer", str(tmp_path), "--bundle", str(tmp_path), "--out", str(tmp_path)]
    with pytest.raises(InputError, match="shard must be K/N"):
        _config([*base, "--shard", "2-5"], tmp_path)
    with pytest.raises(InputError, match="unknown output format"):
        _config([*base, "--formats", "png"], tmp_path)
