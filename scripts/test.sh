#!/usr/bin/env bash
# Runs every Strongroom test: vet, the no-cgo build, and `go test -race ./...`
# with the PKCS#11 suites against throwaway SoftHSM2 tokens.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh ./internal/hsm/...   # only some packages
#
# It installs openssl, SoftHSM2, OpenSC (pkcs11-tool), systemd-analyze and
# Chromium (the web console's browser test)
# with apt-get when they are missing and it may (root, or CI). Without them
# outside CI the tests that need them skip, loudly; under CI=true they never
# skip.
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

# One cleanup for the whole run (EXIT trap): stop the throwaway PostgreSQL
# cluster if one was started, then remove the temporary directory.
work=""
pg_data=""
pg_ctl_bin=""
pg_as=()
cleanup() {
	if [ -n "$pg_data" ] && [ -f "$pg_data/postmaster.pid" ]; then
		"${pg_as[@]}" "$pg_ctl_bin" -D "$pg_data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	if [ -n "$work" ]; then rm -rf "$work"; fi
}

log "openssl, curl, jq"
# The BYOK tests sign a tenant's CA certificate with openssl; docs/curl.md's
# examples run with curl and jq. Each fails in CI without them.
missing=()
for tool in openssl curl jq; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]} with apt-get"
	apt_install "${missing[@]}" || true
fi
openssl version || echo "!! openssl is not installed: the BYOK tests that use it will SKIP (FAIL under CI=true)"
curl --version | head -1 || echo "!! curl is not installed: TestCurlExamples will SKIP (FAIL under CI=true)"
jq --version || echo "!! jq is not installed: TestCurlExamples will SKIP (FAIL under CI=true)"

log "SoftHSM2"
if ! find_softhsm || ! command -v softhsm2-util >/dev/null || ! command -v pkcs11-tool >/dev/null; then
	echo "installing softhsm2 and opensc with apt-get"
	apt_install softhsm2 opensc || true
fi
if find_softhsm && command -v softhsm2-util >/dev/null; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-test.XXXXXX")
	trap cleanup EXIT
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

log "systemd-analyze"
# deploy's tests check the systemd unit with systemd-analyze (verify and
# security); they fail under CI=true without it.
if ! command -v systemd-analyze >/dev/null; then
	echo "installing systemd with apt-get"
	apt_install systemd || true
fi
systemd-analyze --version | head -1 || echo "!! systemd-analyze is not installed: TestSystemdUnit will SKIP (FAIL under CI=true)"

log "Chromium"
# The web console's browser test (internal/console) drives Debian's
# chromium headless with chromedp; it fails under CI=true without it.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
	echo "installing chromium with apt-get"
	apt_install chromium fonts-dejavu-core || true
fi
chromium --version 2>/dev/null | grep -v '^$' | tail -1 || echo "!! chromium is not installed: TestBrowser will SKIP (FAIL under CI=true)"

# ---------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster for the store's PostgreSQL driver tests
# (internal/store/postgres, internal/store/engine, and the services' tests on
# both engines). storetest.Postgres makes
# a database per test from STRONGROOM_TEST_POSTGRES and drops it afterwards.
# Under CI=true a cluster that cannot start fails the run; elsewhere those
# tests skip, loudly.
log "PostgreSQL"
pg_bin=""
find_postgres() {
	if command -v initdb >/dev/null && command -v pg_ctl >/dev/null && command -v postgres >/dev/null; then
		# /usr/local/bin may hold only symlinks: use the directory they point to.
		pg_bin=$(dirname "$(readlink -f "$(command -v initdb)")")
		return 0
	fi
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			pg_bin=$d
			return 0
		fi
	done
	return 1
}

# port_in_use PORT: something accepts connections on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_postgres: initdb, start on a free loopback port, create a database;
# sets pg_url. Returns non-zero (and prints why) on failure.
pg_url=""
start_postgres() {
	pg_ctl_bin="$pg_bin/pg_ctl"
	if [ -z "$work" ]; then
		work=$(mktemp -d "${TMPDIR:-/tmp}/strongroom-test.XXXXXX") || return 1
		trap cleanup EXIT
	fi
	local base="$work/postgres"
	mkdir -p "$base/run" || return 1
	if [ "$(id -u)" -eq 0 ]; then
		# initdb and postgres refuse to run as root: run them as the postgres
		# system user, which may only traverse (not list) the temp dir.
		if ! id postgres >/dev/null 2>&1; then
			echo "running as root, and there is no postgres system user to run the cluster as" >&2
			return 1
		fi
		if command -v runuser >/dev/null; then
			pg_as=(runuser -u postgres --)
		else
			pg_as=(su postgres -s /bin/sh -c '"$0" "$@"')
		fi
		chmod 711 "$work" || return 1
		chown -R postgres: "$base" || return 1
	fi
	# Trust on loopback and the socket (initdb --auth=trust): a throwaway
	# cluster that only this run's processes can reach.
	if ! "${pg_as[@]}" "$pg_bin/initdb" -D "$base/data" -U postgres --auth=trust --no-locale -E UTF8 --no-sync \
		>"$base/initdb.log" 2>&1; then
		cat "$base/initdb.log" >&2
		return 1
	fi
	# fsync off: the cluster dies with the run, and test speed matters. The
	# driver still requires synchronous_commit=on, the default, kept here.
	cat >>"$base/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$base/run'
		fsync = off
		full_page_writes = off
		max_connections = 200
	EOF
	pg_data="$base/data"
	local createdb="$pg_bin/createdb"
	[ -x "$createdb" ] || createdb=$(command -v createdb) || return 1
	local port tries=0
	for port in $(seq 55432 55531); do
		port_in_use "$port" && continue
		if "${pg_as[@]}" "$pg_ctl_bin" -D "$pg_data" -l "$base/server.log" -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
			if ! "$createdb" -h 127.0.0.1 -p "$port" -U postgres strongroom_test; then
				return 1
			fi
			pg_url="postgres://postgres@127.0.0.1:$port/strongroom_test?sslmode=disable"
			return 0
		fi
		# Lost a race for the port, or the server cannot start: a few tries.
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			tail -n 20 "$base/server.log" >&2 || true
			return 1
		fi
	done
	echo "no free port in 55432-55531" >&2
	return 1
}

if ! find_postgres; then
	echo "installing postgresql with apt-get"
	apt_install postgresql || true
fi
if find_postgres && start_postgres; then
	export STRONGROOM_TEST_POSTGRES="$pg_url"
	echo "$("$pg_bin/postgres" --version) from $pg_bin, throwaway cluster at $STRONGROOM_TEST_POSTGRES"
elif [ "${CI:-}" = "true" ]; then
	echo "PostgreSQL is required under CI=true and could not be installed or started" >&2
	exit 1
else
	echo "!! PostgreSQL is not installed or could not start (see above)."
	echo "!! The PostgreSQL store tests will SKIP. Install it with: apt-get install -y postgresql"
fi
# ---------------------------------------------------------------------------

log "go vet"
go vet ./...

log "build without cgo (PKCS#11 must be reported as not built in)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/strongroom

log "go test -race"
pkgs=("$@")
[ ${#pkgs[@]} -eq 0 ] && pkgs=(./...)
# -parallel 4: the slow tests mostly wait for child servers, the database
# or fsync, so more of them than cores run at once.
go test -race -count=1 -parallel 4 -timeout 20m "${pkgs[@]}"
