#!/usr/bin/env bash
# A guided run of what Strongroom does today, in a throwaway directory:
# initialize a primary HSM and two regional HSMs, enroll both regions, make
# three crypto officers, and run a release ceremony with a quorum of two:
# a refused run with one approval, then the real one, then an offline check
# of every bundle and the transcript against primary.pub.
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

# Development only: officer keys sealed under this passphrase.
export STRONGROOM_OFFICER_PASSPHRASE="demo officer passphrase"
for o in alice bob carol; do sr officer new --name "$o" --out "$o.key"; done
sr ceremony plan --release 2026-1 --primary primary.pub --region eu1.cert --region us1.cert \
	--officer alice.pub --officer bob.pub --officer carol.pub --quorum 2 --out 2026-1.plan
sr ceremony approve --plan 2026-1.plan --primary primary.pub --key alice.key --out alice.approval

printf '\n$ strongroom ceremony run ... --approval alice.approval   # one approval: must refuse\n'
if (cd "$dir" && ./strongroom ceremony run --hsm soft:primary.hsm --plan 2026-1.plan --approval alice.approval --out out); then
	echo "unexpected: the ceremony ran without quorum" >&2
	exit 1
fi
sr ceremony approve --plan 2026-1.plan --primary primary.pub --key bob.key --out bob.approval
sr ceremony run --hsm soft:primary.hsm --plan 2026-1.plan --approval alice.approval --approval bob.approval --out out
sr ceremony verify --transcript --primary primary.pub out/2026-1.eu1.bundle out/2026-1.us1.bundle out/2026-1.primary out/2026-1.transcript

printf '\n$ strongroom hsm init --hsm soft:eu1.hsm ...   # a second init must refuse\n'
if (cd "$dir" && ./strongroom hsm init --hsm soft:eu1.hsm --role regional --region eu1 --out again.req); then
	echo "unexpected: a second init succeeded" >&2
	exit 1
fi

echo
echo "Done. Files: $(cd "$dir" && ls | tr '\n' ' ')"
[ -n "$keep" ] && echo "Kept in $dir"
exit 0
