"""plugins, list, explain, --version, --help: output shapes and the error paths."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_every_builtin_command(oneiric):
    result = oneiric("--help", base=False)
    assert result.code == 0, result.err
    for name in ("plugins", "list", "explain", "status", "health", "swap", "pause", "drain",
                 "resume", "activity", "demo"):
        assert f"  {name} " in result.out
    assert "_ONEIRIC_COMPLETE" in result.out


def test_help_imports_no_command_module_nor_heavy_dependencies(workspace):
    code = (
        "import sys\n"
        "from oneiric.cli import cli\n"
        "rc = cli.main(['--help'], prog_name='oneiric', standalone_mode=False)\n"
        "heavy = [m for m in ('oneiric.cli._cmd_registry', 'oneiric.cli._cmd_control',\n"
        "         'oneiric.cli._cmd_runtime', 'oneiric.cli._demo', 'oneiric.lifecycle',\n"
        "         'pydantic', 'asyncio', 'sqlite3') if m in sys.modules]\n"
        "print(rc, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=workspace.cwd)
    last = proc.stdout.strip().splitlines()[-1]
    rc, _, heavy = last.partition(" ")
    assert rc == "0"
    # plugin modules of other installed packages may import what they like; ours import nothing
    assert "oneiric.cli._cmd" not in heavy and "oneiric.cli._demo" not in heavy, heavy


def test_version_lists_installed_oneiric_distributions(oneiric):
    result = oneiric("--version", base=False)
    assert result.code == 0, result.err
    names = [line.split()[0] for line in result.out.splitlines()]
    assert "oneiric-cli" in names and "oneiric-core" in names and "oneiric-lifecycle" in names
    data = oneiric("--json", "--version", base=False).json()
    assert data["distributions"]["oneiric-cli"] == "0.1.0"


def test_no_command_prints_help(oneiric):
    result = oneiric(base=False)
    assert result.code == 0
    assert "Commands:" in result.out


def test_plugins_json_shape(oneiric):
    result = oneiric("plugins", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert set(data) == {"plugins", "commands", "command_errors"}
    for entry in data["plugins"]:
        assert set(entry) == {"distribution", "version", "entry_point", "module", "candidates",
                              "load_time_s", "error"}


def test_list_shows_winners_and_shadowed(oneiric):
    human = oneiric("list", "--domain", "notify", "--shadowed")
    assert human.code == 0, human.err
    assert "notify  mailer" in human.out and "smtp" in human.out
    assert "lost on priority" in human.out and "retired mailers are not allowed" in human.out

    data = oneiric("--json", "list", "--domain", "notify").json()
    assert data["shadowed"] is None
    rows = {(r["domain"], r["key"]): r for r in data["keys"]}
    mailer = rows[("notify", "mailer")]
    assert mailer["provider"] == "smtp" and mailer["source"] == "code:app"
    assert mailer["priority"] == 20 and mailer["priority_origin"] == "declared"
    assert mailer["candidates"] == 4 and mailer["error"] is None

    data = oneiric("list", "--domain", "notify", "--shadowed", "--json").json()
    losers = {r["provider"]: r["reason"] for r in data["shadowed"] if r["key"] == "mailer"}
    assert losers["sendgrid"] == "lost on priority 10 < 20"
    assert losers["retired"].startswith("vetoed by cliapp-policy")


def test_explain_ranks_winner_first_with_rules(oneiric):
    result = oneiric("explain", "notify", "mailer")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "notify/mailer -> smtp"
    table = lines[lines.index("") + 1:]
    assert table[1].split()[:3] == ["1", "*", "smtp"]
    assert any("lost on priority 10 < 20" in line and "sendgrid" in line for line in table)

    data = oneiric("explain", "notify", "mailer", "--json").json()
    assert set(data) == {"domain", "key", "tenant", "require", "selected", "why", "candidates"}
    assert data["selected"] == "smtp"
    assert data["candidates"][0]["provider"] == "smtp"
    assert set(data["candidates"][0]) == {"provider", "source", "priority", "priority_origin",
                                          "stack_level", "registered", "selected", "reason"}


def test_explain_require_and_tenant(oneiric):
    data = oneiric("--json", "explain", "notify", "mailer", "--require", "tls",
                   "--tenant", "acme").json()
    assert data["require"] == ["tls"] and data["tenant"] == "acme"
    assert data["selected"] == "smtp"
    reasons = {c["provider"]: c["reason"] for c in data["candidates"]}
    assert reasons["sendgrid"] == "lacks capability tls"


def test_explain_unknown_domain_and_key_exit_3(oneiric):
    result = oneiric("explain", "nosuch", "mailer")
    assert result.code == 3
    assert "no candidates registered in domain 'nosuch'" in result.error_line()
    assert result.out == ""
    result = oneiric("explain", "notify", "fax", "--json")
    assert result.code == 3
    line = result.error_line()
    assert "notify/fax" in line and "mailer, sms" in line


def test_list_unknown_domain_exit_3(oneiric):
    result = oneiric("list", "--domain", "nosuch")
    assert result.code == 3
    assert "known domains:" in result.error_line()


def test_invalid_domain_name_exit_4(oneiric):
    result = oneiric("explain", "Not-Valid", "x")
    assert result.code == 4
    assert "invalid domain name" in result.error_line()


def test_usage_errors_exit_2_on_one_line(oneiric):
    result = oneiric("explain", "notify")
    assert result.code == 2
    assert "Missing argument 'KEY'" in result.error_line()
    result = oneiric("frobnicate")
    assert result.code == 2
    assert "No such command 'frobnicate'" in result.error_line()


def test_logs_never_reach_stdout(oneiric):
    result = oneiric("--debug", "list", "--json", "--domain", "notify")
    assert result.code == 0, result.err
    assert result.json()["keys"]  # stdout is pure JSON even with debug logging on


def test_shell_completion_script(workspace):
    import os

    env = {**os.environ, "_ONEIRIC_COMPLETE": "bash_source"}
    proc = subprocess.run([sys.executable, "-m", "oneiric.cli"], env=env, capture_output=True,
                          text=True, check=False, cwd=workspace.cwd)
    assert proc.returncode == 0, proc.stderr
    assert "_oneiric_completion" in proc.stdout
