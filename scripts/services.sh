#!/usr/bin/env bash
# Makes sure the services the tests talk to are up, starting each one that
# is down with the command its Debian package provides. Sourced by
# scripts/test.sh; safe to run on its own. Every service listens on
# loopback only.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
	for _ in $(seq $(($3 * 10))); do
		port_open "$2" && return 0
		sleep 0.1
	done
	echo "services: $1 did not come up on 127.0.0.1:$2 within $3s" >&2
	return 1
}

ensure() { # name port start-command...
	local name=$1 port=$2
	shift 2
	if port_open "$port"; then
		echo "services: $name up on 127.0.0.1:$port"
		return 0
	fi
	echo "services: $name is down; starting it"
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "services: cannot start $name: $1 is not installed" >&2
		return 1
	fi
	"$@"
	wait_port "$name" "$port" 60
}

ensure PostgreSQL 5432 bash -c 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start'
ensure MariaDB 3306 start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
ensure NATS 4222 start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

# The web UI's end-to-end test drives Debian's headless Chromium; install it
# when it is missing (the test fails without it when CI=true).
if [ ! -x /usr/bin/chromium ]; then
	echo "services: chromium is missing; installing it"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends chromium >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
else
	echo "services: chromium at /usr/bin/chromium"
fi
