#!/usr/bin/env bash
# The single-user default remote: write an absolute path for remote `local` into
# .dvc/config.local (git-ignored), a folder beside the repository. Absolute, because DVC
# resolves a relative URL in .dvc/config against the root of whichever git revision it
# reads, so `dvc push --all-tags` or `dvc exp push` would write to /corpusprov-dvc-remote.
# config.local is read from the working tree for every revision. Idempotent: an existing
# `local` remote in config.local (yours) is left alone.
#   scripts/local-remote.sh [REPO]   (default: this repository)
set -euo pipefail
repo="${1:-$(dirname "$0")/..}"
cd "$repo"
repo="$(pwd -P)"
local_config=".dvc/config.local"
if [ -f "$local_config" ] && grep -q "remote \"local\"" "$local_config"; then
  exit 0
fi
url="$(dirname "$repo")/corpusprov-dvc-remote"
mkdir -p .dvc
printf "['remote \"local\"']\n    url = %s\n" "$url" >> "$local_config"
echo "setup: DVC remote 'local' is $url (in $local_config; see README, Share with your team)"
