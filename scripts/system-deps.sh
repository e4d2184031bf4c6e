#!/usr/bin/env bash
# Debian packages a make target needs: install the missing ones with apt-get when root,
# otherwise name them and the command in one line and fail.
#   scripts/system-deps.sh base   git and python3-venv (make setup: the venv, DVC's git)
#   scripts/system-deps.sh test   chromium and openssh-server (the browser and SSH-remote tests)
set -euo pipefail
PYTHON="${PYTHON:-python3}"
# The SSH-remote tests start this binary (tests/test_remotes.py); overridable for the tests of this script.
SSHD="${CORPUSPROV_SSHD:-/usr/sbin/sshd}"

missing=()
case "${1:-}" in
  base)
    command -v git >/dev/null 2>&1 || missing+=(git)
    "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
    ;;
  test)
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
    [ -x "$SSHD" ] || missing+=(openssh-server)
    ;;
  *)
    echo "usage: scripts/system-deps.sh base|test" >&2
    exit 2
    ;;
esac
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]} (apt-get)" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
