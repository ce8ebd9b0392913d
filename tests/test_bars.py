"""The desktop bars: waybar, polybar, i3blocks, SwiftBar/xbar and SketchyBar.

Each target's escaping is checked against a model of what its host parses (hypothesis:
any text, ``%{``, markup, ``|``, ``~~~``, newlines and control characters included, stays
text).  Then the real hosts where they run here: waybar in a headless sway (screenshots
with grim), polybar under Xvfb (screenshots with ImageMagick's import) and i3blocks (its
i3bar stream), each fed by the snippet ``tokline init`` prints and checked to show the
status in its threshold colour, to leave an injected tag as text, and to change after a
log line is appended.  SwiftBar and SketchyBar are macOS programs: their scripts run here
with SwiftBar's parsing rules modelled and a stand-in ``sketchybar`` that records its
arguments.  Screenshots are kept in .ci/artifacts/.
"""

from __future__ import annotations

import io
import json
import os
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokline import cli
from tokline.commands.demo import install_sample
from tokline.prompt import desktop, safetext
from tokline.prompt import status as fast
from tokline.prompt import template as render

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".ci" / "artifacts"
WARN_RGB = (0xFF, 0xB5, 0x2A)  # render.COLOURS["warn"]
RED_RGB = (0xFF, 0x00, 0x00)  # what an injected tag or span would paint
# A template with an injection for every host: polybar's background tag, a Pango span, a
# SwiftBar parameter and separator.  The quota's 63 % in the sample is at warn (50).
# What changes comes first, where the screenshots see it.
TEMPLATE = ("{today.tokens} · 7d {quota.7d} "
            "%{{B#ff0000}}<span background='#ff0000'>inj</span>%{{B-}} | color=red ~~~")

# -- models of what each host parses ---------------------------------------------------

HOSTILE = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from([*"%{}<>&'\"|~-\\n\n\t\r ", "\x1b", "\x00", "\u202e",
                                      "\x1e", "\u2060", "é", "日"])),
)
LEVELS = st.sampled_from([None, render.WARN, render.CRIT])
SPANS = st.lists(st.tuples(HOSTILE, LEVELS), max_size=6)


def cleaned(found: list[render.Span]) -> str:
    """The text every target shows, before its own escaping."""
    return "".join(safetext.clean(text.replace("\n", " ").replace("\t", " "),
                                  render.SPAN_LIMIT, render.LEFT if text == render.LEFT else "")
                   for text, _ in found)


def polybar_parse(out: str) -> tuple[str, list[str]]:
    """(text, tags) as polybar 3.6's tag parser reads a line (src/tags/parser.cpp: ``%{``
    opens a tag up to ``}``, nothing escapes it)."""
    text: list[str] = []
    tags: list[str] = []
    i = 0
    while i < len(out):
        if out.startswith("%{", i):
            end = out.find("}", i)
            assert end > 0, f"unclosed tag in {out!r}"
            tags.append(out[i + 2:end])
            i = end + 1
        else:
            text.append(out[i])
            i += 1
    return "".join(text), tags


def pango_parse(out: str) -> tuple[str, list[dict[str, str]]]:
    """(text, the attributes of each element) of Pango markup, which is XML."""
    root = ET.fromstring(f"<markup>{out}</markup>")
    return "".join(root.itertext()), [dict(e.attrib) for e in root.iter() if e is not root]


def swiftbar_parse(output: str) -> tuple[list[tuple[str, dict[str, str]]],
                                         list[tuple[str, dict[str, str]]]]:
    """(header, body) of a plugin's output as SwiftBar reads it (MenuLineParameters: the
    title ends at the first ``|``, then ``key=value`` parameters), split at ``---``."""
    header: list[tuple[str, dict[str, str]]] = []
    body: list[tuple[str, dict[str, str]]] = []
    part = header
    for line in output.split("\n"):
        if line.strip() == "---":
            part = body
            continue
        title, bar, rest = line.partition("|")
        params = dict(p.split("=", 1) for p in rest.split()) if bar else {}
        part.append((title.rstrip(" "), params))
    return header, body


@settings(max_examples=200, deadline=None)
@given(SPANS, st.booleans())
def test_polybar_text_never_opens_a_tag(found: list[render.Span], color: bool) -> None:
    out = render.encode(found, "polybar", color)
    text, tags = polybar_parse(out)
    allowed = {f"F{c}" for c in render.COLOURS.values()} | {"F-"}
    assert set(tags) <= allowed
    assert text.replace(render.JOINER, "") == cleaned(found).replace(render.JOINER, "")
    assert "\n" not in out


