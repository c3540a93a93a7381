#!/usr/bin/env bash
# Runs the same `stomp bench` scenarios against stompd (WebSocket and TCP), RabbitMQ (Web-STOMP and
# STOMP over TCP, Debian's rabbitmq-server) and go-stomp's own server (TCP only) on this machine, and
# prints one markdown table with the ratios and the machine's facts.
#
#   test/bench/compare.sh                  # 10 s per scenario, about 12 minutes in all
#   QUICK=1 test/bench/compare.sh          # 2 s per scenario, about 5 minutes
#   OUT=bench.md test/bench/compare.sh     # also write the table to bench.md
#
# Environment:
#   DURATION [10s; 2s with QUICK=1]   measured phase of each scenario (stomp bench -duration)
#   WARMUP   [2s;  1s with QUICK=1]   unmeasured phase before it (stomp bench -warmup)
#   IDLE_CONNECTIONS [10000]          connections held by the idle scenario; with fewer than a few
#                                     thousand, the Go runtime's 4 MB minimum heap goal is a large
#                                     part of a Go broker's figure per connection
#   LATENCY_RUNS [3]                  latency runs per broker; the table shows the one with the median p99
#   DURABLE_RATE [1000]               msg/s of the fixed-rate durable queue run
#   BROKERS  [all]                    a subset of: stompd-ws stompd-tcp rabbitmq-ws rabbitmq-tcp gostomp-tcp
#   OUT                               a file that also receives the table
#   KEEP=1                            keep the work directory (binaries, logs, JSON results)
#   BENCH_STOMPD_HTTP_PORT [18080], BENCH_STOMPD_STOMP_PORT [16613], BENCH_GOSTOMP_PORT [16614] and
#   the RABBIT_*_PORT variables of rabbitmq.sh move the brokers to other loopback ports
#
# Each broker starts fresh for its column, runs alone on the machine, and is measured with -pid: the
# idle scenario comes first, while the process is new, then fanout, pairs, fanin and latency, which
# runs LATENCY_RUNS times: a p99 over a few thousand deliveries moves by a third from run to run on a
# shared machine, so the table keeps the run with the median p99 (the others stay in the results); last
# the durable queue runs: 4 producers and 4 acknowledging consumers on one queue, every SEND
# persistent:true, each producer waiting for a RECEIPT on every SEND or every 100th, and once more with
# a RECEIPT per SEND at DURABLE_RATE messages a second in all, so that the brokers' latencies compare
# at the same load rather than each at its own saturation, with stompd keeping
# its queues in a data directory (-data-dir) and RabbitMQ storing persistent messages (go-stomp's server
# stores nothing, so it sits these out). Every
# process this script starts is stopped when it exits, even on failure or Ctrl-C. It exits 1 when a
# scenario failed (the table marks it and the notes under it say why) and 2 on a usage error.
#
# Ports, all on 127.0.0.1 unless moved (above): stompd 18080 (HTTP, /ws) and 16613 (STOMP), go-stomp
# 16614, RabbitMQ 17613 (STOMP), 17674 (Web-STOMP) and the private ports rabbitmq.sh lists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if [ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ]; then
	duration=${DURATION:-2s}
	warmup=${WARMUP:-1s}
else
	duration=${DURATION:-10s}
	warmup=${WARMUP:-2s}
fi
idle_connections=${IDLE_CONNECTIONS:-10000}
latency_runs=${LATENCY_RUNS:-3}
durable_rate=${DURABLE_RATE:-1000}
all_brokers=(stompd-ws stompd-tcp rabbitmq-ws rabbitmq-tcp gostomp-tcp)
read -r -a brokers <<<"${BROKERS:-${all_brokers[*]}}"
scenarios=(idle fanout pairs fanin latency durable1 durable100 durablerate)

stompd_http=127.0.0.1:${BENCH_STOMPD_HTTP_PORT:-18080}
stompd_stomp=127.0.0.1:${BENCH_STOMPD_STOMP_PORT:-16613}
gostomp_addr=127.0.0.1:${BENCH_GOSTOMP_PORT:-16614}
export RABBIT_STOMP_PORT=${RABBIT_STOMP_PORT:-17613} RABBIT_WS_PORT=${RABBIT_WS_PORT:-17674}

log() { printf '== %s\n' "$*" >&2; }

die() {
	printf 'compare.sh: %s\n' "$*" >&2
	exit 1
}

