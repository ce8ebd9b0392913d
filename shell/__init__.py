"""Shell integrations (bash, zsh, fish, starship, tmux), shipped in the wheel as the
package data of ``tokline.shell`` so that ``tokline init SHELL`` can print them."""