@pytest.mark.parametrize("target", ["i3blocks", "waybar"])
@settings(max_examples=200, deadline=None)
@given(found=SPANS, color=st.booleans())
def test_pango_text_is_text(target: str, found: list[render.Span], color: bool) -> None:
    # the time-left placeholder is in pre-rendered lines only, filled in before they show
    out = render.encode(found, target, color).replace(render.LEFT, "35m")
    text, elements = pango_parse(out)
    assert text == cleaned(found).replace(render.LEFT, "35m")
    spans = [{"foreground": c} for c in render.COLOURS.values()]
    assert all(e in spans for e in elements)
    assert not elements or (target == "i3blocks" and color)


@settings(max_examples=200, deadline=None)
@given(SPANS, st.booleans())
def test_swiftbar_text_stays_one_title(found: list[render.Span], color: bool) -> None:
    out = render.encode(found, "swiftbar", color)
    assert "|" not in out and "\n" not in out and "~~~" not in out and "\\n" not in out
    assert not out.lstrip().startswith("-")
    shown = out.replace(render.JOINER, "")
    assert shown == cleaned(found).replace(render.JOINER, "").replace("|", "\u2223")


@settings(max_examples=200, deadline=None)
@given(SPANS)
def test_sketchybar_text_is_one_argument(found: list[render.Span]) -> None:
    out = render.encode(found, "sketchybar")
    assert out == cleaned(found) and "\n" not in out


def hostile_view(text: str, used: float) -> dict[str, Any]:
    now = time.time()
    return {"today": {"cost_usd": 1.5, "total_tokens": 1000, "end": now + 3600,
                      "unpriced": False, "sources": {text: {"cost_usd": 1.0, "unpriced": False}}},
            "quota": [{"source": text, "window": "5h", "used_percent": used, "kind": "official",
                       "window_s": 18000.0, "resets_at": now + 600},
                      {"source": "codex", "window": text, "used_percent": 0.0,
                       "kind": "official", "resets_at": now + 600}],
            "thresholds": {"warn": 50, "critical": 90}}


@settings(max_examples=150, deadline=None)
@given(HOSTILE, HOSTILE, st.floats(0, 150))
def test_whole_outputs_hold_their_shape(literal: str, name: str, used: float) -> None:
    template = (literal.replace("{", "{{").replace("}", "}}").replace("[", "\\[")
                .replace("]", "\\]") + " {today.cost} [{quota.5h}]")
    parts = render.parse_template(template)
    view = hostile_view(name, used)
    level = render.level_of(used, 50, 90)
    now = time.time()
    waybar = json.loads(desktop.output("waybar", view, parts, now, 7200.0))
    assert set(waybar) == {"text", "tooltip", "class", "percentage"}
    assert waybar["class"] == (level or "ok") and waybar["percentage"] == round(used)
    for markup in (waybar["text"], waybar["tooltip"]):
        assert pango_parse(markup)[1] == []
    assert waybar["text"].endswith(" (stale 2h)")
    header, body = swiftbar_parse(desktop.output("swiftbar", view, parts, now, None))
    assert len(header) == 1 and body
    for _, params in header + body:
        assert set(params) <= {"symbolize", "emojize", "color"}
    assert header[0][1].get("color") == (render.COLOURS[level] if level else None)
    label, colour = desktop.output("sketchybar", view, parts, now, None).split("\n")
    assert label.startswith("label=")
    assert colour == f"label.color={render.colour(level, 'sketchybar')}"
    for target in ("polybar", "i3blocks"):
        assert "\n" not in desktop.output(target, view, parts, now, None)


def test_the_fast_path_answers_the_line_targets() -> None:
    assert fast.TARGETS == render.LINE_TARGETS
    assert set(render.TARGETS) - set(render.LINE_TARGETS) == {"waybar", "swiftbar",
                                                              "sketchybar"}


