#!/usr/bin/env bash
# The layering of docs/architecture.md, checked on every quoted #include:
#   src/core/     includes only src/core/;
#   src/backend/  (the Backend interface and the factory) only src/core/ and src/backend/;
#   cpu/, kernels/  their own folder, src/core/ and src/backend/;
#   sim/          its own folder, src/core/, src/backend/, cpu/ and kernels/ (the test device runs
#                 the CPU's loops with the CUDA backend's workspace layout);
#   the rest of src/  never cpu/, kernels/ or sim/: backends are reached through backend/backends.hpp;
#   nowhere a "../" path.
# Exits non-zero naming each include that breaks a rule. Usage: scripts/check_layers.sh [root]
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
status=0
complain() { echo "check_layers: $1: #include \"$2\" $3"; status=1; }
while IFS= read -r file; do
  dir=$(dirname "$file")
  while IFS= read -r spelled; do
    [ -z "$spelled" ] && continue
    case $spelled in ../*|*/../*) complain "$file" "$spelled" "climbs out of its folder"; continue ;; esac
    # A bare name is a file of the same folder.
    if [[ $spelled != */* ]]; then
      [ -e "$dir/$spelled" ] || complain "$file" "$spelled" "is not a file of $dir/"
      continue
    fi
    top=${spelled%%/*}
    case $file in
      src/core/*) allowed="core" ;;
      src/backend/*) allowed="core backend" ;;
      cpu/*|kernels/*) allowed="core backend ${file%%/*}" ;;
      sim/*) allowed="core backend cpu kernels sim" ;;
      src/*) allowed="core backend capi config io placement sharded table" ;;
      *) continue ;;
    esac
    [[ " $allowed " == *" $top "* ]] || complain "$file" "$spelled" "crosses a layer (${file%%/*}/ may include: $allowed)"
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done < <(git ls-files 'src/*' 'cpu/*' 'kernels/*' 'sim/*' | grep -E '\.(c|cc|cpp|cu|h|hpp|cuh|inc)$')
[ $status -eq 0 ] && echo "check_layers: every include keeps to its layer"
exit $status
