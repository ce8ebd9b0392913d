"""``tokline completion bash|zsh|fish``: print the tab completion for a shell.

    eval "$(tokline completion bash)"     # ~/.bashrc
    eval "$(tokline completion zsh)"      # ~/.zshrc, after compinit
    tokline completion fish | source      # ~/.config/fish/config.fish

Or save it where the shell loads completions on demand: bash-completion's
~/.local/share/bash-completion/completions/tokline, a directory of $fpath as _tokline,
~/.config/fish/completions/tokline.fish.
"""

# Each TAB runs ``tokline completion --complete SHELL -- WORD...`` (the words after
# ``tokline``, the last one the word being completed), which prints a kind (``words``,
# ``files`` or ``dirs``) and then one candidate a line, ``VALUE<TAB>DESCRIPTION``.  So the
# scripts hold no list of commands or options: tokline answers from the parsers of the
# commands themselves (tokline.cli.COMMANDS, each module's argparse parser), and what is
# offered cannot drift from what is accepted.
#
# Importing every command to read its parser takes about half a second, too long for a
# TAB: the parsers are described once into completion.marshal in the cache directory, kept
# while no file of the installed package changed (its stamp: the package's path, version,
# and the count, newest mtime and total size of its files; the interpreter's version).  A
# TAB then costs the interpreter's start and a marshal read: the json module would import
# `re`, as long again as the rest of a TAB.  marshal trusts its input; the file is only
# read from a cache directory that is the user's own and private.  Values from the disk
# (device names from the ledger, time zones, dates near today) are looked up when their
# option is completed.
#
# A command's parser is found by its module's ``build_parser(name)`` where it has one, else
# by calling its ``run(name, [])`` with parsing made to raise: every command builds its
# parser before it does anything.  A module that never mentions ArgumentParser (doctor,
# refresh, statusline) is not called: it takes no options worth offering.

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

SCRIPTS = {"bash": "completion.bash", "zsh": "completion.zsh", "fish": "completion.fish"}
CACHE = "completion.marshal"
FORMAT = 1  # of the table; a new layout gets a new number
KINDS = ("words", "files", "dirs")

# What an option's value is, by its dest (or metavar, in capitals); its choices come first.
VALUE_KINDS = {"source": "sources", "device": "devices", "since": "dates", "until": "dates",
               "DATE": "dates", "tz": "zones", "ZONE": "zones", "FILE": "files",
               "bin": "files", "sync --target": "dirs"}

Candidate = tuple[str, str]  # (value, description)


def run(name: str, argv: list[str]) -> int:
    if argv[:1] == ["--complete"]:  # a TAB: no argparse on this path
        return answer(argv[1:])
    import argparse  # noqa: PLC0415 - not on a TAB's path

    parser = argparse.ArgumentParser(prog="tokline completion", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=list(SCRIPTS))
    parser.add_argument("--bin", metavar="FILE",
                        help="tokline executable the completion asks (default: this one)")
    args = parser.parse_args(argv)
    print(script(args.shell, args.bin), end="")
    sys.stdout.flush()
    load_table()  # made now if the package changed, rather than at the first TAB
    return 0


def script(shell: str, binary: str | None = None) -> str:
    """The completion script for ``shell``, asking ``binary`` (default: this launcher)."""
    import shlex  # noqa: PLC0415
    from importlib import resources  # noqa: PLC0415

    from tokline.commands.init import tokline_path  # noqa: PLC0415

    text = resources.files("tokline.shell").joinpath(SCRIPTS[shell]).read_text("utf-8")
    return text.replace("@TOKLINE_BIN@", shlex.quote(binary or tokline_path()))


# --- a TAB ------------------------------------------------------------------------------

def answer(args: list[str]) -> int:
    """``--complete SHELL -- WORD...``: the kind, then the candidates, on stdout."""
    if not args or args[0] not in SCRIPTS:
        print("tokline completion --complete: expected bash, zsh or fish", file=sys.stderr)
        return 2
    shell, words = args[0], args[1:]
    if words[:1] == ["--"]:
        words = words[1:]
    kind, found = complete(words or [""], shell)
    out = [kind]
    for value, text in found:
        if not value.isprintable():  # a line each, and nothing the terminal would act on
            continue
        text = "".join(ch if ch.isprintable() else " " for ch in text)
        text = " ".join(text.split())
        out.append(f"{value}\t{text}" if text and shell != "bash" else value)
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def complete(words: list[str], shell: str = "fish",
             table: dict[str, Any] | None = None) -> tuple[str, list[Candidate]]:
    """What to offer for the last of ``words`` (those after ``tokline``): a kind of
    :data:`KINDS` and, for ``words``, the candidates.  Bash gets only those that start with
    the word, cut to the part after an ``=`` (bash splits ``--opt=value`` in three words);
    zsh and fish match for themselves."""
    cut = 0
    if shell == "bash":
        words, cut = join_equals(words)
        words[-1] = bash_unquote(words[-1])
    kind, found = _candidates(words, load_table() if table is None else table)
    if shell == "bash":
        word = words[-1]
        found = [(value[cut:], text) for value, text in found if value.startswith(word)]
    return kind, found


