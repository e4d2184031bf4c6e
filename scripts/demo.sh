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
echo "demo: metrics are in metrics/*.json (all of them: dvc metrics show; per experiment: dvc exp show)"
echo
echo "demo: corpusprov verify (dvc.lock <-> manifests <-> bytes on disk)"
corpusprov verify
echo
echo "demo: done. Outputs:"
echo "  data/merged/encode_grid.jsonl    (+ .manifest.json; rejects in data/merged/rejects/)"
echo "  data/unified/mos_unified.jsonl   (+ .manifest.json; rejects in data/unified/rejects/)"
echo "  data/*/*.croissant.json, data/*/*.jsonl.intoto.json  (Croissant metadata, in-toto/SLSA provenance)"
echo "  metrics/merge.json, metrics/aggregate.json, dvc.lock"
echo "Read a manifest: corpusprov manifest show data/merged/encode_grid.jsonl.manifest.json"
echo "Trace a key:     corpusprov trace aggregate src_sha256=<sha>"
echo "Replay a build:  corpusprov replay data/unified/mos_unified.jsonl.manifest.json"
echo "Follow lineage:  corpusprov lineage data/merged/encode_grid.jsonl"
echo "Cite a corpus:   corpusprov cite data/unified/mos_unified.jsonl.manifest.json"
echo "Keep the build:  git add dvc.lock params.yaml metrics plots && git commit -m \"Build the corpus\" && dvc push"
