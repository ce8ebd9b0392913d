#!/bin/sh
# tokline in SketchyBar: save as ~/.config/sketchybar/plugins/tokline.sh, make it
# executable, and add the item in sketchybarrc:
#   sketchybar --add item tokline right \
#       --set tokline update_freq=60 script="$HOME/.config/sketchybar/plugins/tokline.sh"
# `tokline status --target sketchybar` prints the arguments of `sketchybar --set`, one a
# line (label=…, label.color=0xff…… by the thresholds); they are passed on as they are.
args=$(@TOKLINE_BIN@ status --target sketchybar) || exit 0
set --
while IFS= read -r arg; do
    if [ -n "${arg}" ]; then
        set -- "$@" "${arg}"
    fi
done <<EOF_ARGS
${args}
EOF_ARGS
if [ "$#" -gt 0 ]; then
    exec sketchybar --set "${NAME:-tokline}" "$@"
fi
