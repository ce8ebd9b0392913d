#!/usr/bin/env bash
# One per tmux server: refresh the @tokline_*_value options once per status-interval.

CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=helpers.sh
. "$CURRENT_DIR/helpers.sh"

bin=$(tokline_option bin)
while tmux has-session 2>/dev/null; do
    for name in $(tmux show-option -gqv @tokline_used); do
        case $name in
            tokline)
                format=$(tokline_option format)
                if [ -n "$format" ]; then
                    text=$("$bin" status --target tmux --format "$format" 2>/dev/null)
                else
                    text=$("$bin" status --target tmux 2>/dev/null)
                fi
                tmux set-option -gq @tokline_value "$text" ;;
            tokline_today)
                tmux set-option -gq @tokline_today_value \
                    "$("$bin" status --target tmux --format "$(tokline_option today_format)" 2>/dev/null)" ;;
            tokline_block)
                tmux set-option -gq @tokline_block_value \
                    "$("$bin" status --target tmux --format "$(tokline_option block_format)" 2>/dev/null)" ;;
            tokline_quota)
                tmux set-option -gq @tokline_quota_value \
                    "$("$bin" status --target tmux --preset "$(tokline_option quota_preset)" 2>/dev/null)" ;;
        esac
    done
    interval=$(tmux show-option -gqv status-interval)
    sleep "${interval:-15}"
done
