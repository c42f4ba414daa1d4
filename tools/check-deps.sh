#!/usr/bin/env bash
# Checks that every system header and library the build and the tests use
# comes from a Debian package tools/install-deps.sh names, directly or through
# the Depends of a named package (so that `make deps` on a plain Debian 12 is
# enough to build and test, e.g. <omp.h> of the clang fuzz build comes from
# libomp-14-dev).
#
#   tools/check-deps.sh [-v]      -v: print every header / library with its package
#
# Programs: the Slurm and munge daemons and client, chromium and python3 the
# suites run. Headers: every #include <...> in src/, tests/ (fuzz harnesses included) and
# bench/, resolved by gcc and by clang with the build's flags (-M gives the
# file the compiler picks). Libraries: the Makefile's LIBS plus -lcmocka, the
# OpenMP runtime of each compiler (-fopenmp) and the clang sanitizer/libFuzzer
# runtimes, resolved by linking an empty program with -Wl,--trace. Each file
# goes through realpath and `dpkg -S`. Exit codes: 0 all covered, 1 a file
# belongs to no named package (or to none at all), 2 usage.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VERBOSE=0
case "${1:-}" in -v) VERBOSE=1 ;; '') ;; -h|--help) sed -n '2,17p' "$0"; exit 0 ;; *) echo "usage: $0 [-v]" >&2; exit 2 ;; esac

# The named packages: the PKGS array of install-deps.sh (node/npm come from
# wherever node is installed and hold no C headers).
# CHECK_DEPS_INSTALL (another install script) and CHECK_DEPS_HEADERS (a list
# of headers; libraries are then skipped) let the test suite show a failure.
INSTALL=${CHECK_DEPS_INSTALL:-tools/install-deps.sh}
named=$(INSTALL=$INSTALL bash -c 'eval "$(sed -n "/^PKGS=(/,/)/p" "$INSTALL")"; echo "${PKGS[@]}"')
# Their installed Depends closure (alternatives "a | b": every installed one),
# from one dpkg-query over all installed packages.
declare -A deps_of=() closure=()
while IFS=$'\t' read -r p d; do deps_of[$p]=$d; done < <(
  dpkg-query -W -f='${db:Status-Status}\t${Package}\t${Depends},${Pre-Depends}\n' 2>/dev/null |
  awk -F'\t' '$1 == "installed" { print $2 "\t" $3 }')
