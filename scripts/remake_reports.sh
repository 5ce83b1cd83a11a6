#!/usr/bin/env bash
# Remake the committed claims reports under docs/ from their committed records, with this checkout's code
# (run=false: nothing is trained; each report counts its runs as reused). Run after a change to how
# records are read, judged or shown, then look at the diff. Needs MNIST (dataset.root or SPARSEBENCH_DATA)
# and the install of scripts/install.sh. Arguments: the reports to remake (default: all), by folder name.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
declare -A how=(
  [claims-standard]="profile=standard"
  [claims-standard-near-ties]="profile=standard tune.confirm_near_ties=true records=claims-standard"
  [claims-cnn]="profile=cnn"
  [claims-home]="profile=paper claims=K1,K2,K3"
  [claims-home-d4]="profile=paper claims=D4"
  [claims-home-k4]="profile=paper claims=K4"
  [claims-map]="profile=map map_axes=wide"
  [claims-map-default]="profile=map"
)
reports=("$@")
[ ${#reports[@]} -gt 0 ] || reports=(claims-standard claims-standard-near-ties claims-cnn claims-home claims-home-d4 claims-home-k4 claims-map claims-map-default)
for report in "${reports[@]}"; do
  { [ -n "$report" ] && [ -n "${how[$report]:-}" ]; } || { echo "remake_reports.sh: error: no report $report (known: ${!how[*]})" >&2; exit 2; }
  settings=()
  records=$report
  for word in ${how[$report]}; do
    case $word in records=*) records=${word#records=} ;; *) settings+=("$word") ;; esac
  done
  [ -d "docs/$records/records" ] || { echo "skipped $report: no docs/$records/records"; continue; }
  echo "== $report"
  # A report whose records lack runs (K4's home while it runs) is written with them counted as not run, and
  # exits 0; exit 1 means a data set is missing, and the script stops there.
  sparsebench-claims "${settings[@]}" results_dir="docs/$records/records" run=false out="docs/$report" progress=off
done
