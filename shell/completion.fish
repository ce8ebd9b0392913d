# Tab completion of tokline for fish: tokline completion fish | source, in
# ~/.config/fish/config.fish, or save it as ~/.config/fish/completions/tokline.fish.
# Each TAB asks tokline (`tokline completion --complete fish -- WORD...`), which answers
# from its commands' own parsers: a kind (words, files or dirs), then one candidate a
# line, VALUE<TAB>DESCRIPTION; fish does the matching.

function __tokline_complete
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l word (commandline -ct)
    set -l answer (@TOKLINE_BIN@ completion --complete fish -- $tokens $word 2>/dev/null)
    switch "$answer[1]"
        case files
            __fish_complete_path $word
        case dirs
            __fish_complete_directories $word
        case words
            printf '%s\n' $answer[2..-1]
    end
end

complete -c tokline -f -a '(__tokline_complete)'
