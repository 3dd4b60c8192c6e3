#!/bin/sh
# A distlogd `exec` plugin in shell: keep the ERROR and CRITICAL records
# (one JSON object per line on stdin, as distlogd writes them) in a file.
#
#   errors-copy:
#     type: exec
#     command: [/bin/sh, /etc/distlog/plugins/grep_errors.sh, /var/log/distlog/errors.jsonl]
#
# distlogd writes compact JSON ("levelname":"ERROR", no spaces), so a
# fixed pattern is enough; with jq installed, `jq -c 'select(.levelno >= 40)'`
# does the same by value.
exec grep -E --line-buffered '"levelname":"(ERROR|CRITICAL)"' >> "${1:?usage: grep_errors.sh OUTPUT_FILE}"