for b in "${brokers[@]}"; do
	case " ${all_brokers[*]} " in
	*" $b "*) ;;
	*)
		printf 'compare.sh: unknown broker %q in BROKERS; want some of: %s\n' "$b" "${all_brokers[*]}" >&2
		exit 2
		;;
	esac
done

# seconds converts a Go duration of whole seconds or milliseconds ("10s", "1500ms") to whole seconds,
# rounded up, for the outer time bound.
seconds() {
	case $1 in
	*ms) echo $((( ${1%ms} + 999) / 1000)) ;;
	*s) echo "${1%s}" ;;
	*m) echo $((${1%m} * 60)) ;;
	*) die "DURATION and WARMUP take a number of s, ms or m, e.g. 10s (got $1)" ;;
	esac
}
run_seconds=$(($(seconds "$duration") + $(seconds "$warmup")))

# Tools: jq reads the results; rabbitmq.sh installs rabbitmq-server itself.
if ! command -v jq >/dev/null 2>&1; then
	log "installing jq"
	sudo=()
	[ "$(id -u)" -eq 0 ] || sudo=(sudo)
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/stompd-compare.XXXXXX")
broker_pid=
broker_kind=
bench_pid=
failed=0

# stop_broker stops whichever broker is running, and waits for it.
stop_broker() {
	case $broker_kind in
	rabbitmq) "$here/rabbitmq.sh" stop "$work/rabbitmq" >/dev/null || true ;;
	stompd | gostomp)
		if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
			kill -TERM "$broker_pid" 2>/dev/null || true
			# stompd tells clients to go and waits up to its -shutdown-timeout (10 s) for them.
			for _ in $(seq 150); do
				kill -0 "$broker_pid" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL "$broker_pid" 2>/dev/null || true
			wait "$broker_pid" 2>/dev/null || true
		fi
		;;
	esac
	broker_pid=
	broker_kind=
}

# shellcheck disable=SC2317 # reached through the trap below
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "$bench_pid" ]; then
		kill -TERM "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
	stop_broker
	# A RabbitMQ that failed half-way through its start is stopped too.
	[ -d "$work/rabbitmq" ] && "$here/rabbitmq.sh" stop "$work/rabbitmq" >/dev/null 2>&1
	if [ -n "${KEEP:-}" ] || [ "$status" -ne 0 ]; then
		log "work directory kept: $work"
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() {
	(exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}

# wait_ports waits until every address accepts connections, for at most 30 s, while pid $1 lives.
wait_ports() {
	local pid=$1 deadline=$((SECONDS + 30)) addr
	shift
	for addr in "$@"; do
		until port_open "$addr"; do
			kill -0 "$pid" 2>/dev/null || return 1
			[ "$SECONDS" -lt "$deadline" ] || return 1
			sleep 0.1
		done
	done
}

# The machine is shared by the broker and the load tool; the idle scenario needs a descriptor per
# connection on both sides.
ulimit -n "$(ulimit -Hn)"

log "building stompd, stomp and go-stomp's server into $work"
(
	cd "$root"
	go build -o "$work/stompd" ./cmd/stompd
	go build -o "$work/stomp" ./cmd/stomp
	go build -o "$work/gostompd" github.com/go-stomp/stomp/v3/stompd
)
mkdir -p "$work/results"

for addr in "$stompd_http" "$stompd_stomp" "$gostomp_addr" "127.0.0.1:$RABBIT_STOMP_PORT" "127.0.0.1:$RABBIT_WS_PORT"; do
	port_open "$addr" && die "$addr is already in use; stop what listens there first"
done

# start_broker starts the broker of column $1 fresh and sets broker_pid, broker_url and login.
start_broker() {
	login=()
	case $1 in
	stompd-*)
		broker_kind=stompd
		# The built-in publishers are off, so that nothing but the benchmark runs.
		# Queues are stored (-data-dir, a fresh directory per column) as RabbitMQ stores persistent
		# messages; topics do not touch the store.
		rm -rf "$work/stompd-data"
		"$work/stompd" -http-addr "$stompd_http" -stomp-addr "$stompd_stomp" -stocks=false -chat=false \
			-data-dir "$work/stompd-data" -log-format json -log-level warn 2>>"$work/stompd.log" &
		broker_pid=$!
		wait_ports "$broker_pid" "$stompd_http" "$stompd_stomp" || die "stompd did not start; see $work/stompd.log"
		if [ "$1" = stompd-ws ]; then broker_url="ws://$stompd_http/ws"; else broker_url="tcp://$stompd_stomp"; fi
		;;
	gostomp-tcp)
		broker_kind=gostomp
		"$work/gostompd" -addr "$gostomp_addr" 2>>"$work/gostompd.log" &
		broker_pid=$!
		wait_ports "$broker_pid" "$gostomp_addr" || die "go-stomp's server did not start; see $work/gostompd.log"
		broker_url="tcp://$gostomp_addr"
		;;
	rabbitmq-*)
		broker_kind=rabbitmq
		broker_pid=$("$here/rabbitmq.sh" start "$work/rabbitmq")
		login=(-login guest -passcode guest)
		if [ "$1" = rabbitmq-ws ]; then
			broker_url="ws://127.0.0.1:$RABBIT_WS_PORT/ws"
		else
			broker_url="tcp://127.0.0.1:$RABBIT_STOMP_PORT"
		fi
		;;
	esac
}

