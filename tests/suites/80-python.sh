#!/usr/bin/env bash
# 80-python: the Python binding (python/, docs/python.md; rulings R18).
# 1. libclens.so: soname libclens.so.MAJOR; every function declared in include/clens.h carries
#    CLENS_API, and the library's dynamic symbols are exactly those functions (nothing internal).
# 2. `pip install --no-build-isolation --no-index ./python` into a temporary target works offline,
#    and the installed package finds this build's library without CLENS_LIB.
# 3. The pytest suite python/tests (Debian python3-pytest): logits, every hook point and
#    generation == the CLI bit for bit on every architecture; hand patches == model.patch;
#    Python metric == built-in; errors; no leak over 1,000 calls; docs/python.md runs as written.
#    pytest's exit 5 ("no tests collected") is a failure here.
# Env: ROOT, BUILD, CLENS, SHARED, PY, CLENS_TEST_TMP.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-build}
PY=${PY:-/usr/bin/python3}
TMP=${CLENS_TEST_TMP:-$ROOT/$BUILD/testdata}/python-suite
cd "$ROOT"
rm -rf "$TMP"; mkdir -p "$TMP"
fail=0
t0=$(date +%s)
SO=$ROOT/$BUILD/libclens.so
[ -e "$SO" ] || make --no-print-directory BUILD="$BUILD" "$BUILD/libclens.so" >"$TMP/make.log" 2>&1 || { tail -20 "$TMP/make.log"; echo "FAIL: building libclens.so"; exit 1; }

echo "--- libclens.so exports and soname"
soname=$(readelf -d "$SO" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
major=$(sed -n 's/^#define CLENS_VERSION "\([0-9]*\)\..*/\1/p' include/clens.h)
if [ "$soname" != "libclens.so.$major" ]; then echo "FAIL: soname '$soname', want libclens.so.$major"; fail=1; fi
# exported functions (OpenMP's named-critical lock variables are data, not API: ignored)
nm -D --defined-only "$SO" | awk '$2 ~ /^[TtWi]$/ {print $3}' | sort >"$TMP/exported.txt"
grep -A3 '^CLENS_API' include/clens.h | tr '\n' ' ' | grep -o 'CLENS_API[^(]*(' |
  sed 's/.*[ *]\(clens_[a-z0-9_]*\)($/\1/' | sort -u >"$TMP/declared.txt"
# every function declared in the header carries CLENS_API (a section added without it would be
# neither exported nor caught by the comparison below)
if grep -nE '^[a-z][a-z0-9_ *]*[ *]clens_[a-z0-9_]+\(' include/clens.h | grep -v ':typedef' >"$TMP/unmarked.txt"; then
  echo "FAIL: declarations in include/clens.h without CLENS_API:"; cat "$TMP/unmarked.txt"; fail=1
fi
if ! diff "$TMP/declared.txt" "$TMP/exported.txt" >"$TMP/exports.diff"; then
  echo "FAIL: exported functions differ from the CLENS_API declarations (< declared, > exported):"
  head -20 "$TMP/exports.diff"; fail=1
else
  echo "  $(wc -l <"$TMP/exported.txt") functions exported, all declared CLENS_API; soname $soname"
fi

echo "--- pip install --no-build-isolation --no-index ./python (offline)"
if "$PY" -m pip install -q --no-build-isolation --no-index --no-deps --target "$TMP/site" ./python \
     >"$TMP/pip.log" 2>&1; then
  if ! (cd "$TMP" && env -u CLENS_LIB CLENS_BUILD="$BUILD" PYTHONPATH="$TMP/site" "$PY" -c '
import clens, os, sys
assert clens.__file__.startswith(sys.argv[1]), clens.__file__
assert os.path.realpath(clens.library_path) == os.path.realpath(sys.argv[2]), clens.library_path
print("  installed package loads", clens.library_path)' "$TMP/site" "$SO"); then
    echo "FAIL: the installed package does not load this build's libclens.so"; fail=1
  fi
else
  cat "$TMP/pip.log"; echo "FAIL: pip install"; fail=1
fi
rm -rf python/build python/clens.egg-info

echo "--- pytest python/tests"
CLENS_LIB=$SO PYTHONPATH="$ROOT/python:$ROOT/python/tests" OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} \
  "$PY" -m pytest -q -p no:cacheprovider python/tests
rc=$?
if [ $rc -eq 5 ]; then echo "FAIL: pytest collected no tests"; fail=1
elif [ $rc -ne 0 ]; then echo "FAIL: pytest exit $rc"; fail=1; fi
echo "80-python: $(( $(date +%s) - t0 )) s"
exit $fail
