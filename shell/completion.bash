# shellcheck shell=bash
# Tab completion of tokline for bash: eval "$(tokline completion bash)" in ~/.bashrc, or
#     tokline completion bash >~/.local/share/bash-completion/completions/tokline
# Each TAB asks tokline (`tokline completion --complete bash -- WORD...`), which answers
# from its commands' own parsers: a kind (words, files or dirs), then one word a line,
# already matched to the word being completed.  bash-completion is not needed.

__tokline_complete_bin=@TOKLINE_BIN@

__tokline_complete() {
    local kind="" line quoted cur=${COMP_WORDS[COMP_CWORD]}
    local -a answer=()
    COMPREPLY=()
    mapfile -t answer < <("${__tokline_complete_bin}" completion --complete bash -- \
        "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null || true)
    if ((${#answer[@]})); then kind=${answer[0]}; fi
    if [[ ${cur} == "=" ]]; then cur=""; fi # bash split --opt=value: "=" is a word of its own
    case ${kind} in
        files)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "${cur}" || true)
            ;;
        dirs)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -d -- "${cur}" || true)
            ;;
        words)
            for line in "${answer[@]:1}"; do
                # a device name may hold a space: escaped, unless the word opened a quote
                if [[ ${cur} == [\"\']* ]]; then
                    COMPREPLY+=("${line}")
                else
                    printf -v quoted '%q' "${line}"
                    COMPREPLY+=("${quoted}")
                fi
            done
            ;;
        *) ;;
    esac
    return 0
}

complete -F __tokline_complete tokline
