"""The README's commands are the ones CI and a new user run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from qbo_pipeline.cli import main
from qbo_pipeline.qbo.error_catalog import catalog_markdown

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section.replace("\n   ", "\n"))


def test_readme_has_the_two_commands() -> None:
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert commands[0].startswith("pip install -e . ")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_unchanged() -> None:
    ci_script = (ROOT / ".ci" / "run").read_text()
    test_command = _readme_commands()[1]
    assert any(line.startswith(test_command) for line in ci_script.splitlines()), test_command


def test_every_cli_command_named_in_the_readme_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"qbo-pipeline ([a-z][a-z-]+)", readme))
    assert named, "the README names no qbo-pipeline command"
    assert named <= set(main.commands), named - set(main.commands)


def test_demo_data_command_fills_a_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'source.sqlite'}"
    result = CliRunner().invoke(main, ["demo-data", "--url", url, "--clients", "5"])
    assert result.exit_code == 0, result.output
    assert "deliberately invalid rows" in result.output
    again = CliRunner().invoke(main, ["demo-data", "--url", url, "--clients", "5"])
    assert again.exit_code != 0
    assert "--reset" in again.output or "reset" in again.output


def test_the_readme_error_catalog_is_the_codes_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- error-catalog:start -->", 1)[1].split(
        "<!-- error-catalog:end -->", 1)[0]
    assert section.strip() == catalog_markdown(), (
        "the README's error catalog differs from qbo_pipeline/qbo/error_catalog.py: paste "
        "the output of catalog_markdown() between the error-catalog markers")
