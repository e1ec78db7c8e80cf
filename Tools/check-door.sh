#!/usr/bin/env bash
# Checks that the file system has one door (docs/DESIGN.md, "One door to the file system"): outside the
# CasketSystem target no Swift source imports the C library or uses Foundation's file APIs. The safety
# rules of the store (no link followed, nothing outside the folder a command was given) live in that one
# target; the compiler keeps its path-based calls internal to it, and this check keeps the rest out.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='^\s*(@[A-Za-z_]+(\([^)]*\))?\s+)*((public|package|internal|private|fileprivate)\s+)?import\s+(Glibc|Darwin|Musl|Android|WinSDK)\b|\bFileManager\b|\bfopen\s*\(|\bFileHandle\s*\((forReadingFrom|forWritingTo|forUpdating|forReadingAtPath|forWritingAtPath)'
if hits=$(grep -rnE "$pattern" Sources --include='*.swift' | grep -v '^Sources/CasketSystem/'); then
    echo "check-door: file-system access outside Sources/CasketSystem (route it through the door):" >&2
    echo "$hits" >&2
    exit 1
fi
echo "check-door: no file-system access outside Sources/CasketSystem"
