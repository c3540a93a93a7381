#!/usr/bin/env bash
# Runs a private RabbitMQ with STOMP and Web-STOMP on loopback, for comparing brokers with `stomp bench`.
#
#   test/bench/rabbitmq.sh start DIR    # install if missing, start, wait for both ports; prints the pid
#   test/bench/rabbitmq.sh status DIR   # prints the pid and exits 0 while it runs; exits 1 otherwise
#   test/bench/rabbitmq.sh stop DIR     # stops it and waits until it has gone
#
# Everything the node writes lives under DIR: config, enabled_plugins, Erlang cookie (HOME), data
# (mnesia) and logs. The node is not a system service: it is a child of this script's caller's
# session, started without systemd, and it listens on 127.0.0.1 only, on ports of its own, with its
# own node name and epmd port, so it never meets a system RabbitMQ or another run in another DIR.
# The printed pid is the Erlang VM's, the process whose CPU and memory a benchmark should measure.
#
# Ports (environment; defaults in brackets):
#   RABBIT_STOMP_PORT [17613]  STOMP over TCP
#   RABBIT_WS_PORT    [17674]  Web-STOMP, ws://127.0.0.1:PORT/ws
#   RABBIT_AMQP_PORT  [17672]  AMQP 0-9-1 (unused by the benchmarks, but RabbitMQ always listens)
#   RABBIT_DIST_PORT  [17675]  Erlang distribution
#   RABBIT_EPMD_PORT  [17369]  the node's own epmd, stopped with the node
# RABBIT_START_TIMEOUT [90] bounds start, in seconds; RABBIT_STOP_TIMEOUT [60] bounds stop. guest/guest
# logs in from loopback.
set -euo pipefail

usage() {
	echo "usage: $0 start|stop|status DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)

stomp_port=${RABBIT_STOMP_PORT:-17613}
ws_port=${RABBIT_WS_PORT:-17674}
amqp_port=${RABBIT_AMQP_PORT:-17672}
dist_port=${RABBIT_DIST_PORT:-17675}
epmd_port=${RABBIT_EPMD_PORT:-17369}
start_timeout=${RABBIT_START_TIMEOUT:-90}
stop_timeout=${RABBIT_STOP_TIMEOUT:-60}

# Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user and writes under /var; the script
# behind it runs the node with what the environment below says.
server=/usr/lib/rabbitmq/bin/rabbitmq-server
vm_pid_file=$dir/rabbit.pid      # written by the node: the Erlang VM's pid
wrapper_pid_file=$dir/wrapper.pid # the rabbitmq-server script that waits on the VM

log() { printf 'rabbitmq.sh: %s\n' "$*" >&2; }

die() {
	log "$*"
	exit 1
}

# port_open reports whether something accepts connections on 127.0.0.1:$1.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# running reports whether process $1 exists and is not a zombie waiting for its parent to reap it.
running() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# alive reports whether the pid in file $1 names a running process.
alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(<"$1")
	[ -n "$pid" ] && running "$pid"
}

install_if_missing() {
	[ -x "$server" ] && return 0
	log "installing Debian's rabbitmq-server"
	local sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	# Debian's package may start a system node on its default ports; ours uses other ports and never
	# touches it.
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
	[ -x "$server" ] || die "$server still missing after apt-get install rabbitmq-server"
}

