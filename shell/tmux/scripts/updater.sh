#!/usr/bin/env bash
# One per tmux server: refresh the @tokline_*_value options once per status-interval.

CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=helpers.sh
. "${CURRENT_DIR}/helpers.sh"

bin=$(tokline_option bin)
while tmux has-session 2>/dev/null; do
    for name in $(tmux show-option -gqv @tokline_used); do
        case ${name} in
            tokline)
                format=$(tokline_option format)
                if [[ -n "${format}" ]]; then
                    text=$("${bin}" status --target tmux --format "${format}" 2>/dev/null) || true
                else
                    text=$("${bin}" status --target tmux 2>/dev/null) || true
                fi
                tmux set-option -gq @tokline_value "${text}"
                ;;
            tokline_today)
                option=$(tokline_option today_format)
                text=$("${bin}" status --target tmux --format "${option}" 2>/dev/null) || true
                tmux set-option -gq @tokline_today_value "${text}"
                ;;
            tokline_block)
                option=$(tokline_option block_format)
                text=$("${bin}" status --target tmux --format "${option}" 2>/dev/null) || true
                tmux set-option -gq @tokline_block_value "${text}"
                ;;
            tokline_quota)
                option=$(tokline_option quota_preset)
                text=$("${bin}" status --target tmux --preset "${option}" 2>/dev/null) || true
                tmux set-option -gq @tokline_quota_value "${text}"
                ;;
            *) ;; # a placeholder this updater does not know: left alone
        esac
    done
    interval=$(tmux show-option -gqv status-interval)
    sleep "${interval:-15}"
done
