# tokline for bash: eval "$(tokline init bash)" in ~/.bashrc, then put the status in PS1:
#     PS1='${TOKLINE_STATUS:+$TOKLINE_STATUS }\u@\h:\w\$ '
# Before each prompt __tokline_update reads the pre-rendered status with builtins only:
# no process starts while it is fresh.  A stale one starts a single background refresh
# and the last value shows until a later prompt reads the new one.  $? is preserved.
# A state dir or status.lines that is not the user's own (another user could have planted
# it) shows nothing and starts nothing; `tokline status` says why.  Bash has no builtin
# that reads a mode: ownership (-O) of the dir and the file, and no symlink, is the check.
# Tab completion: eval "$(tokline completion bash)" in ~/.bashrc as well.

__tokline_bin=@TOKLINE_BIN@
TOKLINE_STATUS=${TOKLINE_STATUS:-}
__tokline_spawned=0

__tokline_dir() {
    if [[ ${XDG_STATE_HOME:-} == /* ]]; then
        __tokline_state=${XDG_STATE_HOME}/tokline
    else
        __tokline_state=${HOME:-}/.local/state/tokline
    fi
}

__tokline_refresh() {
    # $1: now.  Once per refresh interval ($2) from this shell; a subshell's background job:
    # detached, no job-control notice, output discarded.
    if (($1 - __tokline_spawned < ${2:-10})); then return 0; fi
    __tokline_spawned=$1
    ("${__tokline_bin}" refresh --if-unlocked </dev/null >/dev/null 2>&1 &) 2>/dev/null
}

__tokline_update() {
    local __tokline_ret=$? __tokline_state head="" line="" target=bash now=0 i
    local -a h=() parts=()
    __tokline_dir
    if [[ -n ${NO_COLOR:-} ]]; then target=bash-nc; fi
    printf -v now '%(%s)T' -1
    if [[ -e ${__tokline_state} && ! -O ${__tokline_state} ]] || [[ -e ${__tokline_state}/status.lines &&
        (! -O ${__tokline_state}/status.lines || -L ${__tokline_state}/status.lines) ]]; then
        TOKLINE_STATUS=""
        return "${__tokline_ret}"
    fi
    if [[ ! -r ${__tokline_state}/status.lines ]]; then
        TOKLINE_STATUS=""
        __tokline_refresh "${now}"
        return "${__tokline_ret}"
    fi
    {
        IFS= read -r head || :
        while IFS= read -r line || [[ -n ${line} ]]; do
            if [[ ${line} == "${target}"$'\t'* ]]; then break; fi
            line=""
        done
    } <"${__tokline_state}/status.lines"
    read -r -a h <<<"${head}" || :
    if [[ ${#h[@]} -lt 7 || -z ${line} ]]; then
        TOKLINE_STATUS=""
        return "${__tokline_ret}"
    fi
    IFS=$'\t' read -r -a parts <<<"${line}" || :
    local variant=1
    for ((i = 7; i < ${#h[@]}; i++)); do
        if ((now >= ${h[i]%.*})); then variant=$((variant + 1)); fi
    done
    if ((variant >= ${#parts[@]})); then variant=$((${#parts[@]} - 1)); fi
    TOKLINE_STATUS=${parts[variant]:-}
    if [[ ${TOKLINE_STATUS} == *$'\x1e'* ]]; then
        local left=0
        if [[ ${h[5]} != - ]]; then left=$(((${h[5]%.*} - now) / 60)); fi
        if ((left < 0)); then left=0; fi
        if ((left >= 60)); then
            printf -v left '%dh%02dm' $((left / 60)) $((left % 60))
        else
            left=${left}m
        fi
        TOKLINE_STATUS=${TOKLINE_STATUS//$'\x1e'/${left}}
    fi
    # The reading rules of status.lines (tokline/prompt/statefiles.py): whole seconds,
    # age from the head's CHECKED, units floored.
    local age=$((now - ${h[6]%.*}))
    if ((age > ${h[3]%.*})); then
        if ((age < 3600)); then
            TOKLINE_STATUS+=" (stale $((age / 60))m)"
        elif ((age < 172800)); then
            TOKLINE_STATUS+=" (stale $((age / 3600))h)"
        else
            TOKLINE_STATUS+=" (stale $((age / 86400))d)"
        fi
    fi
    if ((age > ${h[2]%.*} || variant > 1)); then __tokline_refresh "${now}" "${h[2]%.*}"; fi
    return "${__tokline_ret}"
}

tokline_prompt() {
    printf '%s' "${TOKLINE_STATUS:-}"
}

if [[ ";${PROMPT_COMMAND:-};" != *";__tokline_update;"* ]]; then
    PROMPT_COMMAND="__tokline_update${PROMPT_COMMAND:+;${PROMPT_COMMAND}}"
fi
