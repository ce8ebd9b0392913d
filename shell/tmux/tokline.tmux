#!/usr/bin/env bash
# tokline tmux plugin: `#{tokline}`, `#{tokline_today}`, `#{tokline_block}` and
# `#{tokline_quota}` in status-left/status-right show tokline's status.
#
# tmux runs a #() command once per interval for every client, so instead one updater
# per server runs `tokline status` once per status-interval and stores the results in
# global options (@tokline_status, …) that the status line reads: one run per interval
# however many clients and panes there are.  The updater stops with the server.
#
# TPM:       set -g @plugin 'tokline/tokline-tmux'   (this directory is that repository)
# by hand:   run-shell 'bash /path/to/tokline/shell/tmux/tokline.tmux'  (`tokline init tmux`)

CURRENT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/helpers.sh
. "${CURRENT_DIR}/scripts/helpers.sh"

# placeholder -> option that holds its text
declare -A slots=(
    [tokline_today]=@tokline_today_value
    [tokline_block]=@tokline_block_value
    [tokline_quota]=@tokline_quota_value
    [tokline]=@tokline_value
)

used=""
for option in status-left status-right; do
    value=$(tmux show-option -gqv "${option}")
    case ${value} in *'#{tokline'*) ;; *) continue ;; esac
    for name in tokline_today tokline_block tokline_quota tokline; do
        if [[ ${value} == *"#{${name}}"* ]]; then
            value=${value//"#{${name}}"/"#{${slots[${name}]}}"}
            used="${used} ${name}"
        fi
    done
    tmux set-option -gq "${option}" "${value}"
done
[[ -n "${used}" ]] || exit 0
tmux set-option -gq @tokline_used "${used}"

pid=$(tmux show-option -gqv @tokline_updater_pid)
if [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null; then
    exit 0 # sourced again (a config reload): the running updater reads @tokline_used
fi
nohup bash "${CURRENT_DIR}/scripts/updater.sh" >/dev/null 2>&1 &
tmux set-option -gq @tokline_updater_pid "$!"
