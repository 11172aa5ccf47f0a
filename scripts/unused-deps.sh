#!/usr/bin/env bash
# Flags dependencies a workspace crate declares but does not use, with no tool to install: for
# each crate's Cargo.toml, every entry of [dependencies], [dev-dependencies] and
# [build-dependencies] is looked for, as a Rust path (`name::`, `use name`, `extern crate name`,
# `name!`, `#[name::...]`; dashes read as underscores), in the sources that can use it:
#   [dependencies]        src/ (and build.rs)
#   [dev-dependencies]    src/, tests/, benches/, examples/ (unit tests live in src/)
#   [build-dependencies]  build.rs
# A dev-dependency that is also a normal one is not flagged (cargo allows the pair to add
# features). A crate used only by code that is generated or comes from a macro of another crate
# is listed in ALLOWED below with the reason. Modules a source includes with `#[path = ...]` count
# as its sources. Prints one line per unused dependency and exits 1
# when there is any; `scripts/test.sh` runs it.
#
# Usage: scripts/unused-deps.sh [CRATE_DIR...]   (default: every workspace member)
set -euo pipefail
cd "$(dirname "$0")/.."

# crate-dir:dependency  reason
ALLOWED=(
  "api:prost"            # the code tonic-prost-build generates into OUT_DIR uses it
  "api:tonic-prost"      # the same
)

allowed() {
  local entry
  for entry in "${ALLOWED[@]}"; do
    [ "$entry" = "$1" ] && return 0
  done
  return 1
}

# The workspace members, from the root Cargo.toml.
members() {
  awk '/^members *= *\[/ { on = 1; next } on && /\]/ { exit } on { gsub(/[",[:space:]]/, ""); if ($0 != "") print }' Cargo.toml
}

# "section name" for every dependency declared in a Cargo.toml.
declared() {
  awk '
    /^\[/ { section = ""; if ($0 ~ /^\[(dev-|build-)?dependencies\]/) { section = $0; gsub(/[\[\]]/, "", section) }; next }
    section != "" && /^[A-Za-z0-9_-]+[ .=]/ { name = $0; sub(/[ .=].*/, "", name); print section, name }
  ' "$1"
}

# Whether the Rust sources under the given paths use crate `ident`.
used_in() {
  local ident=$1; shift
  local paths=()
  local p
  for p in "$@"; do [ -e "$p" ] && paths+=("$p"); done
  [ ${#paths[@]} -eq 0 ] && return 1
  # Modules included from elsewhere (`#[path = "../../agent/tests/common/mod.rs"] mod common;`).
  local file target
  while IFS=: read -r file target; do
    target=${target#*\"}; target=${target%\"*}
    target="$(dirname "$file")/$target"
    [ -e "$target" ] && paths+=("$target")
  done < <(grep -rHoE --include='*.rs' '#\[path = "[^"]+"\]' "${paths[@]}" || true)
  grep -rqE --include='*.rs' "(^|[^A-Za-z0-9_:])${ident}(::|!|[[:space:]]*;|[[:space:]]+as[[:space:]])|(use|crate)[[:space:]]+${ident}\b" "${paths[@]}"
}

status=0
dirs=("$@")
if [ ${#dirs[@]} -eq 0 ]; then
  mapfile -t dirs < <(members)
fi
for dir in "${dirs[@]}"; do
  toml="$dir/Cargo.toml"
  normal=" $(declared "$toml" | awk '$1 == "dependencies" { print $2 }' | tr '\n' ' ')"
  while read -r section name; do
    ident=${name//-/_}
    case $section in
      dependencies) where=("$dir/src" "$dir/build.rs") ;;
      dev-dependencies)
        # Also a normal dependency: the dev entry only adds features.
        [[ $normal == *" $name "* ]] && continue
        where=("$dir/src" "$dir/tests" "$dir/benches" "$dir/examples") ;;
      build-dependencies) where=("$dir/build.rs") ;;
    esac
    if ! used_in "$ident" "${where[@]}" && ! allowed "$dir:$name"; then
      echo "$dir: $name is declared in [$section] but no source uses it (remove it, or list it in scripts/unused-deps.sh's ALLOWED with the reason)" >&2
      status=1
    fi
  done < <(declared "$toml")
done
exit $status
