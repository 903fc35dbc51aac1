#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite (unit and
# integration tests with real servers) under AddressSanitizer and
# UndefinedBehaviorSanitizer. Also checks that the tree builds with clang.
# The unit tests then run once more under LC_ALL=C: nothing may depend on the locale.
#   scripts/test.sh [ctest arguments...]     (with arguments, only that ctest run)
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$top/scripts/install-deps.sh"

echo "== build with clang (portability check)"
CC=clang "$top/scripts/build.sh" "$top/build-clang" -DDIRCONN_TESTS=ON >/dev/null

echo "== build with gcc, ASan + UBSan"
CC=gcc "$top/scripts/build.sh" "$top/build-asan" -DDIRCONN_SANITIZE=ON >/dev/null

echo "== test"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$top/build-asan"
rc=0
ctest --output-on-failure --timeout 900 -j2 "$@" || rc=$?
if (($# == 0)); then
	echo "== unit tests again under LC_ALL=C"
	LC_ALL=C ctest --output-on-failure --timeout 300 -j2 -L unit || rc=$?
fi
exit "$rc"
