"""Every example of docs/actions.md "## The kits" runs as written.

The section is read block by block, per ``### <kit>`` subsection:

- a ```toml block is the settings file (``oneiric.toml``) of the examples after
  it in its subsection (until the next ```toml block);
- a ```python block whose first line is ``# file: <path>`` is a module the
  examples import: it is written under an import directory on ``sys.path``
  (and ``PYTHONPATH`` for the CLI);
- every other ```python block is the body of an ``async def`` with ``actions``
  bound to a real ``Actions`` over a real ``LifecycleManager`` built from that
  settings file (``make_actions``), and it must finish without an error;
- every ``$ oneiric action invoke ...`` line of a ```console block runs as a
  real subprocess (``ONEIRIC_STATE_DIR`` and ``ONEIRIC_CONFIG`` in tmp,
  ``VAR=value`` prefixes as its environment) and must exit 0, or ``N`` when
  the line ends with ``# exit N``; output shown under it must match stdout
  (stderr for a failure), ``...`` standing for any text.

The examples' hosts are real local servers: ``https://api.example.com`` and
the Slack webhook URL are replaced by an HTTPS server on 127.0.0.1 (trustme
CA), whose CA the tests add to the network kits' settings (``verify``, and
``allowed_hosts`` for ``http.fetch``).  ``${secret:NAME}`` values come from
``ONEIRIC_SECRET_NAME`` variables set here.

Skipped, not failed, when docs/actions.md is not there (an sdist).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import textwrap
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parents[3] / "docs" / "actions.md"
SECTION = "## The kits"

# -------------------------------------------------------------- the docs


@dataclass(frozen=True)
class Block:
    """One runnable block: its kit subsection, language, text and the settings before it."""

    kit: str
    index: int
    lang: str
    text: str
    toml: str

    @property
    def id(self) -> str:
        return f"{self.kit.split()[0].strip('`')}-{self.lang}-{self.index}"


def kits_section(markdown: str) -> str:
    """The text of "## The kits" up to the next ``## `` heading."""
    start = markdown.index(SECTION)
    rest = markdown[start + len(SECTION):]
    end = re.search(r"^## ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def parse_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    for part in re.split(r"^### ", kits_section(markdown), flags=re.MULTILINE)[1:]:
        kit = part.splitlines()[0].strip().strip("`")
        toml = ""
        for index, match in enumerate(_FENCE.finditer(part)):
            lang, text = match.group(1), match.group(2)
            if lang == "toml":
                toml = text
            elif lang in ("python", "console"):
                blocks.append(Block(kit, index, lang, text, toml))
    return blocks


def _load() -> list[Block]:
    return parse_blocks(DOCS.read_text(encoding="utf-8")) if DOCS.is_file() else []


BLOCKS = _load()
FILE_MARK = re.compile(r"\A# file: (\S+)\n")
MODULES = [b for b in BLOCKS if b.lang == "python" and FILE_MARK.match(b.text)]
EXAMPLES = [b for b in BLOCKS if b.lang == "python" and not FILE_MARK.match(b.text)]
CONSOLES = [b for b in BLOCKS if b.lang == "console"]


def _params(blocks: list[Block]) -> list[Any]:
    if not DOCS.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{DOCS} not present"))]
    return [pytest.param(b, id=b.id) for b in blocks]


@dataclass(frozen=True)
class Command:
    env: dict[str, str]
    argv: list[str]
    exit_code: int
    expected: str


def parse_console(text: str) -> list[Command]:
    """``$ `` lines (``\\`` continues one) with the output lines under each."""
    commands: list[Command] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"console output before any command: {lines[i]!r}")
        command = lines[i][2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + lines[i].strip()
        i += 1
        output: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        exit_code = 0
        marker = re.search(r"\s+# exit (\d+)$", command)
        if marker:
            exit_code, command = int(marker.group(1)), command[: marker.start()]
        words = shlex.split(command)
        env: dict[str, str] = {}
        while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
            name, _, value = words.pop(0).partition("=")
            env[name] = value
        commands.append(Command(env, words, exit_code, "\n".join(output).strip()))
    return commands


def matches(expected: Any, actual: Any) -> bool:
    """Equal, where a string ``...`` in ``expected`` stands for any text (JSON-aware)."""
    if isinstance(expected, str) and isinstance(actual, str):
        pattern = ".*".join(re.escape(p) for p in expected.split("..."))
        return re.fullmatch(pattern, actual, re.DOTALL) is not None
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(
            matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(
            matches(e, a) for e, a in zip(expected, actual, strict=True)
        )
    return type(expected) is type(actual) and bool(expected == actual)


def output_matches(expected: str, actual: str) -> bool:
    try:
        return matches(json.loads(expected), json.loads(actual))
    except ValueError:
        return matches(expected, actual.strip())


# ------------------------------------------------------- the local servers


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.seen.append((self.command, self.path, dict(self.headers), body))
        answer = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, ctx: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.socket = ctx.wrap_socket(self.socket, server_side=True,
                                      do_handshake_on_connect=False)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:  # quiet
        pass


@dataclass
class World:
    """What the examples run against: servers, secrets, import dir."""

    base: str
    ca_path: str
    modules: Path
    server: _Server

    @property
    def substitutions(self) -> dict[str, str]:
        return {"https://api.example.com": self.base,
                "https://hooks.slack.com/services/...": f"{self.base}/slack"}

    @property
    def secrets(self) -> dict[str, str]:
        return {
            "ONEIRIC_SECRET_WEBHOOK_KEY": "s3cret",
            "ONEIRIC_SECRET_SANITIZE_SALT": "docs-salt",
            "ONEIRIC_SECRET_EXAMPLE_TOKEN": "docs-token",
            "ONEIRIC_SECRET_SLACK_ALERTS_URL": f"{self.base}/alerts",
            "ONEIRIC_SECRET_SLACK_DEPLOYS_URL": f"{self.base}/deploys",
        }

    def substitute(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return text

    def settings(self, toml: str) -> str:
        """The block's settings, pointed at the local server (its CA, its host)."""
        document = tomllib.loads(self.substitute(toml))
        providers = document.get("action", {}).get("provider_settings", {})
        for table in providers.get("http.fetch", {}).values():
            table.update(allowed_hosts=["127.0.0.1"], verify=self.ca_path)
        for table in providers.get("workflow.notify", {}).values():
            table["verify"] = self.ca_path
        return dump_toml(document)


def dump_toml(document: dict[str, Any]) -> str:
    """TOML for the settings shapes the docs use (tables of scalars, lists, sub-tables)."""
    lines: list[str] = []

    def emit(table: dict[str, Any], path: list[str]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if path and (scalars or not table):
            lines.append("[" + ".".join(json.dumps(p) for p in path) + "]")
        for name, value in scalars.items():
            lines.append(f"{json.dumps(name)} = {json.dumps(value)}")
        for name, value in table.items():
            if isinstance(value, dict):
                emit(value, [*path, name])

    emit(document, [])
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    ca = trustme.CA()
    root = tmp_path_factory.mktemp("docs")
    ca_path = root / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = _Server(ctx)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    modules = root / "modules"
    for block in MODULES:
        match = FILE_MARK.match(block.text)
        assert match is not None
        target = modules / match.group(1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text[match.end():], encoding="utf-8")
        for parent in target.relative_to(modules).parents:
            init = modules / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
    try:
        yield World(f"https://127.0.0.1:{server.server_address[1]}", str(ca_path), modules,
                    server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def imports(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The docs' modules importable in-process (forgotten after the test)."""
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(world.modules))
    yield
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if str(world.modules) in str(getattr(module, "__file__", "") or ""):
            del sys.modules[name]


# ------------------------------------------------------------------ tests

NETWORK_KITS = ("http.fetch-", "workflow.notify-")



def test_the_section_has_examples_of_every_kit() -> None:
    if not DOCS.is_file():
        pytest.skip(f"{DOCS} not present")
    from oneiric.actions._catalog import KITS

    documented = " ".join(b.kit + " " + b.text for b in BLOCKS)
    missing = [key for key in KITS if key not in documented]
    assert not missing, f"kits without a runnable example in docs/actions.md: {missing}"
    assert EXAMPLES and CONSOLES


@pytest.mark.parametrize("block", _params(EXAMPLES))
async def test_python_example_runs(
    block: Block, world: World, imports: None, make_actions: Any,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    for name, value in world.secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ONEIRIC_STATE_DIR", str(tmp_path / "state"))
    actions = await make_actions(world.settings(block.toml))
    source = "async def example(actions):\n" + textwrap.indent(world.substitute(block.text), "    ")
    namespace: dict[str, Any] = {}
    exec(compile(source, f"docs/actions.md ({block.id})", "exec"), namespace)
    before = len(world.server.seen)
    await namespace["example"](actions)
    if block.id.startswith(NETWORK_KITS):  # it really went to the local server
        assert len(world.server.seen) > before, f"{block.id}: the server saw no request"


def _cli_env(world: World, tmp_path: Path, toml: str) -> dict[str, str]:
    config = tmp_path / "settings"
    config.mkdir()
    (config / "oneiric.toml").write_text(world.settings(toml), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEIRIC_")}
    env.update(world.secrets)
    env["ONEIRIC_STATE_DIR"] = str(tmp_path / "state")
    env["ONEIRIC_CONFIG"] = str(config)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(world.modules), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return env


@pytest.mark.parametrize("block", _params(CONSOLES))
def test_console_example_runs(block: Block, world: World, tmp_path: Path) -> None:
    env = _cli_env(world, tmp_path, block.toml)
    commands = parse_console(block.text)
    assert commands, f"{block.id}: no command"
    before = len(world.server.seen)
    for command in commands:
        assert command.argv[:3] == ["oneiric", "action", "invoke"], command.argv
        argv = [sys.executable, "-m", "oneiric.cli",
                *(world.substitute(a) for a in command.argv[1:])]
        extra = {k: world.substitute(v) for k, v in command.env.items()}
        proc = subprocess.run(argv, env={**env, **extra}, capture_output=True, text=True,
                              timeout=120)
        shown = f"$ {shlex.join(command.argv)}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        assert proc.returncode == command.exit_code, shown
        if command.expected:
            actual = proc.stdout if command.exit_code == 0 else proc.stderr
            assert output_matches(command.expected, actual), (
                f"{block.id}: docs show {command.expected!r}\n{shown}"
            )
    if block.id.startswith(NETWORK_KITS):
        assert len(world.server.seen) > before, f"{block.id}: the server saw no request"


# ------------------------------------------------------ the runner itself

SAMPLE = '''
## The kits

### a.kit

```python
x = 1
```
```toml
[action.selections]
"a.kit" = "p"
```
```console
$ A_B=1 oneiric action invoke a.kit \\
  --payload '{"n": 1}'
{"n": "..."}
$ oneiric action invoke a.kit --payload 'x'   # exit 4
```

### b.kit
```python
# file: pkg/mod.py
Y = 2
```

## Next
```python
ignored = True
```
'''


def test_the_runner_reads_blocks_settings_and_commands() -> None:
    blocks = parse_blocks(SAMPLE)
    assert [(b.kit, b.lang, bool(b.toml)) for b in blocks] == [
        ("a.kit", "python", False), ("a.kit", "console", True), ("b.kit", "python", False),
    ]
    first, second = parse_console(blocks[1].text)
    assert first == Command({"A_B": "1"}, ["oneiric", "action", "invoke", "a.kit", "--payload",
                                            '{"n": 1}'], 0, '{"n": "..."}')
    assert (second.exit_code, second.expected) == (4, "")
    assert FILE_MARK.match(blocks[2].text)


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ('{"a": "..."}', '{"a": "anything"}', True),
        ('{"a": "x..."}', '{"a": "xyz"}', True),
        ('{"a": "x..."}', '{"a": "yz"}', False),
        ('{"a": 1}', '{"a": 1, "b": 2}', False),
        ('{"a": 1}', '{"a": true}', False),
        ('{"a": [1, "..."]}', '{"a": [1, "q"]}', True),
        ("plain ...", "plain text\n", True),
    ],
)
def test_output_matching(expected: str, actual: str, ok: bool) -> None:
    assert output_matches(expected, actual) is ok


def test_settings_dump_round_trips() -> None:
    document = {"action": {"selections": {"a.b": "x"},
                           "provider_settings": {"a.b": {"x": {"n": 1, "l": ["q"],
                                                               "routes": {"r": {"url": "u"}}}}}}}
    assert tomllib.loads(dump_toml(document)) == document
