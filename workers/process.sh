#!/bin/sh
# Sample worker: records each file's name, size, line count and sha256 in reports/inventory.tsv
# beside the config folder, and refuses empty files (so a failure is easy to try out).
# The orchestrator runs it with the config folder as working directory and the file as "$1".
set -eu
file="$1"
name="${ORCH_NAME:-$(basename -- "$file")}"
if [ ! -s "$file" ]; then
    echo "refusing empty file: $name" >&2
    exit 1
fi
size=$(wc -c < "$file")
lines=$(wc -l < "$file")
sum=$(sha256sum < "$file" | cut -d' ' -f1)
# Tabs and newlines in a name would break the table's rows.
clean=$(printf '%s' "$name" | tr '\t\n' '  ')
mkdir -p ../reports
printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$sum" "$size" "$lines" "$clean" >> ../reports/inventory.tsv
echo "recorded $clean: $size bytes, $lines lines, sha256 $sum"
