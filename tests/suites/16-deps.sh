#!/usr/bin/env bash
# 16-deps: every system header and library of the build and tests (gcc,
# clang, the clang libFuzzer build) comes from a Debian package that
# tools/install-deps.sh names, directly or through its Depends
# (tools/check-deps.sh); and the check fails when a needed package is dropped
# from the list (<omp.h> of clang without libomp-14-dev, issue 23 item 13;
# <gsl/gsl_errno.h> of gcc without libgsl-dev). Programs: the Slurm and munge
# daemons and client, chromium, python3.
set -u
cd "$ROOT"
T=$CLENS_TEST_TMP/deps
rm -rf "$T"; mkdir -p "$T"
fail=0
bash tools/check-deps.sh >"$T/out" 2>&1 || { echo "FAIL: tools/check-deps.sh"; cat "$T/out"; fail=1; }
tail -1 "$T/out" | sed 's/^/  /'
sed 's/ libomp-14-dev//' tools/install-deps.sh >"$T/install-no-omp.sh"
CHECK_DEPS_INSTALL="$T/install-no-omp.sh" CHECK_DEPS_HEADERS="omp.h" bash tools/check-deps.sh >"$T/neg" 2>&1
rc=$?
if [ $rc -ne 1 ] || ! grep -q "omp.h> (clang): .* is in libomp-14-dev, which .* does not name" "$T/neg"; then
  echo "FAIL: check-deps without libomp-14-dev: exit $rc: $(cat "$T/neg")"; fail=1
fi
# and for gcc too: gcc -M lists its implicit stdc-predef.h first, which once
# made every gcc header look like libc6-dev's
sed 's/ libgsl-dev//' tools/install-deps.sh >"$T/install-no-gsl.sh"
CHECK_DEPS_INSTALL="$T/install-no-gsl.sh" CHECK_DEPS_HEADERS="gsl/gsl_errno.h" bash tools/check-deps.sh >"$T/neg2" 2>&1
rc=$?
if [ $rc -ne 1 ] || ! grep -q "gsl_errno.h> (gcc): .* is in libgsl-dev, which .* does not name" "$T/neg2"; then
  echo "FAIL: check-deps without libgsl-dev: exit $rc: $(cat "$T/neg2")"; fail=1
fi
exit $fail
