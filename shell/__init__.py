"""Shell integrations (bash, zsh, fish, starship, tmux) and the desktop bars' snippets
(bars/: waybar, polybar, i3blocks, SwiftBar, SketchyBar), shipped in the wheel as the
package data of ``tokline.shell`` so that ``tokline init NAME`` can print them."""