# scenario_flags prints the flags of scenario $1.
scenario_flags() {
	case $1 in
	idle) echo "-connections $idle_connections -hold $duration" ;;
	fanout) echo "-subscribers 100" ;;
	pairs) echo "-pairs 50" ;;
	fanin) echo "-publishers 50" ;;
	latency) echo "-rate 100 -subscribers 100" ;;
	durable1) echo "-producers 4 -consumers 4 -persistent -receipt-every 1" ;;
	durable100) echo "-producers 4 -consumers 4 -persistent -receipt-every 100" ;;
	durablerate) echo "-producers 4 -consumers 4 -persistent -receipt-every 1 -rate $durable_rate" ;;
	esac
}

# bench_scenario prints the stomp bench scenario that scenario $1 runs.
bench_scenario() {
	case $1 in
	durable*) echo queue ;;
	*) echo "$1" ;;
	esac
}

# first_line prints the first non-empty line of file $1: what a failed command said first.
first_line() {
	grep -m 1 . "$1" || echo "(nothing on stderr)"
}

# run_scenario runs scenario $2 against column $1; the JSON goes to results/$1.$2$3.json, stderr to
# results/$1.$2$3.err and the exit status to results/$1.$2$3.status ($3, optional, tells repeated runs
# apart).
run_scenario() {
	local column=$1 scenario=$2 base="$work/results/$1.$2${3:-}" status=0 flags
	read -r -a flags <<<"$(scenario_flags "$scenario")"
	log "$column $scenario ${flags[*]}"
	# stomp bench bounds itself (-timeout); the outer bound is for a tool that hangs regardless.
	# In the background, so that a signal reaches this script's traps at once rather than after the run.
	timeout --kill-after=10 "$((run_seconds + 120))" \
		"$work/stomp" bench "$(bench_scenario "$scenario")" -url "$broker_url" "${login[@]}" -pid "$broker_pid" \
		-duration "$duration" -warmup "$warmup" -json "${flags[@]}" \
		>"$base.json" 2>"$base.err" &
	bench_pid=$!
	wait "$bench_pid" || status=$?
	bench_pid=
	echo "$status" >"$base.status"
	if [ "$status" -ne 0 ]; then
		failed=1
		log "$column $scenario: exit $status: $(first_line "$base.err")"
	fi
}

# run_latency runs the latency scenario latency_runs times against column $1 and keeps, as its result,
# the run with the median p99; a failed run is kept instead, so that the table shows the failure.
run_latency() {
	local column=$1 i base="$work/results/$1.latency" kept='' p99 ranked=()
	for ((i = 1; i <= latency_runs; i++)); do
		run_scenario "$column" latency ".$i"
		if [ "$(<"$base.$i.status")" != 0 ]; then
			kept=$i
			break
		fi
		p99=$(jq -r '.latency_us.p99 // empty' "$base.$i.json" 2>/dev/null || true)
		ranked+=("${p99:-0} $i")
	done
	if [ -z "$kept" ]; then
		kept=$(printf '%s\n' "${ranked[@]}" | sort -n | sed -n "$(((${#ranked[@]} + 1) / 2))p" | cut -d' ' -f2)
	fi
	local ext
	for ext in json err status; do
		cp "$base.$kept.$ext" "$base.$ext"
	done
}

