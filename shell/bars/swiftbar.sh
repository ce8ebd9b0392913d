#!/bin/sh
# tokline in SwiftBar or xbar (macOS menu bar): save as tokline.1m.sh in the plugin folder
# and make it executable.  SwiftBar runs it once as a streamable plugin and `tokline watch`
# prints the title and menu whenever they change; xbar, which does not stream, runs it
# every minute (the 1m of the file name) and `tokline status` prints them once.
# <xbar.title>tokline</xbar.title>
# <xbar.desc>AI coding assistants' spend and quota: today, the 5-hour block, every quota window.</xbar.desc>
# <xbar.dependencies>tokline</xbar.dependencies>
# <swiftbar.type>streamable</swiftbar.type>
# <swiftbar.hideRunInTerminal>true</swiftbar.hideRunInTerminal>
if [ -n "${SWIFTBAR:-}" ]; then
    exec @TOKLINE_BIN@ watch --target swiftbar
fi
exec @TOKLINE_BIN@ status --target swiftbar