def test_one_colour_per_level_and_target() -> None:
    assert render.colour(render.WARN, "polybar") == "#ffb52a"
    assert render.colour(render.CRIT, "sketchybar") == "0xffff5555"
    assert render.colour(None, "sketchybar") == "0xffffffff"
    values: dict[str, render.Value | None] = {"a": ("50%", render.WARN), "b": ("x", None)}
    parts = render.parse_template("{b} {a}")
    assert render.render(parts, values, "polybar") == "x %{F#ffb52a}50%%{F-}"
    assert render.render(parts, values, "i3blocks") \
        == 'x <span foreground="#ffb52a">50%</span>'
    assert render.render(parts, values, "polybar", False) == "x 50%"
    # a % that ends one span and a { that starts the next are one run, escaped as read
    assert render.encode([("50%", None), ("{x}", None)], "polybar") == "50%\u2060{x}"


# -- a home with logs, and the snippets tokline init prints ----------------------------


@pytest.fixture
def bar_home(home: Path, tmp_path: Path) -> Path:
    """The sample's logs scanned, thresholds at 50/90 and TEMPLATE configured; a
    ``tokline`` launcher in tmp_path/bin for the snippets."""
    install_sample(home)
    config = home / ".config" / "tokline"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f"[status]\ntemplate = {json.dumps(TEMPLATE)}\n"
        "[thresholds]\nwarn = 50\ncritical = 90\n")
    assert cli.main(["scan", "-q"]) == 0
    launcher = tmp_path / "bin" / "tokline"
    launcher.parent.mkdir()
    launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tokline \"$@\"\n")
    launcher.chmod(0o755)
    return home


def tokens_of(text: str) -> float:
    """Millions of today's tokens, where TEMPLATE puts them (how many of the sample's fall
    on today depends on the time of day)."""
    figure = text.replace(render.JOINER, "").split(" ", 1)[0]
    assert figure.endswith("M"), text
    return float(figure[:-1])


def launcher(tmp_path: Path) -> str:
    return str(tmp_path / "bin" / "tokline")


