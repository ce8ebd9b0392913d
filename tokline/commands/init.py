"""``tokline init SHELL|tmux|starship|BAR``: print the integration for a shell, tmux or a bar.

    eval "$(tokline init bash)"      # ~/.bashrc
    eval "$(tokline init zsh)"       # ~/.zshrc
    tokline init fish | source       # ~/.config/fish/config.fish
    tokline init tmux                # lines for ~/.tmux.conf
    tokline init starship            # a [custom.tokline] module for starship.toml
    tokline init waybar              # a custom/tokline module for waybar's config
    tokline init polybar             # a [module/tokline] for polybar's config.ini
    tokline init i3blocks            # a [tokline] block for i3blocks' config
    tokline init swiftbar            # a SwiftBar/xbar plugin: save as tokline.1m.sh
    tokline init sketchybar          # a SketchyBar item script: save as plugins/tokline.sh
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
from importlib import resources

SCRIPTS = {"bash": "tokline.bash", "zsh": "tokline.zsh", "fish": "tokline.fish",
           "starship": "starship.toml", "waybar": "bars/waybar.jsonc",
           "polybar": "bars/polybar.ini", "i3blocks": "bars/i3blocks.conf",
           "swiftbar": "bars/swiftbar.sh", "sketchybar": "bars/sketchybar.sh"}


def tokline_path() -> str:
    """The launcher this process runs from, else the one on PATH."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(argv0) == "tokline" and os.access(argv0, os.X_OK):
        return argv0
    return shutil.which("tokline") or "tokline"


def run(name: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokline init", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=[*SCRIPTS, "tmux"], metavar="NAME",
                        help="a shell, tmux, starship or a bar: %(choices)s")
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
    text = shell_dir.joinpath(*SCRIPTS[args.shell].split("/")).read_text(encoding="utf-8")
    if args.shell == "starship":
        text = text.replace('command = "tokline status', f'command = "{binary} status')
    # waybar runs its exec with sh -c: a quoted command, in a JSON string
    text = text.replace("@TOKLINE_CMD@",
                        json.dumps(f"{shlex.quote(binary)} watch --target waybar"))
    print(text.replace("@TOKLINE_BIN@", shlex.quote(binary)), end="")
    return 0