for column in "${brokers[@]}"; do
	start_broker "$column"
	timed_out=
	for scenario in "${scenarios[@]}"; do
		if [ -n "$timed_out" ]; then
			# A broker that left one run hanging would most likely hang the next ones too.
			echo "skipped: $timed_out timed out" >"$work/results/$column.$scenario.err"
			echo skipped >"$work/results/$column.$scenario.status"
			continue
		fi
		if [ "$column" = gostomp-tcp ] && [[ $scenario == durable* ]]; then
			echo "skipped: go-stomp's server keeps no queue on disk" >"$work/results/$column.$scenario.err"
			echo skipped >"$work/results/$column.$scenario.status"
			continue
		fi
		if [ "$scenario" = latency ]; then
			run_latency "$column"
		else
			run_scenario "$column" "$scenario"
		fi
		case $(<"$work/results/$column.$scenario.status") in
		3 | 124 | 137) timed_out=$scenario ;;
		esac
	done
	stop_broker
done

# value prints a number from column $1's scenario $2 result (jq expression $3), or nothing.
value() {
	local f="$work/results/$1.$2.json"
	[ -s "$f" ] || return 0
	jq -r "($3) // empty" "$f" 2>/dev/null | tail -n 1 || true
}

# cell formats value $1 with jq format expression $2 ("." is the number), or "–" when absent, and marks
# a run that exited non-zero with †.
cell() {
	local v=$1 fmt=$2 status=$3
	if [ -z "$v" ]; then
		printf '–'
	else
		printf '%s' "$(jq -rn --argjson v "$v" "\$v | $fmt")"
	fi
	[ "$status" = 0 ] || printf ' †'
}

# jq formats: thousands separators for rates; three significant digits otherwise.
# shellcheck disable=SC2016 # jq's variables, not the shell's
fmt_int='round | tostring | explode | reverse | [foreach .[] as $c (0; . + 1; ([$c] | implode) + (if . > 1 and (. - 1) % 3 == 0 then "," else "" end))] | reverse | join("")'
# shellcheck disable=SC2016
fmt_real='if . == 0 then "0" else (3 - 1 - (fabs | log10 | floor)) as $d | if $d <= 0 then (round | tostring) else (. * pow(10; $d) | round / pow(10; $d) | tostring) end end'

# rows: label | scenario | jq expression | format
rows=(
	"fanout 1 → 100, deliveries/s|fanout|.delivered_per_s|$fmt_int"
	"pairs 50 × (1 → 1), deliveries/s|pairs|.delivered_per_s|$fmt_int"
	"fanin 50 → 1, deliveries/s|fanin|.delivered_per_s|$fmt_int"
	"100 msg/s → 100 subscribers, p99 latency, ms|latency|.latency_us.p99 / 1000|$fmt_real"
	"100 msg/s → 100 subscribers, p50 latency, ms|latency|.latency_us.p50 / 1000|$fmt_real"
	"broker CPU s per million deliveries (fanout)|fanout|.broker_cpu_s_per_million_deliveries|$fmt_real"
	"RSS per idle subscribed connection, KiB|idle|.broker_rss_per_connection_bytes / 1024|$fmt_real"
	"idle connections set up per second (handshake, CONNECT, SUBSCRIBE; 32 at a time)|idle|.connects_per_s|$fmt_int"
	"durable queue 4 → 4, persistent, RECEIPT per SEND, msg/s|durable1|.delivered_per_s|$fmt_int"
	"durable queue 4 → 4, persistent, RECEIPT per 100 SENDs, msg/s|durable100|.delivered_per_s|$fmt_int"
	"durable queue, RECEIPT per SEND, p99 latency, ms|durable1|.latency_us.p99 / 1000|$fmt_real"
	"durable queue at $durable_rate msg/s, RECEIPT per SEND, p50 latency, ms|durablerate|.latency_us.p50 / 1000|$fmt_real"
	"durable queue at $durable_rate msg/s, RECEIPT per SEND, p99 latency, ms|durablerate|.latency_us.p99 / 1000|$fmt_real"
	"broker CPU s per million messages (durable, RECEIPT per 100)|durable100|.broker_cpu_s_per_million_deliveries|$fmt_real"
)

names() {
	case $1 in
	stompd-ws) echo "stompd WS" ;;
	stompd-tcp) echo "stompd TCP" ;;
	rabbitmq-ws) echo "RabbitMQ Web-STOMP" ;;
	rabbitmq-tcp) echo "RabbitMQ STOMP TCP" ;;
	gostomp-tcp) echo "go-stomp TCP" ;;
	esac
}

has() { case " ${brokers[*]} " in *" $1 "*) return 0 ;; esac; return 1; }