write_config() {
	mkdir -p "$dir/mnesia" "$dir/log" "$dir/plugins-expand"
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.1 = 127.0.0.1:$amqp_port
		stomp.listeners.tcp.1 = 127.0.0.1:$stomp_port
		web_stomp.tcp.ip = 127.0.0.1
		web_stomp.tcp.port = $ws_port
		web_stomp.ws_path = /ws
		loopback_users.guest = true
		log.file.level = warning
		log.console = false
	EOF
	# Offline, so no running node is asked: the plugins the node starts with, and nothing more (no
	# management UI).
	printf '[rabbitmq_stomp,rabbitmq_web_stomp].\n' >"$dir/enabled_plugins"
	# An empty env file, so that /etc/rabbitmq/rabbitmq-env.conf cannot change the node name or ports.
	: >"$dir/rabbitmq-env.conf"
	if [ ! -s "$dir/.erlang.cookie" ]; then
		(umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$dir/.erlang.cookie")
		chmod 400 "$dir/.erlang.cookie"
	fi
}

start() {
	if alive "$vm_pid_file"; then
		printf '%s\n' "$(<"$vm_pid_file")"
		return 0
	fi
	for port in "$stomp_port" "$ws_port" "$amqp_port" "$dist_port"; do
		port_open "$port" && die "127.0.0.1:$port is already taken; set RABBIT_*_PORT (see $0)"
	done
	install_if_missing
	write_config
	rm -f "$vm_pid_file" "$wrapper_pid_file"

	# setsid: the node has a session of its own, so a terminal's Ctrl-C goes to the caller, which then
	# stops the node with this script.
	(
		cd "$dir"
		export HOME=$dir
		export RABBITMQ_NODENAME="stompd-bench-$stomp_port@localhost"
		export RABBITMQ_USE_LONGNAME=false
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT=$amqp_port
		export RABBITMQ_DIST_PORT=$dist_port
		export ERL_EPMD_PORT=$epmd_port
		export ERL_EPMD_ADDRESS=127.0.0.1
		export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
		export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
		export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
		export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
		export RABBITMQ_PLUGINS_EXPAND_DIR=$dir/plugins-expand
		export RABBITMQ_MNESIA_BASE=$dir/mnesia
		export RABBITMQ_LOG_BASE=$dir/log
		export RABBITMQ_LOGS=$dir/log/rabbit.log
		export RABBITMQ_PID_FILE=$vm_pid_file
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
		exec setsid "$server" </dev/null >"$dir/log/startup.log" 2>&1
	) &
	echo $! >"$wrapper_pid_file"

	local deadline=$((SECONDS + start_timeout))
	until alive "$vm_pid_file" && port_open "$stomp_port" && port_open "$ws_port"; do
		if ! alive "$wrapper_pid_file"; then
			log "rabbitmq-server exited during start; last lines of its logs:"
			tail -n 30 "$dir/log/startup.log" "$dir/log/rabbit.log" >&2 2>/dev/null || true
			stop_processes
			exit 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "STOMP :$stomp_port and Web-STOMP :$ws_port not up within ${start_timeout}s; last lines of its logs:"
			tail -n 30 "$dir/log/startup.log" "$dir/log/rabbit.log" >&2 2>/dev/null || true
			stop_processes
			exit 1
		fi
		sleep 0.2
	done
	printf '%s\n' "$(<"$vm_pid_file")"
}

# wait_gone waits until pid $1 has exited, for at most $2 seconds.
wait_gone() {
	local deadline=$((SECONDS + $2))
	while running "$1"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# stop_processes stops the VM (SIGTERM makes RabbitMQ shut down cleanly), the script that waits on it,
# and the node's own epmd; after the timeout it kills what is left.
stop_processes() {
	local pid_file pid
	for pid_file in "$vm_pid_file" "$wrapper_pid_file"; do
		alive "$pid_file" || continue
		pid=$(<"$pid_file")
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" "$stop_timeout"; then
			log "pid $pid still running ${stop_timeout}s after SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 10 || die "pid $pid survives SIGKILL"
		fi
	done
	# epmd outlives the node that started it; this one serves only our private port.
	if port_open "$epmd_port"; then
		ERL_EPMD_PORT=$epmd_port epmd -kill >/dev/null 2>&1 || true
	fi
	rm -f "$vm_pid_file" "$wrapper_pid_file"
}

case $action in
start) start ;;
stop) stop_processes ;;
status)
	if alive "$vm_pid_file"; then
		printf '%s\n' "$(<"$vm_pid_file")"
	else
		echo stopped
		exit 1
	fi
	;;
*) usage ;;
esac
