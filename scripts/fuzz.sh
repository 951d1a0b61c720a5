#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time with a seed corpus made from the test vectors.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 120 s, all targets)
#        FUZZ_RUNS=1000000 scripts/fuzz.sh 3600 decrypt_fixed_key   (stop after that many executions,
#        or after the time limit, whichever comes first); FUZZ_MAX_LEN bounds input length
#        (default 16 KiB; larger seeds are left out of the working corpus); FUZZ_SANITIZER=none
#        drops AddressSanitizer (dpwrap forbids unsafe code; RSA under ASan runs ~10x slower)
# Targets run one after another (never in parallel). The full libFuzzer log of each run is kept in
# fuzz/artifacts/<target>.log; the summary lines (executions, crashes) are printed.
# Needs cargo-fuzz and a nightly toolchain (`cargo +nightly`); CI does not fuzz, it replays the
# committed corpora (fuzz/seeds, fuzz/regressions) through tests/fuzz_corpus.rs.
# Crashes land in fuzz/artifacts/<target>/: copy each into fuzz/regressions/<target>/ with a test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
shared=../shared/vectors
max_len=${FUZZ_MAX_LEN:-16384}

seed() { # seed TARGET FILES...: copy files into the target's working corpus
  local t=$1; shift
  mkdir -p "fuzz/corpus/$t"
  # Inputs over the length bound only slow the fuzzer down (the hostile corpus has MiB-sized
  # files; tests/malformed.rs covers them).
  for f in "$@"; do
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" -le "$max_len" ]; then cp "$f" "fuzz/corpus/$t/$(basename "$f")"; fi
  done
  if [ -d "fuzz/seeds/$t" ]; then cp fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
  if [ -d "fuzz/regressions/$t" ]; then cp fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true; fi
}

for t in "${targets[@]}"; do
  case "$t" in
    xml_parse|key_file|xmlenc_model|decrypt_fixed_key)
      seed "$t" $shared/aspnet/*/*.xml $shared/xmlenc/*/*.xml fixtures/malformed/*.xml ;;
    decrypt_spliced)
      seed "$t" ;;
    azure_encrypted_key)
      seed "$t" $shared/aspnet/azure-sdk-akv-mock/*.xml ;;
    certificate_load)
      seed "$t" $shared/aspnet/*/*.pem $shared/aspnet/*/*.pfx $shared/xmlenc/*/*.p12 $shared/xmlenc/*/*.der \
        $shared/xmlenc/*/*.pem $shared/xmlenc/*/*.p8-pem fixtures/certs/* ;;
    *) seed "$t" ;;
  esac
  echo "== fuzzing $t for ${secs}s"
  runs=()
  if [ -n "${FUZZ_RUNS:-}" ]; then runs=(-runs="$FUZZ_RUNS"); fi
  sanitizer=()
  if [ -n "${FUZZ_SANITIZER:-}" ]; then sanitizer=(-s "$FUZZ_SANITIZER"); fi
  mkdir -p fuzz/artifacts
  find "fuzz/corpus/$t" -type f -size +"$max_len"c -delete
  (cd fuzz && cargo +nightly fuzz run "${sanitizer[@]}" "$t" "corpus/$t" -- -max_total_time="$secs" "${runs[@]}" -max_len="$max_len" \
      -print_final_stats=1 2>&1) > "fuzz/artifacts/$t.log" || true
  grep -E "stat::number_of_executed_units|Done|ERROR|panicked|SUMMARY|Test unit written" "fuzz/artifacts/$t.log" || true
done
