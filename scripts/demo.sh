#!/usr/bin/env bash
# The demo pipeline: sample shards -> dvc repro -> where the outputs and manifests are.
set -euo pipefail
cd "$(dirname "$0")/.."
export DVC_NO_ANALYTICS=1

if [ ! -d .git ] && ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "demo: not a git checkout; DVC needs one (git init first)" >&2
  exit 2
fi

echo "demo: dvc repro (writes the sample shards, then runs every stage)"
dvc repro

echo
echo "demo: outputs"
for manifest in data/*/*.manifest.json; do
  corpusprov manifest validate "$manifest"
done
echo
dvc metrics show
echo
echo "demo: done. Read a manifest with: corpusprov manifest show data/merged/encode_grid.jsonl.manifest.json"