def bash_unquote(word: str) -> str:
    """The word as typed (``work\\ l``, ``'work l``) as the value it stands for: bash hands
    the completion function its words unparsed."""
    if word[:1] in ("'", '"'):
        return word[1:].rstrip(word[0])
    out = []
    escaped = False
    for ch in word:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)


def join_equals(words: list[str]) -> tuple[list[str], int]:
    """Bash's ``--opt = value`` glued again as ``--opt=value``, and how much of the last
    word bash does not replace (its ``--opt=``)."""
    out: list[str] = []
    glued = False
    for word in words:
        if word == "=" and out and out[-1].startswith("-") and "=" not in out[-1]:
            out[-1] += "="
            glued = True
        elif glued and out[-1].endswith("="):
            out[-1] += word
            glued = False
        else:
            out.append(word)
            glued = False
    last = words[-1] if words else ""
    cut = len(out[-1]) - (0 if last == "=" else len(last)) if out and "=" in out[-1] else 0
    return out, max(cut, 0)


def _candidates(words: list[str], table: dict[str, Any]) -> tuple[str, list[Candidate]]:
    *done, word = words
    if not done:
        if word.startswith("-"):
            return "words", [("--help", "list the commands"), ("--version", "tokline's version")]
        return "words", [(name, text) for name, text in table["commands"].items()]
    command = done[0]
    parser = table["parsers"].get(command)
    if parser is None:
        return "words", []
    seen: set[str] = set()
    pending: dict[str, Any] | None = None  # the option whose value comes next
    given = 0  # positional words so far (in this parser)
    only_positional = False
    for token in done[1:]:
        if pending is not None:
            pending = None
            continue
        if token == "--" and not only_positional:
            only_positional = True
        elif token.startswith("-") and token != "-" and not only_positional:
            option = _option(parser, token.split("=", 1)[0])
            if option is not None:
                seen.add(option["dest"])
                if option["takes_value"] and "=" not in token:
                    pending = option
        elif parser["subcommands"] and given == 0:
            parser = parser["subcommands"].get(token)
            if parser is None:
                return "words", []
            seen = set()
        else:
            given += 1
    if pending is not None:
        return _values(table, command, pending, "", word)
    if word.startswith("-") and not only_positional:
        name, eq, value = word.partition("=")
        if eq:
            option = _option(parser, name)
            if option is None or not option["takes_value"]:
                return "words", []
            return _values(table, command, option, name + "=", value)
        return "words", _options(parser, seen)
    if parser["subcommands"] and given == 0:
        return "words", [(name, sub["help"]) for name, sub in parser["subcommands"].items()]
    positional = _positional(parser, given)
    if positional is not None and positional["choices"]:
        return "words", [(c, "") for c in positional["choices"]]
    return "words", _options(parser, seen)  # also where a free value (a URL, a user) goes


def _option(parser: dict[str, Any], flag: str) -> dict[str, Any] | None:
    """The option ``flag`` names, exactly or (as argparse allows) by a unique prefix."""
    options: list[dict[str, Any]] = parser["options"]
    for option in options:
        if flag in option["flags"]:
            return option
    if flag.startswith("--"):
        found = [o for o in options if any(f.startswith(flag) for f in o["flags"])]
        if len(found) == 1:
            return found[0]
    return None


def _options(parser: dict[str, Any], seen: set[str]) -> list[Candidate]:
    """The long form of each option (a short one where it has no other) not given yet,
    unless it may be repeated."""
    found = []
    for option in parser["options"]:
        if option["dest"] in seen and not option["repeat"]:
            continue
        long = [f for f in option["flags"] if f.startswith("--")] or option["flags"][:1]
        found.append((long[0], option["help"]))
    return found


def _positional(parser: dict[str, Any], given: int) -> dict[str, Any] | None:
    """The positional argument the next word fills, after ``given`` positional words."""
    positionals: list[dict[str, Any]] = parser["positionals"]
    for positional in positionals:
        if positional["nargs"] in ("*", "+", "..."):
            return positional  # it takes all that is left
        if given == 0:
            return positional
        given -= 1
    return None


