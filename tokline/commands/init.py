"""``tokline init bash|zsh|fish|tmux|starship``: print the integration for a shell or tmux.

    eval "$(tokline init bash)"      # ~/.bashrc
    eval "$(tokline init zsh)"       # ~/.zshrc
    tokline init fish | source       # ~/.config/fish/config.fish
    tokline init tmux                # lines for ~/.tmux.conf
    tokline init starship            # a [custom.tokline] module for starship.toml
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from importlib import resources

SCRIPTS = {"bash": "tokline.bash", "zsh": "tokline.zsh", "fish": "tokline.fish",
           "starship": "starship.toml"}


def tokline_path() -> str:
    """The launcher this process runs from, else the one on PATH."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) == "tokline" and os.access(argv0, os.X_OK):
        return argv0
    return shutil.which("tokline") or "tokline"


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline init", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=[*SCRIPTS, "tmux"])
    parser.add_argument("--bin", help="tokline executable the hooks run (default: this one)")
    args = parser.parse_args(argv)
    binary = args.bin or tokline_path()
    shell_dir = resources.files("tokline.shell")
    if args.shell == "tmux":
        plugin = shell_dir.joinpath("tmux").joinpath("tokline.tmux")
        print(f"set -g @tokline_bin {shlex.quote(binary)}")
        print(f"run-shell {shlex.quote('bash ' + shlex.quote(str(plugin)))}")
        print("# then: set -g status-right '#{tokline} | %H:%M'  (before the run-shell line)")
        return 0
    text = shell_dir.joinpath(SCRIPTS[args.shell]).read_text(encoding="utf-8")
    if args.shell == "starship":
        text = text.replace('command = "tokline status', f'command = "{binary} status')
    print(text.replace("@TOKLINE_BIN@", shlex.quote(binary)), end="")
    return 0
