#!/usr/bin/env bash
# Manifest load benchmark: kelpie's strict decode + default + validate + hash
# (BenchmarkLoad; BenchmarkLoadSerial with one worker) beside the baseline of a plain sigs.k8s.io/yaml decode into
# the same types (BenchmarkBaselineSigsYAML), in the same run, at 1,000 and
# 10,000 objects. Prints ns/object, allocations and the 10k/1k time ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
out=$(go test ./specs -run '^$' -bench '^(BenchmarkLoad|BenchmarkLoadSerial|BenchmarkBaselineSigsYAML)$' -benchmem -count "$count")
echo "$out" | grep -E '^(Benchmark|cpu|goos)'
echo
echo "$out" | awk '
/^Benchmark/ {
  split($1, a, "/"); name = a[1]; sub(/^Benchmark/, "", name)
  n = a[2]; sub(/^objects=/, "", n); sub(/-[0-9]+$/, "", n)
  for (i = 2; i <= NF; i++) {
    if ($(i+1) == "ns/op") ns[name, n] += $i
    if ($(i+1) == "ns/object") per[name, n] += $i
    if ($(i+1) == "allocs/op") al[name, n] += $i
  }
  runs[name, n]++
}
END {
  printf "%-18s %8s %14s %12s %14s\n", "benchmark", "objects", "ms/load", "ns/object", "allocs/object"
  split("Load LoadSerial BaselineSigsYAML", names, " ")
  for (k = 1; k <= 3; k++) for (j = 1; j <= 2; j++) {
    nm = names[k]; n = (j == 1 ? 1000 : 10000)
    if (!runs[nm, n]) continue
    printf "%-18s %8d %14.1f %12.0f %14.1f\n", nm, n, ns[nm, n]/runs[nm, n]/1e6, per[nm, n]/runs[nm, n], al[nm, n]/runs[nm, n]/n
  }
  for (k = 1; k <= 3; k++) {
    nm = names[k]
    if (runs[nm, 1000] && runs[nm, 10000])
      printf "%s: 10k/1k time ratio %.2f (linear = 10)\n", nm, (ns[nm, 10000]/runs[nm, 10000])/(ns[nm, 1000]/runs[nm, 1000])
  }
  if (runs["Load", 10000] && runs["BaselineSigsYAML", 10000])
    printf "Load/Baseline at 10k objects: %.2fx the time\n", (ns["Load", 10000]/runs["Load", 10000])/(ns["BaselineSigsYAML", 10000]/runs["BaselineSigsYAML", 10000])
}'