def _values(table: dict[str, Any], command: str, option: dict[str, Any], lead: str,
            word: str) -> tuple[str, list[Candidate]]:
    """The values of ``option``, each after ``lead`` (``--opt=`` when the word has it)."""
    if option["choices"]:
        return "words", [(lead + c, "") for c in option["choices"]]
    metavar = option["metavar"] if isinstance(option["metavar"], str) else ""
    kind = VALUE_KINDS.get(f"{command} {option['flags'][0]}") or \
        VALUE_KINDS.get(option["dest"]) or VALUE_KINDS.get(metavar)
    if kind in ("files", "dirs"):
        return kind, []
    if kind == "sources":
        # a comma-separated list: each name not in the list yet, after the list
        head, _, _ = word.rpartition(",")
        listed = set(head.split(","))
        return "words", [(f"{lead}{head}{',' if head else ''}{name}", "")
                         for name in table["sources"] if name not in listed]
    if kind == "devices":
        return "words", [(lead + name, text) for name, text in device_values()]
    if kind == "dates":
        return "words", [(lead + day, text) for day, text in date_values(word)]
    if kind == "zones":
        return "words", [(lead + zone, "") for zone in zone_values(word)]
    return "words", []


def device_values() -> list[Candidate]:
    """Every device the ledger names (as ``tokline devices`` and ``--device`` do), this one
    first, read without writing: no ledger is made and no migration runs."""
    import sqlite3  # noqa: PLC0415 - only for --device

    from tokline.prompt import statefiles  # noqa: PLC0415
    from tokline.sync.device import default_name, id_file, parse_hex  # noqa: PLC0415

    path = os.environ.get("TOKLINE_LEDGER")
    if not path:
        data = statefiles.data_dir()
        if statefiles.dir_problem(data) is not None:
            return []
        path = os.path.join(data, "ledger.sqlite3")
    names: dict[int, str] = {}
    if os.path.exists(path):
        try:
            db = sqlite3.connect(f"file:{_uri_path(os.path.abspath(path))}?mode=ro",
                                 uri=True, timeout=0.2)
            try:
                names = {int(i): str(n) for i, n in db.execute("SELECT id, name FROM devices")}
            finally:
                db.close()
        except sqlite3.Error:  # an older schema, a ledger being rebuilt: nothing to offer
            names = {}
    mine: int | None = None
    try:
        with open(id_file(path), encoding="ascii") as fh:
            mine = parse_hex(fh.read().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    own = _configured_device() or (names.get(mine) if mine is not None else None) \
        or default_name()
    found = [(own, "this device")]
    found += [(name, "") for i, name in sorted(names.items(), key=lambda d: d[1])
              if i != mine and name != own]
    return found


def _uri_path(path: str) -> str:
    """``path`` as the path of an SQLite URI (urllib.parse would import re)."""
    return path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")


def _configured_device() -> str | None:
    from tokline import config  # noqa: PLC0415
    from tokline.errors import ToklineError  # noqa: PLC0415

    try:
        return config.load().sync_device
    except ToklineError:
        return None


def date_values(word: str) -> list[Candidate]:
    """Days as ``--since``/``--until`` take them (YYYY-MM-DD, local): today and the starts
    of the periods around it; once a month is typed (``2026-11-``), each of its days."""
    import datetime as dt  # noqa: PLC0415

    today = dt.date.today()
    month = today.replace(day=1)
    last_month = (month - dt.timedelta(days=1)).replace(day=1)
    found = [(today, "today"), (today - dt.timedelta(days=1), "yesterday"),
             (today - dt.timedelta(days=6), "the last 7 days"), (month, "this month"),
             (last_month, "last month"), (today.replace(month=1, day=1), "this year")]
    try:
        first = dt.date(int(word[:4]), int(word[5:7]), 1) if len(word) >= 7 and \
            word[4] == "-" else None
    except ValueError:
        first = None
    if first is not None:
        day = first
        while day.month == first.month and day <= today:
            found.append((day, ""))
            day += dt.timedelta(days=1)
    # one candidate per day, with every name it has (on the 1st: "today, this month")
    names: dict[str, list[str]] = {}
    for day, text in found:
        said = names.setdefault(day.isoformat(), [])
        if text and text not in said:
            said.append(text)
    return [(value, ", ".join(said)) for value, said in names.items()]


def zone_values(word: str) -> list[str]:
    """IANA time zones (those of the system's database), by name."""
    import zoneinfo  # noqa: PLC0415 - only for --tz

    return sorted(z for z in zoneinfo.available_timezones() if z.startswith(word))


# --- the table of commands, options and choices ---------------------------------------------

def load_table() -> dict[str, Any]:
    """The table of :func:`build_table`, from the cache while the package is unchanged."""
    import marshal  # noqa: PLC0415 - builtin: json would import re

    from tokline.prompt import statefiles  # noqa: PLC0415

    stamp = package_stamp()
    path = os.path.join(statefiles.cache_dir(), CACHE)
    if statefiles.dir_problem(os.path.dirname(path)) is None:
        try:
            with open(path, "rb") as fh:
                cached = marshal.loads(fh.read())
            if isinstance(cached, dict) and cached.get("stamp") == stamp:
                return cached
        except (OSError, ValueError, EOFError, TypeError):
            pass
    import contextlib  # noqa: PLC0415 - not on a TAB's path, but when the package changed

    table = build_table()
    table["stamp"] = stamp
    # a read-only or foreign cache directory: built again next time
    with contextlib.suppress(OSError):
        statefiles.write_private(path, marshal.dumps(table))
    return table


def package_stamp() -> str:
    """Changes whenever a file of the installed package does (an upgrade, an edit)."""
    import tokline  # noqa: PLC0415

    root = os.path.dirname(os.path.abspath(tokline.__file__))
    count = size = newest = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                    continue
                st = entry.stat()
                count += 1
                size += st.st_size
                newest = max(newest, st.st_mtime_ns)
    return (f"{FORMAT}:{sys.hexversion}:{root}:{tokline.__version__}:{count}:{newest}:"
            f"{size}")


def build_table() -> dict[str, Any]:
    """Every command with its help, and each one's options, positional arguments and
    subcommands as its parser has them; the source names ``--source`` takes."""
    from tokline import sources  # noqa: PLC0415
    from tokline.cli import COMMANDS  # noqa: PLC0415

    parsers: dict[str, Any] = {}
    for name, (module, _) in COMMANDS.items():
        parser = command_parser(name, module)
        parsers[name] = describe(parser) if parser is not None else \
            {"options": [], "positionals": [], "subcommands": {}}
    return {"format": FORMAT, "commands": {name: text for name, (_, text) in COMMANDS.items()},
            "parsers": parsers, "sources": list(sources.NAMES)}


class _Parsed(BaseException):  # not an Exception: no ``except Exception`` may swallow it
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


def command_parser(name: str, module_name: str) -> argparse.ArgumentParser | None:
    """The parser of command ``name``; None for a command that has none (or whose module
    cannot be imported here: an extra that is not installed)."""
    import argparse  # noqa: PLC0415
    from importlib import import_module  # noqa: PLC0415

    try:
        module = import_module(module_name)
    except ImportError:
        return None
    build = getattr(module, "build_parser", None)
    if build is not None:
        parser: argparse.ArgumentParser = build(name)
        return parser
    source = getattr(module, "__file__", None) or ""
    try:
        with open(source, encoding="utf-8") as fh:
            if "ArgumentParser" not in fh.read():
                return None
    except OSError:
        return None

    def parsed(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    methods = ("parse_args", "parse_known_args", "parse_intermixed_args",
               "parse_known_intermixed_args")
    saved = {m: getattr(argparse.ArgumentParser, m) for m in methods}
    for method in methods:
        setattr(argparse.ArgumentParser, method, parsed)
    try:
        module.run(name, [])
    except _Parsed as got:
        return got.parser
    finally:
        for method, original in saved.items():
            setattr(argparse.ArgumentParser, method, original)
    return None


def describe(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """A parser's options, positional arguments and subcommands, as plain data (what
    ``--help`` shows: suppressed ones are left out)."""
    import argparse  # noqa: PLC0415

    options: list[dict[str, Any]] = []
    positionals: list[dict[str, Any]] = []
    subcommands: dict[str, Any] = {}
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        choices = [str(c) for c in action.choices] if action.choices is not None else None
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for sub, subparser in action.choices.items():
                subcommands[sub] = {"help": helps.get(sub, ""), **describe(subparser)}
        elif action.option_strings:
            options.append({
                "flags": list(action.option_strings), "dest": action.dest,
                "help": action.help or "", "metavar": action.metavar,
                "takes_value": action.nargs != 0, "choices": choices,
                "repeat": isinstance(action, (argparse._AppendAction, argparse._CountAction)),
            })
        else:
            positionals.append({"dest": action.dest, "choices": choices,
                                "nargs": action.nargs})
    return {"options": options, "positionals": positionals, "subcommands": subcommands}