def snippet(tmp_path: Path, name: str) -> str:
    """What ``tokline init NAME --bin LAUNCHER`` prints."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["init", name, "--bin", launcher(tmp_path)]) == 0
    return out.getvalue()


def append(home: Path, n: int, tokens: int = 5_000_000) -> None:
    log = next((home / ".claude").rglob("*.jsonl"))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    with log.open("a") as fh:
        fh.write(json.dumps({"type": "assistant", "timestamp": stamp, "requestId": f"b{n}",
                             "sessionId": "s", "message": {"id": f"b{n}",
                                                           "model": "claude-opus-4-5",
                                                           "usage": {"input_tokens": tokens}}})
                 + "\n")


def test_init_prints_each_bar_snippet(bar_home: Path, tmp_path: Path) -> None:
    binary = launcher(tmp_path)
    waybar = snippet(tmp_path, "waybar")
    body = "\n".join(line for line in waybar.splitlines() if not line.startswith("//"))
    module = json.loads("{" + body.rstrip().rstrip(",") + "}")["custom/tokline"]
    assert module["return-type"] == "json" and "interval" not in module
    assert shlex.split(module["exec"]) == [binary, "watch", "--target", "waybar"]
    assert f"exec = {binary} watch --target polybar\ntail = true" in snippet(tmp_path, "polybar")
    i3blocks = snippet(tmp_path, "i3blocks")
    assert f"command={binary} watch --target i3blocks" in i3blocks
    assert "interval=persist\nmarkup=pango" in i3blocks
    swiftbar = snippet(tmp_path, "swiftbar")
    assert "<swiftbar.type>streamable</swiftbar.type>" in swiftbar
    assert f"exec {binary} status --target swiftbar" in swiftbar
    assert f"args=$({binary} status --target sketchybar)" in snippet(tmp_path, "sketchybar")
    assert "__tokline_bin=" in snippet(tmp_path, "bash")  # the shells' snippets are as before


def test_status_waybar_is_one_object(bar_home: Path, tmp_path: Path) -> None:
    proc = subprocess.run([launcher(tmp_path), "status", "--target", "waybar"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    shown = json.loads(proc.stdout)
    assert set(shown) == {"text", "tooltip", "class", "percentage"}
    assert shown["class"] == "warn" and shown["percentage"] == 63
    assert "%{B#ff0000}&lt;span background=&#39;#ff0000&#39;&gt;inj" in shown["text"]
    assert pango_parse(shown["tooltip"])[0].startswith("Today $")


# -- running the scripts and hosts ------------------------------------------------------


def test_watch_waybar_streams_one_object_per_change(bar_home: Path, tmp_path: Path) -> None:
    # stdin /dev/null, as sway and waybar give a module: its end does not end the stream
    plain = plain_status(tmp_path)
    proc = subprocess.Popen([launcher(tmp_path), "watch", "--target", "waybar"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    lines = Lines(proc.stdout)
    try:
        first = lines.until(lambda line: True, 30)
        assert first, "tokline watch printed nothing"
        shown = json.loads(first[0])
        assert set(shown) == {"text", "tooltip", "class", "percentage"}
        assert shown["class"] == "warn" and shown["percentage"] == 63
        assert pango_parse(shown["text"]) == (plain, [])
        append(bar_home, 1)
        second = lines.until(lambda line: True, 15)
        assert second, "no new object after a log line"
        assert tokens_of(json.loads(second[0])["text"]) >= tokens_of(plain) + 4.9
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def leftovers(home: Path) -> list[int]:
    """Processes (ours to see) whose environment has this HOME: what a bar left behind."""
    found = []
    marker = f"HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def assert_nothing_left(home: Path, what: str, besides: tuple[int, ...] = ()) -> None:
    """The bar's tokline processes end once it is gone (by their parent's exit or their
    stdin's end); any left after 10 s are ended by id and fail the test."""
    deadline = time.monotonic() + 10
    while (left := [p for p in leftovers(home) if p not in besides]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{what} left processes behind: {left}"


class Lines:
    """The lines of a child's stdout as they come (os.read: a buffered readline would keep
    lines select cannot see)."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self.buffer = b""

    def until(self, done: Callable[[str], bool], timeout: float) -> list[str]:
        """Lines up to the first that is ``done`` (included), or what came in ``timeout``."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                lines.append(line.decode("utf-8"))
                if done(lines[-1]):
                    return lines
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return lines
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return lines
            self.buffer += chunk


def plain_status(tmp_path: Path) -> str:
    proc = subprocess.run([launcher(tmp_path), "status", "--target", "plain"],
                          capture_output=True, text=True, timeout=60, check=True)
    return proc.stdout.rstrip("\n")


def test_swiftbar_plugin_prints_title_and_menu(bar_home: Path, tmp_path: Path) -> None:
    plugin = tmp_path / "tokline.1m.sh"
    plugin.write_text(snippet(tmp_path, "swiftbar"))
    env = {k: v for k, v in os.environ.items() if k != "SWIFTBAR"}
    plain = plain_status(tmp_path)
    assert " · 7d 63%* %{B#ff0000}<span" in plain and plain.endswith("| color=red ~~~")
    proc = subprocess.run(["sh", str(plugin)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    header, body = swiftbar_parse(proc.stdout.rstrip("\n"))
    assert len(header) == 1
    title, params = header[0]
    assert title.replace(render.JOINER, "") == plain.replace("|", "\u2223")
    assert params == {"symbolize": "false", "emojize": "false", "color": "#ffb52a"}
    assert [t.split(" $")[0] for t, _ in body[:3]] == ["Today", "This week", "This month"]
    assert any(t.startswith("codex 7d 63%*") and p.get("color") == "#ffb52a" for t, p in body)
    assert all(p.get("color") is None for t, p in body if not t.startswith("codex 7d"))
    # in SwiftBar (SWIFTBAR=1) it streams: ~~~, then the plugin's lines, on each change
    stream = subprocess.Popen(["sh", str(plugin)], env={**env, "SWIFTBAR": "1"},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    lines = Lines(stream.stdout)
    try:
        first = lines.until(lambda line: line.startswith("This month"), 30)
        assert first[:2] == ["~~~", proc.stdout.split("\n")[0]]
        append(bar_home, 1)
        assert lines.until(lambda line: line == "~~~", 15)[-1:] == ["~~~"]
        second = lines.until(lambda line: line.startswith("This month"), 5)
        assert second and tokens_of(second[0]) >= tokens_of(first[1]) + 4.9
    finally:
        stream.terminate()
        stream.wait(10)
        assert stream.stdout is not None
        stream.stdout.close()


def test_sketchybar_item_sets_label_and_colour(bar_home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fakebin"
    fake.mkdir()
    record = tmp_path / "args"
    (fake / "sketchybar").write_text(
        f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {shlex.quote(str(record))}\n")
    (fake / "sketchybar").chmod(0o755)
    script = tmp_path / "tokline.sh"
    script.write_text(snippet(tmp_path, "sketchybar"))
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "NAME": "tokline"}
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = record.read_bytes().decode().split("\0")[:-1]
    assert args == ["--set", "tokline", f"label={plain_status(tmp_path)}",
                    "label.color=0xffffb52a"]


def missing(*programs: str) -> list[str]:
    return [p for p in programs if shutil.which(p) is None]


@pytest.mark.scanner_independent
@pytest.mark.skipif(bool(missing("i3blocks")), reason="i3blocks missing (apt-get install "
                                                      "i3blocks; .ci/run does)")
def test_i3blocks_persist_block_streams_pango(bar_home: Path, tmp_path: Path) -> None:
    conf = tmp_path / "i3blocks.conf"
    conf.write_text(snippet(tmp_path, "i3blocks"))
    proc = subprocess.Popen(["i3blocks", "-c", str(conf)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    assert proc.stdout is not None and proc.stdin is not None
    lines = Lines(proc.stdout)

    def block(line: str) -> dict[str, Any] | None:
        try:
            update = json.loads(line.lstrip(","))
        except ValueError:
            return None
        if not isinstance(update, list):
            return None
        return next((b for b in update if b.get("name") == "tokline" and b.get("full_text")),
                    None)

    try:
        first = lines.until(lambda line: block(line) is not None, 30)
        shown = block(first[-1]) if first else None
        assert shown is not None, f"no tokline block in {first}"
        assert shown["markup"] == "pango"
        text, elements = pango_parse(shown["full_text"])
        assert text == plain_status(tmp_path)
        assert elements == [{"foreground": "#ffb52a"}]  # the quota at warn, the rest plain
        append(bar_home, 1)
        later = lines.until(lambda line: (b := block(line)) is not None
                            and b["full_text"] != shown["full_text"], 15)
        assert later and block(later[-1]) not in (None, shown)
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
    assert_nothing_left(bar_home, "i3blocks")


# -- screenshots ----------------------------------------------------------------------


def read_ppm(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGB bytes) of a binary PPM (P6, maxval 255)."""
    fields: list[bytes] = []
    pos = 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P6" and fields[3] == b"255", fields
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos + 1:pos + 1 + width * height * 3]


def write_png(path: Path, width: int, height: int, rgb: bytes) -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    rows = b"".join(b"\0" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class Shot:
    """A screenshot's top ``rows`` (the bar)."""

    def __init__(self, ppm: bytes, rows: int) -> None:
        self.width, height, rgb = read_ppm(ppm)
        self.height = min(rows, height)
        self.rgb = rgb[:self.width * self.height * 3]

    def count(self, colour: tuple[int, int, int], tolerance: int = 40) -> int:
        r, g, b = colour
        data = self.rgb
        return sum(1 for i in range(0, len(data), 3)
                   if abs(data[i] - r) <= tolerance and abs(data[i + 1] - g) <= tolerance
                   and abs(data[i + 2] - b) <= tolerance)

    def save(self, name: str) -> None:
        write_png(ARTIFACTS / name, self.width, self.height, self.rgb)


def wait_for(take: Callable[[], Shot | None], ready: Callable[[Shot], bool], timeout: float
             ) -> Shot | None:
    deadline = time.monotonic() + timeout
    shot = None
    while time.monotonic() < deadline:
        shot = take()
        if shot is not None and ready(shot):
            return shot
        time.sleep(0.25)
    return shot


def check_bar(home: Path, take: Callable[[], Shot | None], name: str,
              logs: Callable[[], str]) -> None:
    """The bar shows the status in the warn colour (the quota at 63 %: the module ran and
    its colour markup or class took), no injected red, and a change after a log line."""
    first = wait_for(take, lambda s: s.count(WARN_RGB) >= 20, 30)
    assert first is not None, f"no screenshot of {name}:\n{logs()}"
    first.save(f"{name}.png")
    assert first.count(WARN_RGB) >= 20, f"{name} shows no status in the warn colour " \
                                        f"(.ci/artifacts/{name}.png):\n{logs()}"
    assert first.count(RED_RGB, 10) == 0, f"an injected tag painted red in {name}"
    append(home, 1)
    after = wait_for(take, lambda s: s.rgb != first.rgb, 15)
    assert after is not None
    after.save(f"{name}-after.png")
    assert after.rgb != first.rgb, f"{name} did not change after a log line:\n{logs()}"


@contextmanager
def session(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a session of its own, ended with its group."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def as_user() -> list[str]:
    """sway refuses to run as root ("Unable to drop root"): as root, it runs in a user
    namespace as uid 1000, which is root outside (the files it reads stay its own)."""
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000"] \
        if os.geteuid() == 0 else []


WAYBAR_CSS = """* { font-family: monospace; font-size: 14px; }
window#waybar { background: #000000; color: #ffffff; }
#custom-tokline.warn { color: #ffb52a; }
#custom-tokline.crit { color: #ff5555; }
"""


@pytest.mark.scanner_independent
@pytest.mark.skipif(bool(missing("sway", "waybar", "grim", "unshare")),
                    reason="sway, waybar or grim missing (apt-get install sway waybar grim; "
                           ".ci/run does)")
def test_waybar_in_headless_sway(bar_home: Path, tmp_path: Path) -> None:
    if as_user():
        probe = subprocess.run([*as_user(), "true"], capture_output=True, text=True,
                               timeout=20)
        if probe.returncode != 0:
            pytest.skip(f"sway cannot run as root and no user namespace here: {probe.stderr}")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    body = "\n".join(line for line in snippet(tmp_path, "waybar").splitlines()
                     if not line.startswith("//"))
    config = {"layer": "top", "position": "top", "height": 30,
              "modules-left": ["custom/tokline"],
              **json.loads("{" + body.rstrip().rstrip(",") + "}")}
    (tmp_path / "waybar.json").write_text(json.dumps(config))
    (tmp_path / "waybar.css").write_text(WAYBAR_CSS)
    (tmp_path / "sway.conf").write_text(
        "xwayland disable\noutput HEADLESS-1 resolution 1024x120\n"
        f"exec waybar -c {tmp_path}/waybar.json -s {tmp_path}/waybar.css"
        f" > {tmp_path}/waybar.log 2>&1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "DISPLAY")}
    env.update(XDG_RUNTIME_DIR=str(runtime), WLR_BACKENDS="headless", WLR_HEADLESS_OUTPUTS="1",
               WLR_LIBINPUT_NO_DEVICES="1", WLR_RENDERER="pixman")
    sway_log = tmp_path / "sway.log"

    def logs() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in (sway_log, tmp_path / "waybar.log") if p.exists())

    def take() -> Shot | None:
        sockets = [p.name for p in runtime.glob("wayland-*") if not p.name.endswith(".lock")]
        if not sockets:
            return None
        proc = subprocess.run([*as_user(), "grim", "-t", "ppm", "-"], capture_output=True,
                              env={**env, "WAYLAND_DISPLAY": sockets[0]}, timeout=20)
        return Shot(proc.stdout, 30) if proc.returncode == 0 and proc.stdout else None

    with session([*as_user(), "sway", "-c", str(tmp_path / "sway.conf")], env, sway_log) \
            as sway:
        time.sleep(0.3)
        if sway.poll() is not None:
            pytest.fail(f"sway did not start:\n{logs()}")
        check_bar(bar_home, take, "waybar", logs)
    assert_nothing_left(bar_home, "waybar")


POLYBAR_INI = """[bar/tokline]
width = 100%
height = 30
background = #000000
foreground = #ffffff
font-0 = monospace:size=12
modules-left = tokline

"""


@pytest.mark.scanner_independent
@pytest.mark.skipif(bool(missing("polybar", "Xvfb", "import")),
                    reason="polybar, Xvfb or ImageMagick missing (apt-get install polybar "
                           "xvfb imagemagick; .ci/run does)")
def test_polybar_under_xvfb(bar_home: Path, tmp_path: Path) -> None:
    (tmp_path / "polybar.ini").write_text(POLYBAR_INI + snippet(tmp_path, "polybar"))
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1024x120x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 20)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        assert number, "Xvfb did not start"
        env = {**os.environ, "DISPLAY": f":{number}"}
        log = tmp_path / "polybar.log"

        def logs() -> str:
            return log.read_text(errors="replace")[-3000:] if log.exists() else ""

        def take() -> Shot | None:
            proc = subprocess.run(["import", "-window", "root", "-depth", "8", "ppm:-"],
                                  capture_output=True, env=env, timeout=20)
            return Shot(proc.stdout, 30) if proc.returncode == 0 and proc.stdout else None

        with session(["polybar", "-c", str(tmp_path / "polybar.ini"), "tokline"], env, log):
            check_bar(bar_home, take, "polybar", logs)
        assert_nothing_left(bar_home, "polybar", besides=(xvfb.pid,))
    finally:
        os.close(read_fd)
        xvfb.terminate()
        xvfb.wait(10)
