#compdef tokline
# Tab completion of tokline for zsh: eval "$(tokline completion zsh)" in ~/.zshrc after
# compinit, or save it as _tokline in a directory of $fpath (before compinit runs).
# Each TAB asks tokline (`tokline completion --complete zsh -- WORD...`), which answers
# from its commands' own parsers: a kind (words, files or dirs), then one candidate a
# line, VALUE<TAB>DESCRIPTION; zsh does the matching.

_tokline() {
    local kind line value text
    local -a answer described
    answer=("${(@f)$(@TOKLINE_BIN@ completion --complete zsh -- \
        "${(@Q)words[2,CURRENT-1]}" "${(Q)PREFIX}" 2>/dev/null)}")
    kind=${answer[1]}
    case $kind in
        files) _files ;;
        dirs) _files -/ ;;
        words)
            for line in "${(@)answer[2,-1]}"; do
                [[ -n $line ]] || continue
                value=${line%%$'\t'*}
                text=${line#*$'\t'}
                [[ $line == *$'\t'* ]] || text=
                # _describe splits VALUE:DESCRIPTION at the first unescaped colon
                described+=("${value//:/\\:}${text:+:$text}")
            done
            _describe -t tokline 'tokline' described
            ;;
        *) return 1 ;;
    esac
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
    _tokline "$@"  # autoloaded from $fpath: this file is the function's body
else
    compdef _tokline tokline
fi