ratio_columns=()
has stompd-ws && has rabbitmq-ws && ratio_columns+=(rabbitmq-ws)
has stompd-ws && has gostomp-tcp && ratio_columns+=(gostomp-tcp)

table() {
	local header="| scenario (${duration} each, 128-byte bodies) |" rule="|---|" row label scenario expr fmt column v
	for column in "${brokers[@]}"; do
		header+=" $(names "$column") |"
		rule+="---:|"
	done
	for column in "${ratio_columns[@]}"; do
		header+=" stompd WS ÷ $(names "$column") |"
		rule+="---:|"
	done
	echo "$header"
	echo "$rule"
	for row in "${rows[@]}"; do
		IFS='|' read -r label scenario expr fmt <<<"$row"
		printf '| %s |' "$label"
		for column in "${brokers[@]}"; do
			v=$(value "$column" "$scenario" "$expr")
			printf ' %s |' "$(cell "$v" "$fmt" "$(cat "$work/results/$column.$scenario.status")")"
		done
		for column in "${ratio_columns[@]}"; do
			local mine theirs
			mine=$(value stompd-ws "$scenario" "$expr")
			theirs=$(value "$column" "$scenario" "$expr")
			if [ -n "$mine" ] && [ -n "$theirs" ] && jq -en --argjson t "$theirs" '$t != 0' >/dev/null; then
				printf ' %s× |' "$(jq -rn --argjson m "$mine" --argjson t "$theirs" "\$m / \$t | $fmt_real")"
			else
				printf ' – |'
			fi
		done
		echo
	done
	# Integrity over every run of a column: what the receivers never got, got twice or out of order.
	printf '| lost / duplicated / out of order, all scenarios |'
	for column in "${brokers[@]}"; do
		local lost=0 dup=0 ooo=0 scenario results=0
		for scenario in "${scenarios[@]}"; do
			[ -n "$(value "$column" "$scenario" '.scenario')" ] || continue
			results=$((results + 1))
			lost=$((lost + $(value "$column" "$scenario" '.lost // 0')))
			dup=$((dup + $(value "$column" "$scenario" '.duplicated // 0')))
			ooo=$((ooo + $(value "$column" "$scenario" '.out_of_order // 0')))
		done
		if [ "$results" -eq 0 ]; then
			printf ' – |'
		else
			printf ' %s / %s / %s |' "$lost" "$dup" "$ooo"
		fi
	done
	for _ in "${ratio_columns[@]}"; do printf ' |'; done
	echo
	echo
	echo "Ratios are stompd WS divided by the other column: above 1 is better for deliveries/s, below 1"
	echo "is better for latency, CPU and memory. Each broker ran alone, started fresh, measured with -pid;"
	echo "latency is the run with the median p99 of $latency_runs."
	local notes=() status
	for column in "${brokers[@]}"; do
		for scenario in "${scenarios[@]}"; do
			status=$(cat "$work/results/$column.$scenario.status")
			[ "$status" = 0 ] && continue
			if [ "$status" = skipped ]; then
				notes+=("$(names "$column") $scenario $(first_line "$work/results/$column.$scenario.err")")
			else
				notes+=("$(names "$column") $scenario exited $status: $(first_line "$work/results/$column.$scenario.err")")
			fi
		done
	done
	if [ ${#notes[@]} -gt 0 ]; then
		echo
		echo "† the run failed or was skipped:"
		for n in "${notes[@]}"; do echo "- $n"; done
	fi
	echo
	machine
}

machine() {
	local erlang rabbit commit
	rabbit=$(dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null || echo unknown)
	erlang=$(cat /usr/lib/erlang/releases/*/OTP_VERSION 2>/dev/null | head -n 1 || true)
	commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
	git -C "$root" diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
	echo "- Machine: $(nproc) CPUs ($(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"\
		"$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)."
	echo "- Software: stompd ${commit}, $(go version | cut -d' ' -f3), RabbitMQ ${rabbit} (Debian),"\
		"Erlang/OTP ${erlang:-unknown}."
	echo "- Run: $(date -u '+%Y-%m-%d %H:%M UTC'), DURATION=$duration WARMUP=$warmup IDLE_CONNECTIONS=$idle_connections test/bench/compare.sh"
}

result=$(table)
echo "$result"
if [ -n "${OUT:-}" ]; then
	echo "$result" >"$OUT"
	log "table written to $OUT"
fi
exit "$failed"
