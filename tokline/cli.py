"""``tokline`` entry point: a lazy command table, so each command imports only what it uses."""

from __future__ import annotations

import sys

# name -> (module, one-line help); modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "daily": ("tokline.commands.report", "tokens and cost per local day"),
    "weekly": ("tokline.commands.report", "tokens and cost per week"),
    "monthly": ("tokline.commands.report", "tokens and cost per month"),
    "session": ("tokline.commands.report", "tokens and cost per session"),
    "projects": ("tokline.commands.report", "tokens and cost per project"),
    "models": ("tokline.commands.report", "tokens and cost per model"),
    "blocks": ("tokline.commands.report", "5-hour blocks with burn rate and projection"),
    "graph": ("tokline.commands.graph", "the last year as a contribution heatmap (--svg, --html)"),
    "export": ("tokline.commands.export", "usage as CSV or JSON, by day, model, session, project"),
    "dashboard": ("tokline.commands.dashboard", "full-screen live dashboard"),
    "scan": ("tokline.commands.scan", "bring the ledger up to date now"),
    "refresh": ("tokline.commands.refresh", "quick background refresh (what prompts start)"),
    "status": ("tokline.commands.status", "one line for prompts, tmux and editors"),
    "statusline": ("tokline.commands.statusline", "Claude Code's statusLine command"),
    "setup": ("tokline.commands.setup", "install integrations: setup claude"),
    "init": ("tokline.commands.init", "shell and tmux integration: init bash|zsh|fish|tmux"),
    "completion": ("tokline.commands.completion", "tab completion: completion bash|zsh|fish"),
    "sync": ("tokline.commands.sync", "exchange usage with your other devices"),
    "login": ("tokline.commands.login", "sign this device in to a team server"),
    "logout": ("tokline.commands.login", "forget this device's token for a team server"),
    "server": ("tokline.commands.server", "the team server: serve, migrate, add-user, token"),
    "devices": ("tokline.commands.devices", "every device synced: last sync, requests, cost"),
    "watch": ("tokline.commands.watch", "the snapshot as JSON lines whenever it changes"),
    "service": ("tokline.commands.service",
                "keep the status current in the background: service install|uninstall"),
    "tray": ("tokline.commands.tray", "a system-tray icon with today's spend and a menu"),
    "auth": ("tokline.commands.auth", "keys for remote quota: auth login|status|logout"),
    "quota": ("tokline.commands.quota", "every quota window and credit balance known"),
    "pricing": ("tokline.commands.pricing", "show or update the price table"),
    "doctor": ("tokline.commands.doctor", "paths, ledger health and problems seen"),
    "demo": ("tokline.commands.demo", "show every view on a bundled sample history"),
}


def usage() -> str:
    lines = ["usage: tokline COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `tokline COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from tokline._version import __version__  # noqa: PLC0415

        print(f"tokline {__version__}")
        return 0
    name = args[0]
    if name == "status":
        from tokline.prompt.status import status  # noqa: PLC0415 - the prompt's path

        answered = status(args[1:])
        if answered is not None:
            return answered
    elif name == "refresh" and args[1:] in ([], ["--locked"], ["--if-unlocked"]):
        from tokline.prompt import statefiles  # noqa: PLC0415 - the no-change path
        from tokline.prompt.uptodate import up_to_date  # noqa: PLC0415

        if args[1:] == ["--if-unlocked"]:
            # A shell prompt's refresh: only the one that takes the lock goes on.
            if not statefiles.take_lock(statefiles.state_dir()):
                return 0
            args = [name, "--locked"]
        if up_to_date() and statefiles.touch() and not statefiles.remote_due() \
                and not statefiles.sync_due():
            statefiles.note_refresh("unchanged")
            if args[1:]:
                statefiles.release_lock()
            return 0
    elif name == "scan" and args[1:] in ([], ["-q"], ["--quiet"]):
        from tokline.prompt import statefiles  # noqa: PLC0415
        from tokline.prompt.uptodate import up_to_date  # noqa: PLC0415 - the no-change path

        if up_to_date(full=True) and statefiles.touch():
            if not args[1:]:
                print("ledger up to date: no log changed since the last scan")
            return 0
    entry = COMMANDS.get(name)
    if entry is None:
        print(f"tokline: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    from importlib import import_module  # noqa: PLC0415

    from tokline.errors import ToklineError  # noqa: PLC0415
    from tokline.prompt import statefiles  # noqa: PLC0415

    module = import_module(entry[0])
    try:
        code: int = module.run(name, args[1:])
        return code
    except ToklineError as exc:
        from tokline.prompt.safetext import clean  # noqa: PLC0415

        # messages quote paths and names from the disk: sanitised like any log text
        print(f"tokline: {clean(exc, 2000)}", file=sys.stderr)
        return exc.exit_code
    except statefiles.UnsafeDir as exc:  # a state or data directory others control
        print(f"tokline: {exc}", file=sys.stderr)  # refusal() sanitised the path
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a storage fault no command turned into a message
        from tokline import paths  # noqa: PLC0415
        from tokline.ledger.faults import classify  # noqa: PLC0415

        err = classify(exc, str(paths.ledger_file()))
        if err is None:
            raise
        from tokline.prompt.safetext import clean  # noqa: PLC0415

        print(f"tokline: {clean(err, 2000)}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
