# tokline for fish: `tokline init fish | source` in ~/.config/fish/config.fish, then show
# the status in a prompt, e.g.  function fish_right_prompt; tokline_prompt; end
# Before each prompt the status is read with builtins only: no process starts while it
# is fresh; a stale one starts a single background refresh.  A state dir or status.lines
# that is not the user's own (test -O), or a status.lines that is a symlink, shows nothing
# and starts nothing; `tokline status` says why (fish has no builtin that reads a mode).
# Tab completion: `tokline completion fish | source` in config.fish as well.

set -g __tokline_bin @TOKLINE_BIN@
set -q TOKLINE_STATUS; or set -g TOKLINE_STATUS ""
set -g __tokline_spawned 0

function __tokline_refresh --argument-names now interval
    # at most one background refresh per refresh interval from this shell
    test -n "$interval"; or set interval 10
    test -n "$now"; and test (math $now - $__tokline_spawned) -lt $interval; and return 0
    test -n "$now"; and set -g __tokline_spawned $now
    command $__tokline_bin refresh --if-unlocked </dev/null >/dev/null 2>&1 &
    disown 2>/dev/null
end

function __tokline_update --on-event fish_prompt
    set -l ret $status
    set -l dir
    if string match -q -- '/*' "$XDG_STATE_HOME"
        set dir $XDG_STATE_HOME/tokline
    else
        set dir $HOME/.local/state/tokline
    end
    set -l file $dir/status.lines
    if begin
            test -e $dir; and not test -O $dir
        end; or begin
            test -e $file; and begin
                not test -O $file; or test -L $file
            end
        end
        set -g TOKLINE_STATUS ""
        return $ret
    end
    if not test -r $file
        set -g TOKLINE_STATUS ""
        __tokline_refresh
        return $ret
    end
    set -l target fish
    set -q NO_COLOR; and test -n "$NO_COLOR"; and set target fish-nc
    set -l head
    set -l line
    while read -l row
        if test -z "$head"
            set head (string split ' ' -- $row)
        else if string match -q -- "$target	*" $row
            set line $row
            break
        end
    end <$file
    if test (count $head) -lt 7; or test -z "$line"
        set -g TOKLINE_STATUS ""
        return $ret
    end
    set -l now (math (path mtime $file) + (path mtime --relative $file))
    set -l parts (string split \t -- $line)
    set -l variant 2
    for mark in $head[8..-1]
        test $now -ge (string split -f1 . -- $mark); and set variant (math $variant + 1)
    end
    test $variant -gt (count $parts); and set variant (count $parts)
    set -l text $parts[$variant]
    if string match -q -- "*"\x1e"*" $text
        set -l left 0
        if test "$head[6]" != -
            set left (math "max(0, floor(($head[6] - $now) / 60))")
        end
        if test $left -ge 60
            set left (printf '%dh%02dm' (math "floor($left / 60)") (math $left % 60))
        else
            set left $left"m"
        end
        set text (string replace -a \x1e $left -- $text)
    end
    # The reading rules of status.lines (tokline/prompt/statefiles.py): whole seconds,
    # age from the head's CHECKED, units floored.
    set -l age (math $now - (string split -f1 . -- $head[7]))
    if test $age -gt (string split -f1 . -- $head[4])
        if test $age -lt 3600
            set text "$text (stale "(math "floor($age / 60)")"m)"
        else if test $age -lt 172800
            set text "$text (stale "(math "floor($age / 3600)")"h)"
        else
            set text "$text (stale "(math "floor($age / 86400)")"d)"
        end
    end
    set -g TOKLINE_STATUS $text
    if test $age -gt (string split -f1 . -- $head[3]); or test $variant -gt 2
        __tokline_refresh $now (string split -f1 . -- $head[3])
    end
    return $ret
end

function tokline_prompt
    echo -n $TOKLINE_STATUS
end
