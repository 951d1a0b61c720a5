#!/usr/bin/env bash
# Side-by-side, in one run on one machine: how long dpwrap takes to decrypt a ring of N
# certificate-protected keys, against .NET's own EncryptedXml (the Mono peer's decrypt-ring),
# xmlsec1 run once per key file, and OpenSSL's raw RSA private-operation rate as the floor; then
# `dpwrap inspect` of the ring and the peak memory of a 10,000-key ring. Prints the figures and
# the ratios against the goals of the performance issue.
#
#   scripts/compare.sh [N]          N keys per ring (default 1000)
#
# Environment: RUNS (timed runs per command, the median is kept; default 3), BACKENDS (default
# "aws-lc rsa": dpwrap built with each RSA backend), RSS_KEYS (default 10000; 0 skips the memory
# measurement), XMLSEC_FILES (how many files xmlsec1 decrypts, scaled up to N; default N),
# DPWRAP_PEER (the peer's dpkeys.exe; default target/peer/dpkeys.exe as .ci/run builds it).
# Needs: cargo, openssl, xmlsec1, mono + the peer, python3, /usr/bin/time. Quiet machines give
# steadier figures: the script prints the load average before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

N=${1:-${N:-1000}}
RUNS=${RUNS:-3}
BACKENDS=${BACKENDS:-"aws-lc rsa"}
RSS_KEYS=${RSS_KEYS:-10000}
XMLSEC_FILES=${XMLSEC_FILES:-$N}
peer=${DPWRAP_PEER:-$root/target/peer/dpkeys.exe}

