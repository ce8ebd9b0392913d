#!/usr/bin/env bash
# Options of the tokline tmux plugin, with their defaults in one place.

tokline_option() {
    # $1: option name without the @tokline_ prefix
    local value
    value=$(tmux show-option -gqv "@tokline_$1")
    if [[ -n "${value}" ]]; then
        printf '%s' "${value}"
        return
    fi
    case $1 in
        bin) printf '%s' "${TOKLINE_BIN:-tokline}" ;;
        format) printf '%s' "" ;;
        today_format) printf '%s' "{today.cost}" ;;
        block_format) printf '%s' "[{block.cost} ({block.left} left)]" ;;
        quota_preset) printf '%s' "quota" ;;
        *) ;; # an option without a default: empty
    esac
}