queue=($named)
while [ ${#queue[@]} -gt 0 ]; do
  p=${queue[0]}; queue=("${queue[@]:1}")
  [ -n "${closure[$p]:-}" ] && continue
  closure[$p]=1
  for d in $(echo "${deps_of[$p]:-}" | tr ',|' '\n\n' | sed -E 's/\(.*\)//; s/:any//; s/[[:space:]]//g'); do
    [ -n "$d" ] && [ -z "${closure[$d]:-}" ] && [ -n "${deps_of[$d]+x}" ] && queue+=("$d")
  done
done

fail=0
# Entries "what|name|compiler|file", resolved to packages by one dpkg -S call
# (one call per file takes minutes: dpkg reads every file list each time).
entries=()
add() { entries+=("$1|$2|$3|$4"); }

headers=${CHECK_DEPS_HEADERS:-}
[ -n "$headers" ] || headers=$(grep -rhoE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<[^>]+>' src tests bench 2>/dev/null |
          sed -E 's/.*<(.*)>/\1/' | sort -u)
FLAGS="-std=c11 -D_GNU_SOURCE -march=x86-64-v2 -fopenmp -Iinclude -Isrc"
for cc in gcc clang; do
  command -v $cc >/dev/null || { echo "check-deps: $cc not installed"; fail=1; continue; }
  for h in $headers; do
    # -M prints "TARGET: header deps...": the first file after the target is the header,
    # except gcc's implicit stdc-predef.h, listed before it (every gcc header was
    # attributed to libc6-dev before this filter)
    f=$(printf '#include <%s>\n' "$h" | $cc $FLAGS -E -M -x c - 2>/dev/null | tr -d '\\' | tr ' ' '\n' |
        grep -v -e ':$' -e '^$' -e '/stdc-predef\.h$' | head -1)
    if [ -z "$f" ]; then echo "check-deps: header <$h> ($cc): not found"; fail=1; continue; fi
    add header "<$h>" $cc "$f"
  done
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'int main(void) { return 0; }\n' >"$tmp/x.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$tmp/f.c"
# every LIBS line of the Makefile, "LIBS = ..." and "LIBS += ..." (GSL is on the second)
LIBS=$(sed -n 's/^LIBS[[:space:]]*+\{0,1\}=[[:space:]]*//p' Makefile | tr '\n' ' ')
link_trace() { # compiler, source, flags...: the files the linker opened
  local cc=$1 src=$2; shift 2
  $cc "$@" "$src" -o "$tmp/a.out" -Wl,--trace 2>/dev/null | grep -E '\.(so|a)(\.[0-9.]+)?$|\.so\b' |
    sed -E 's/^.*\(([^)]*)\)$/\1/; s/^[^/]*//' | grep '^/' | sort -u
}
libcompilers="gcc clang clang-fuzz"
[ -n "${CHECK_DEPS_HEADERS:-}" ] && libcompilers=""
for cc in $libcompilers; do
  if [ $cc = clang-fuzz ]; then files=$(link_trace clang "$tmp/f.c" -fsanitize=fuzzer,address,undefined -fopenmp) || true
  else command -v $cc >/dev/null || continue; files=$(link_trace $cc "$tmp/x.c" -fopenmp $LIBS -lcmocka) || true; fi
  [ -n "$files" ] || { echo "check-deps: $cc cannot link (-fopenmp $LIBS -lcmocka, or a libFuzzer harness)"; fail=1; }
  for f in $files; do add library "$(basename "$f")" $cc "$f"; done
done

# Programs the suites run: the Slurm daemons and client and munge
# (73-slurm.sh), chromium (70-compare.sh's report check), the reference Python.
if [ -z "${CHECK_DEPS_HEADERS:-}" ]; then
  for prog in sbatch squeue scancel sinfo slurmctld slurmd munged chromium python3; do
    f=$(PATH=$PATH:/usr/sbin:/sbin command -v $prog) || { echo "check-deps: program $prog: not installed"; fail=1; continue; }
    [ $prog = python3 ] && f=/usr/bin/python3 # the reference Python (a pyenv one may come first on PATH)
    add program $prog - "$f"
  done
fi

# Candidate names of each file as dpkg may have recorded it: the path without
# symlinks resolved, fully resolved, and either without /usr (merged /usr:
# dpkg knows /lib/x86_64-linux-gnu/libc.so.6, realpath gives /usr/lib/...).
cands() {
  local a b; a=$(realpath -sm "$1"); b=$(realpath -m "$1")
  printf '%s\n' "$a" "$b" "${a#/usr}" "${b#/usr}" "/usr$a" "/usr$b" | grep '^/' | sort -u
}
declare -A owner=()
all=$(for e in "${entries[@]}"; do cands "${e##*|}"; done | sort -u)
while IFS= read -r line; do
  pk=${line%%: /*}; path=/${line#*: /}
  owner[$path]=$(echo "${pk%%,*}" | sed -E 's/:.*//')
done < <(dpkg -S $all 2>/dev/null)

n=0
for e in "${entries[@]}"; do
  IFS='|' read -r what name cc file <<<"$e"
  n=$((n+1)); pkg=""
  for c in $(cands "$file"); do [ -n "${owner[$c]:-}" ] && { pkg=${owner[$c]}; break; }; done
  if [ -z "$pkg" ]; then echo "check-deps: $what $name ($cc): $file belongs to no Debian package"; fail=1; continue; fi
  if [[ " $named " == *" $pkg "* ]]; then how="named"
  elif [ -n "${closure[$pkg]:-}" ]; then how="via the Depends of a named package"
  else echo "check-deps: $what $name ($cc): $file is in $pkg, which $INSTALL does not name"; fail=1; continue; fi
  [ $VERBOSE = 1 ] && echo "  $what $name ($cc): $pkg ($how)"
done

if [ $fail = 0 ]; then echo "check-deps: $n headers/libraries/programs (gcc and clang), each from a package $INSTALL names"; fi
exit $fail
