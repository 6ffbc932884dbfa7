#!/usr/bin/env bash
# Runs every Strongroom test: vet, the no-cgo build, and `go test -race ./...`
# with the PKCS#11 suites against throwaway SoftHSM2 tokens.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh ./internal/hsm/...   # only some packages
#
# It installs SoftHSM2 and OpenSC (pkcs11-tool) with apt-get when they are
# missing and it may (root, or CI). Without them outside CI the PKCS#11 tests
# skip, loudly; under CI=true they never skip.
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

SOFTHSM_MODULE=""
find_softhsm() {
	for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
		if [ -f "$m" ]; then SOFTHSM_MODULE=$m; return 0; fi
	done
	return 1
}

apt_updated=""
apt_install() {
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		return 1
	fi
	if [ -z "$apt_updated" ]; then
		apt-get update -qq
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

log "SoftHSM2"
if ! find_softhsm || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null; then
	echo "installing softhsm2 and opensc with apt-get"
	apt_install softhsm2 opensc || true
fi
if find_softhsm && command -v softhsm2-util >/dev/null; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-test.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	mkdir -p "$work/tokens"
	# A fresh configuration per run: SoftHSM2 resolves duplicate token
	# labels silently to the first one, so tokens must never outlive a run.
	cat >"$work/softhsm2.conf" <<-EOF
		directories.tokendir = $work/tokens
		objectstore.backend = file
		log.level = ERROR
		slots.removable = false
	EOF
	export SOFTHSM2_CONF="$work/softhsm2.conf"
	export STRONGROOM_TEST_PKCS11_MODULE="$SOFTHSM_MODULE"
	echo "module $SOFTHSM_MODULE, $(softhsm2-util --version 2>/dev/null || echo '?'), tokens in a throwaway directory"
elif [ "${CI:-}" = "true" ]; then
	echo "SoftHSM2 is required under CI=true and could not be installed" >&2
	exit 1
else
	echo "!! SoftHSM2 is not installed and could not be installed (not root?)."
	echo "!! The PKCS#11 tests will SKIP. Install it with: apt-get install -y softhsm2 opensc"
fi

log "go vet"
go vet ./...

log "build without cgo (PKCS#11 must be reported as not built in)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/strongroom

log "go test -race"
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)
go test -race -count=1 -timeout 20m "${pkgs[@]}"
