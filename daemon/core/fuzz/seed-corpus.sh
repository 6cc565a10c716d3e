#!/usr/bin/env bash
# Copies the telegram fixtures into corpus/<target>/ as the fuzzers' starting inputs:
# every telegram for parse_any, and each format's telegrams for its own parser's target.
# Idempotent; inputs the fuzzers found earlier stay. corpus/ is git-ignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fixtures="$here/../tests/fixtures/telegrams"

seed() { # target, then name patterns
    local target="$1"
    shift
    mkdir -p "$here/corpus/$target"
    local pattern file n=0
    for pattern in "$@"; do
        for file in "$fixtures"/$pattern; do
            [ -f "$file" ] || continue
            case "$(basename "$file")" in
            README.md | index.csv | *.expected.json) continue ;;
            esac
            cp "$file" "$here/corpus/$target/"
            n=$((n + 1))
        done
    done
    echo "corpus/$target: $n fixtures seeded"
}

seed parse_any '*'
seed jma_code '*.txt'
seed jma_xml '*.xml'
seed json '*.json'
seed stream '*.txt'
