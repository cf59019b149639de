#!/usr/bin/env bash
# Formats embedkit's C, C++ and CUDA sources with clang-format and the repository's .clang-format.
# Usage: scripts/format.sh [--check] [path ...]
#   (no option)  formats, in place, every tracked *.hpp *.cpp *.h *.c *.cu *.cuh (under the given
#                paths only, when some are given)
#   --check      changes nothing; lists the files whose formatting differs and exits 1 if any do
#                (CI's check, in scripts/test.sh's nompi lane)
# clang-format is $CLANG_FORMAT, else clang-format-14, clang-format, clang-format-NN (newest first).
# The style was tuned for clang-format 14, Debian bookworm's (scripts/setup.sh installs it); another
# major version can format some lines differently, so the check says which version it ran.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
paths=()
for arg in "$@"; do
  case $arg in
    --check) check=1 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) echo "[format] unknown option '$arg' (usage: scripts/format.sh [--check] [path ...])" >&2; exit 2 ;;
    *) paths+=("$arg") ;;
  esac
done

find_clang_format() {
  if [ -n "${CLANG_FORMAT:-}" ]; then
    command -v "$CLANG_FORMAT" && return 0
    echo "[format] CLANG_FORMAT='$CLANG_FORMAT' is not an executable" >&2
    return 1
  fi
  local candidate
  for candidate in clang-format-14 clang-format; do
    command -v "$candidate" && return 0
  done
  # Any other versioned binary, newest first.
  candidate=$(compgen -c clang-format- | grep -E '^clang-format-[0-9]+$' | sort -t- -k3 -n -r | head -n 1 || true)
  [ -n "$candidate" ] && command -v "$candidate" && return 0
  return 1
}

if ! clang_format=$(find_clang_format); then
  echo "[format] clang-format not found. Install it (Debian: apt-get install clang-format, or run" \
       "scripts/setup.sh), or set CLANG_FORMAT to its path." >&2
  exit 2
fi
version=$("$clang_format" --version | sed -n 's/.*clang-format version \([0-9][0-9]*\).*/\1/p')
if [ "${version:-}" != 14 ]; then
  echo "[format] warning: $clang_format is version ${version:-unknown}; .clang-format was tuned for" \
       "clang-format 14 and another version may format some lines differently" >&2
fi

# Every tracked C/C++/CUDA source; the fuzz corpora are inputs, not sources. (tests/golden/*.inc
# are generated tables, and not matched by these patterns.)
patterns=('*.hpp' '*.cpp' '*.h' '*.c' '*.cu' '*.cuh')
excludes=(':(exclude)fuzz/corpus/**')
files=()
if [ ${#paths[@]} -eq 0 ]; then
  mapfile -d '' files < <(git ls-files -z -- "${patterns[@]}" "${excludes[@]}")
else
  mapfile -d '' files < <(git ls-files -z -- "${paths[@]}" | grep -zE '\.(hpp|cpp|h|c|cu|cuh)$' |
                          grep -zv '^fuzz/corpus/' || true)
fi
if [ ${#files[@]} -eq 0 ]; then
  echo "[format] no tracked C/C++/CUDA sources${paths:+ under ${paths[*]}}" >&2
  exit $((check ? 0 : 1))
fi

if [ $check -eq 0 ]; then
  printf '%s\0' "${files[@]}" | xargs -0 -n 64 "$clang_format" -i --style=file
  echo "[format] formatted ${#files[@]} files with $clang_format (version ${version:-unknown})"
  exit 0
fi

# --dry-run -Werror reports `file:line:col: error: code should be clang-formatted`; one report per
# file is enough to name it.
report=$(printf '%s\0' "${files[@]}" |
         xargs -0 -n 64 "$clang_format" --dry-run -Werror --ferror-limit=1 --style=file 2>&1 || true)
mapfile -t differ < <(sed -n 's/^\(.*\):[0-9][0-9]*:[0-9][0-9]*: error: code should be clang-formatted.*/\1/p' <<<"$report" |
                      sort -u)
if [ ${#differ[@]} -eq 0 ]; then
  if grep -q 'error' <<<"$report"; then  # clang-format itself failed (a bad .clang-format, say)
    echo "$report" >&2
    exit 2
  fi
  echo "[format] ${#files[@]} files formatted as .clang-format says ($clang_format, version ${version:-unknown})"
  exit 0
fi
echo "[format] ${#differ[@]} of ${#files[@]} files differ from .clang-format ($clang_format, version ${version:-unknown}):" >&2
printf '  %s\n' "${differ[@]}" >&2
echo "[format] run scripts/format.sh to format them in place (then review with git diff)" >&2
exit 1