work=$(mktemp -d "${TMPDIR:-/tmp}/dpwrap-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
say() { printf '%s\n' "$*" >&2; }

for tool in openssl xmlsec1 mono python3 /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || { say "compare.sh: $tool is required"; exit 2; }
done
[ -f "$peer" ] || { say "compare.sh: the Mono peer is not at $peer (set DPWRAP_PEER, or run ../shared/peers/dotnet-peer/build.sh target/peer)"; exit 2; }

# --- build -----------------------------------------------------------------------------------
for backend in $BACKENDS; do
  features=""
  [ "$backend" = aws-lc ] && features="--features dpwrap/aws-lc"
  say "== building dpwrap (release, $backend backend)"
  # shellcheck disable=SC2086
  cargo build --release --quiet -p dpwrap-cli $features
  cp target/release/dpwrap "$work/dpwrap-$backend"
  ex_features=""
  [ "$backend" = aws-lc ] && ex_features="--features aws-lc"
  # shellcheck disable=SC2086
  cargo build --release --quiet -p dpwrap --example big_ring $ex_features
  cp target/release/examples/big_ring "$work/big_ring-$backend"
done
first=${BACKENDS%% *}
gen="$work/big_ring-$first"

# The CLI's decrypt command (issue 4) when this build has it; otherwise the library through the
# big_ring example, which decrypts the same way (dpwrap::ring over the directory).
have_cli_decrypt=0
if "$work/dpwrap-$first" decrypt --help >/dev/null 2>&1; then have_cli_decrypt=1; fi
decrypt_cmd() { # backend dir
  if [ "$have_cli_decrypt" = 1 ]; then
    echo "$work/dpwrap-$1" decrypt --cert "$work/cert.pem" --key "$work/key.pem" "$2"
  else
    echo "$work/big_ring-$1" decrypt --cert "$work/cert.pem" --key "$work/key.pem" "$2"
  fi
}

# --- material and rings ------------------------------------------------------------------------
say "== a 2048-bit certificate (openssl) and two $N-key rings (rsa-1_5 as ASP.NET writes, RSA-OAEP)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 30 -subj "/CN=dpwrap compare" >/dev/null 2>&1
"$gen" gen --out "$work/ring-rsa15" --count "$N" --cert "$work/cert.pem" --transport rsa-1_5 \
  --manifest "$work/rsa15.jsonl" 2>/dev/null
"$gen" gen --out "$work/ring-oaep" --count "$N" --cert "$work/cert.pem" --transport oaep \
  --manifest "$work/oaep.jsonl" 2>/dev/null

say "== correctness first: dpwrap and the peer both give every manifest master key"
for ring in rsa15 oaep; do
  "$work/big_ring-$first" decrypt --cert "$work/cert.pem" --key "$work/key.pem" \
    --manifest "$work/$ring.jsonl" "$work/ring-$ring" >/dev/null
  mono "$peer" decrypt-ring --dir "$work/ring-$ring" --cert "$work/cert.pem" --key "$work/key.pem" \
    >"$work/peer-$ring.out"
  python3 - "$work/$ring.jsonl" "$work/peer-$ring.out" <<'PY'
import json, sys
want = {json.loads(l)["key_id"]: json.loads(l)["master_key_b64"] for l in open(sys.argv[1]) if l.strip()}
got = {}
for l in open(sys.argv[2]):
    if l.lstrip().startswith("{"):
        v = json.loads(l)
        if v.get("kind") == "key":
            got[v["key_id"]] = v.get("master_key_b64")
bad = [k for k in want if got.get(k) != want[k]]
if bad or len(got) != len(want):
    sys.exit(f"the peer disagrees on {len(bad)} of {len(want)} keys")
PY
  if [ "$have_cli_decrypt" = 1 ]; then
    "$work/dpwrap-$first" decrypt --json --reveal --cert "$work/cert.pem" --key "$work/key.pem" \
      "$work/ring-$ring" >"$work/cli-$ring.out"
    python3 - "$work/$ring.jsonl" "$work/cli-$ring.out" <<'PY'
import json, sys
want = {json.loads(l)["key_id"]: json.loads(l)["master_key_b64"] for l in open(sys.argv[1]) if l.strip()}
got = {}
for l in open(sys.argv[2]):
    if l.lstrip().startswith("{"):
        v = json.loads(l)
        got[v["key_id"]] = v.get("master_key")
bad = [k for k in want if got.get(k) != want[k]]
if bad or len(got) != len(want):
    sys.exit(f"the dpwrap CLI disagrees on {len(bad)} of {len(want)} keys")
PY
  fi
done

# --- timing --------------------------------------------------------------------------------------
# median of RUNS wall-clock runs, in seconds
measure() {
  local runs=$1; shift
  local times=() s e
  for ((i = 0; i < runs; i++)); do
    s=$(date +%s.%N)
    if ! "$@" >/dev/null 2>&1; then say "compare.sh: failed: $*"; return 1; fi
    e=$(date +%s.%N)
    times+=("$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.4f", e - s }')")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}
xmlsec_loop() { # dir count
  local n=0
  for f in "$1"/*.xml; do
    [ "$n" -ge "$2" ] && break
    xmlsec1 --decrypt --privkey-pem "$work/key.pem" \
      --node-xpath "//*[local-name()='EncryptedData']" "$f" >/dev/null 2>&1 || return 1
    n=$((n + 1))
  done
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ms() { awk -v s="$1" 'BEGIN { printf "%.0f ms", s * 1000 }'; }
verdict() { awk -v v="$1" -v goal="$2" -v dir="$3" 'BEGIN { ok = (dir == ">=") ? v >= goal : v < goal; print ok ? "met" : "MISSED" }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A T
say "== timing (median of $RUNS runs each; load average $load_before)"
for ring in rsa15 oaep; do
  for backend in $BACKENDS; do
    # shellcheck disable=SC2046
    T[dpwrap-$backend-$ring]=$(measure "$RUNS" $(decrypt_cmd "$backend" "$work/ring-$ring"))
    say "   dpwrap ($backend) decrypt, $ring: ${T[dpwrap-$backend-$ring]} s"
  done
  T[peer-$ring]=$(measure "$RUNS" mono "$peer" decrypt-ring --dir "$work/ring-$ring" \
    --cert "$work/cert.pem" --key "$work/key.pem")
  say "   peer decrypt-ring, $ring: ${T[peer-$ring]} s"
  files=$((XMLSEC_FILES < N ? XMLSEC_FILES : N))
  t=$(measure "$RUNS" xmlsec_loop "$work/ring-$ring" "$files")
  T[xmlsec-$ring]=$(awk -v t="$t" -v f="$files" -v n="$N" 'BEGIN { printf "%.4f", t * n / f }')
  say "   xmlsec1 x $files, $ring: $t s (scaled to $N: ${T[xmlsec-$ring]} s)"
done

# One key, one thread: a certificate-protected master key decrypted in a loop (big_ring speed)
# beside `openssl speed rsa2048` (its sign column is the private-operation rate), alternated
# RUNS times so that both see the same load; the medians are kept.
cores=$(nproc)
declare -a speeds
declare -A perkey
for ((i = 0; i < RUNS; i++)); do
  speeds+=("$(openssl speed -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }')")
  for backend in $BACKENDS; do
    perkey[$backend]+="$("$work/big_ring-$backend" speed --seconds 3 --cert "$work/cert.pem" \
      --key "$work/key.pem" | awk '{ print $(NF - 1) }') "
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
speed=$(median "${speeds[@]}")
for backend in $BACKENDS; do
  # shellcheck disable=SC2086
  T[perkey-$backend]=$(median ${perkey[$backend]})
  say "   dpwrap ($backend) one key, one thread: ${T[perkey-$backend]} decryptions/s (runs: ${perkey[$backend]})"
done
speed_multi=$(openssl speed -seconds 3 -multi "$cores" rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }')
say "   openssl speed rsa2048: $speed private ops/s (1 thread; runs: ${speeds[*]}), ${speed_multi:-?} ($cores processes)"

if [ "$have_cli_decrypt" = 1 ] || "$work/dpwrap-$first" inspect --help >/dev/null 2>&1; then
  T[inspect]=$(measure "$((RUNS * 3))" "$work/dpwrap-$first" inspect "$work/ring-rsa15")
else
  T[inspect]=""
fi

rss_kib=""
if [ "$RSS_KEYS" -gt 0 ]; then
  say "== peak memory decrypting a $RSS_KEYS-key ring"
  "$gen" gen --out "$work/ring-big" --count "$RSS_KEYS" --cert "$work/cert.pem" \
    --transport mixed 2>/dev/null
  # shellcheck disable=SC2046
  /usr/bin/time -v $(decrypt_cmd "$first" "$work/ring-big") >/dev/null 2>"$work/rss.txt" || true
  rss_kib=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$work/rss.txt")
  rm -rf "$work/ring-big"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------------------------
fast=$first
d15=${T[dpwrap-$fast-rsa15]}
doaep=${T[dpwrap-$fast-oaep]}
echo
echo "dpwrap performance comparison, $(date -u +%Y-%m-%d) on $(lscpu 2>/dev/null | awk -F: '/Model name/ { gsub(/^ +/, "", $2); print $2; exit }') ($cores cores)"
echo "load average before/after: $load_before / $load_after; $RUNS runs per figure (median)"
echo "$(openssl version | cut -d' ' -f1-2); $(xmlsec1 --version 2>/dev/null | head -1); $(mono --version | head -1 | cut -d'(' -f1)"
if [ "$have_cli_decrypt" = 1 ]; then echo "dpwrap: the CLI's decrypt"; else echo "dpwrap: examples/big_ring decrypt (the CLI in this build has no decrypt command)"; fi
echo
printf '| %-44s | %14s | %14s |\n' "$N-key ring, 2048-bit certificate" "rsa-1_5" "RSA-OAEP"
printf '| %-44s | %14s | %14s |\n' "---" "---:" "---:"
for backend in $BACKENDS; do
  printf '| %-44s | %14s | %14s |\n' "dpwrap decrypt ($backend backend)" "$(ms "${T[dpwrap-$backend-rsa15]}")" "$(ms "${T[dpwrap-$backend-oaep]}")"
done
printf '| %-44s | %14s | %14s |\n' ".NET EncryptedXml (Mono peer decrypt-ring)" "$(ms "${T[peer-rsa15]}")" "$(ms "${T[peer-oaep]}")"
printf '| %-44s | %14s | %14s |\n' "xmlsec1 --decrypt, once per file" "$(ms "${T[xmlsec-rsa15]}")" "$(ms "${T[xmlsec-oaep]}")"
echo
for backend in $BACKENDS; do
  echo "dpwrap ($backend), one certificate-protected key decrypted in a loop, one thread: ${T[perkey-$backend]} /s"
done
echo "openssl speed rsa2048 (private operations/s): $speed on 1 thread, ${speed_multi:-?} on $cores"
[ -n "${T[inspect]}" ] && echo "dpwrap inspect of the $N-key ring: $(ms "${T[inspect]}")"
[ -n "$rss_kib" ] && echo "peak RSS decrypting a $RSS_KEYS-key ring: $((rss_kib / 1024)) MiB ($rss_kib KiB)"
echo
echo "Goals"
r=$(ratio "${T[perkey-$fast]}" "$speed")
echo "- per-key decrypt at 2048 bits ($fast), vs OpenSSL's private-op rate: ${r}x (goal >= 0.8): $(verdict "$r" 0.8 '>=')"
r1=$(ratio "${T[peer-rsa15]}" "$d15"); r2=$(ratio "${T[peer-oaep]}" "$doaep")
echo "- $N-key ring vs the Mono peer: ${r1}x (rsa-1_5), ${r2}x (OAEP) (goal >= 10): $(verdict "$r1" 10 '>=') / $(verdict "$r2" 10 '>=')"
r1=$(ratio "${T[xmlsec-rsa15]}" "$d15"); r2=$(ratio "${T[xmlsec-oaep]}" "$doaep")
echo "- $N-key ring vs xmlsec1 looped: ${r1}x (rsa-1_5), ${r2}x (OAEP) (goal >= 3): $(verdict "$r1" 3 '>=') / $(verdict "$r2" 3 '>=')"
if [ -n "$rss_kib" ]; then
  echo "- $RSS_KEYS-key ring peak RSS: $((rss_kib / 1024)) MiB (goal < 64 MiB): $(verdict "$rss_kib" 65536 '<')"
fi
if [ -n "${T[inspect]}" ]; then
  echo "- inspect of the $N-key ring: $(ms "${T[inspect]}") (goal < 100 ms): $(verdict "${T[inspect]}" 0.1 '<')"
fi
