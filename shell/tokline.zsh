# tokline for zsh: eval "$(tokline init zsh)" in ~/.zshrc, then use the status in a prompt:
#     setopt prompt_subst; RPROMPT='${TOKLINE_STATUS}'
# powerlevel10k: add `tokline` to POWERLEVEL9K_LEFT_PROMPT_ELEMENTS (or the right ones).
# Before each prompt __tokline_update reads the pre-rendered status with builtins only:
# no process starts while it is fresh; a stale one starts a single background refresh.
# A state dir that is not the user's own or is writable by others, or a status.lines that
# is not the user's or is a symlink, shows nothing and starts nothing (`tokline status`
# says why): glob qualifiers test owner and mode with one stat, no process.
# Tab completion: eval "$(tokline completion zsh)" in ~/.zshrc as well, after compinit.

typeset -g __tokline_bin=@TOKLINE_BIN@
typeset -g TOKLINE_STATUS=${TOKLINE_STATUS-}
typeset -g TOKLINE_STATUS_PLAIN=${TOKLINE_STATUS_PLAIN-}
typeset -gi __tokline_spawned=0
zmodload zsh/datetime 2>/dev/null

__tokline_refresh() {
    # $1: now, $2: refresh interval; at most one background refresh per interval per shell
    (( $1 - __tokline_spawned < ${2:-10} )) && return 0
    __tokline_spawned=$1
    ( "$__tokline_bin" refresh --if-unlocked </dev/null >/dev/null 2>&1 & ) 2>/dev/null
}

__tokline_pick() {
    # $1: target; sets REPLY to its text for now ($2), with the block's time left filled in
    local target=$1 now=$2 line
    local -a parts
    REPLY=""
    for line in "${__tokline_lines[@]:1}"; do
        if [[ $line == ${target}$'\t'* ]]; then
            parts=("${(@ps:\t:)line}")
            break
        fi
    done
    (( $#parts )) || return 0
    local variant=2 i
    for (( i = 8; i <= $#__tokline_head; i++ )); do
        (( now >= ${__tokline_head[i]%.*} )) && (( variant++ ))
    done
    (( variant > $#parts )) && variant=$#parts
    REPLY=${parts[variant]}
    if [[ $REPLY == *$'\x1e'* ]]; then
        local left=0
        [[ ${__tokline_head[6]} != - ]] && left=$(( (${__tokline_head[6]%.*} - now) / 60 ))
        (( left < 0 )) && left=0
        if (( left >= 60 )); then
            printf -v left '%dh%02dm' $(( left / 60 )) $(( left % 60 ))
        else
            left=${left}m
        fi
        REPLY=${REPLY//$'\x1e'/$left}
    fi
    return 0
}

__tokline_update() {
    local ret=$?
    emulate -L zsh
    local dir file now=${EPOCHSECONDS:-0}
    local -a __tokline_lines __tokline_head
    if [[ ${XDG_STATE_HOME-} == /* ]]; then dir=$XDG_STATE_HOME/tokline
    else dir=${HOME-}/.local/state/tokline; fi
    file=$dir/status.lines
    local -a __tokline_safe
    __tokline_safe=($dir(NU^IW))  # ours (U), not group- (I) or world-writable (W)
    if [[ -e $dir && $#__tokline_safe -eq 0 ]] || [[ -e $file && ( ! -O $file || -L $file ) ]]
    then
        TOKLINE_STATUS="" TOKLINE_STATUS_PLAIN=""
        return ret
    fi
    if [[ ! -r $file ]]; then
        TOKLINE_STATUS="" TOKLINE_STATUS_PLAIN=""
        __tokline_refresh $now
        return ret
    fi
    __tokline_lines=("${(@f)$(<$file)}")
    __tokline_head=(${=__tokline_lines[1]})
    if (( $#__tokline_head < 7 )); then
        TOKLINE_STATUS="" TOKLINE_STATUS_PLAIN=""
        return ret
    fi
    local target=zsh REPLY
    [[ -n ${NO_COLOR-} ]] && target=zsh-nc
    __tokline_pick $target $now
    TOKLINE_STATUS=$REPLY
    __tokline_pick plain-nc $now
    TOKLINE_STATUS_PLAIN=$REPLY
    # The reading rules of status.lines (tokline/prompt/statefiles.py): whole seconds,
    # age from the head's CHECKED, units floored.
    local age=$(( now - ${__tokline_head[7]%.*} )) note=""
    if (( age > ${__tokline_head[4]%.*} )); then
        if (( age < 3600 )); then note=" (stale $(( age / 60 ))m)"
        elif (( age < 172800 )); then note=" (stale $(( age / 3600 ))h)"
        else note=" (stale $(( age / 86400 ))d)"; fi
        TOKLINE_STATUS+=$note
        TOKLINE_STATUS_PLAIN+=$note
    fi
    local stale=0 i
    (( age > ${__tokline_head[3]%.*} )) && stale=1
    for (( i = 8; i <= $#__tokline_head; i++ )); do
        (( now >= ${__tokline_head[i]%.*} )) && stale=1
    done
    (( stale )) && __tokline_refresh $now ${__tokline_head[3]%.*}
    return ret
}

tokline_prompt() {
    print -rn -- "${TOKLINE_STATUS-}"
}

# powerlevel10k segment: `tokline` in POWERLEVEL9K_*_PROMPT_ELEMENTS
prompt_tokline() {
    [[ -n ${TOKLINE_STATUS_PLAIN-} ]] && p10k segment -f 3 -t "${TOKLINE_STATUS_PLAIN//\%/%%}"
}

autoload -Uz add-zsh-hook
add-zsh-hook precmd __tokline_update
