#!/usr/bin/env bash
# A guided run of what Strongroom does today, in a throwaway directory:
# initialize a primary HSM and two regional HSMs, enroll both regions at the
# primary, and verify their certificates offline against primary.pub.
#
#   ./scripts/demo.sh            # soft HSMs (pure Go, no set-up)
#   ./scripts/demo.sh --keep     # keep the directory to look at the files
set -euo pipefail

cd "$(dirname "$0")/.."
keep=""
[ "${1:-}" = "--keep" ] && keep=1

dir=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-demo.XXXXXX")
if [ -z "$keep" ]; then trap 'rm -rf "$dir"' EXIT; fi

go build -o "$dir/strongroom" ./cmd/strongroom
sr() { printf '\n$ strongroom %s\n' "$*"; (cd "$dir" && ./strongroom "$@"); }

# Development only: soft HSM files sealed under this passphrase.
export STRONGROOM_HSM_PASSPHRASE="demo passphrase, not for production"

echo "Working in $dir"
sr version
sr hsm init --hsm soft:primary.hsm --role primary --out primary.pub
sr hsm init --hsm soft:eu1.hsm --role regional --region eu1 --out eu1.req
sr hsm init --hsm soft:us1.hsm --role regional --region us1 --out us1.req
sr region enroll --hsm soft:primary.hsm --request eu1.req --out eu1.cert
sr region enroll --hsm soft:primary.hsm --request us1.req --out us1.cert
sr region verify --primary primary.pub eu1.cert us1.cert
sr hsm info --hsm soft:primary.hsm

printf '\n$ strongroom hsm init --hsm soft:eu1.hsm ...   # a second init must refuse\n'
if (cd "$dir" && ./strongroom hsm init --hsm soft:eu1.hsm --role regional --region eu1 --out again.req); then
	echo "unexpected: a second init succeeded" >&2
	exit 1
fi

echo
echo "Done. Files: $(cd "$dir" && ls | tr '\n' ' ')"
[ -n "$keep" ] && echo "Kept in $dir"
exit 0
