#!/usr/bin/env bash
# Measures a stompd cluster on this machine: one NATS server and three stompd nodes (-nats), all on
# loopback, against one stompd on its own, with `stomp bench`, and prints one markdown table.
#
#   test/bench/cluster.sh                  # 10 s per scenario
#   QUICK=1 test/bench/cluster.sh          # 3 s per scenario
#   OUT=cluster.md test/bench/cluster.sh   # also write the table to cluster.md
#
# Rows:
#   fanout 1 → 100    the publisher on node 1; its 100 subscribers all on node 1, or spread over the
#                     three nodes (stomp bench -receiver-urls); and the same on a stompd alone
#   latency 100 msg/s to 100 subscribers: all on node 1 with the publisher (same node), or all on
#                     node 2 (every message crosses NATS)
#   broker CPU        seconds per million deliveries, the sum over the stompd processes (and, in its
#                     own column, the NATS server's), read from /proc before and after each run
#   3 unconnected     the fanout split over three stompd that know nothing of each other, each with a
#                     publisher and a third of the subscribers, run at once: what splitting the work
#                     over three processes costs on this machine, without the cluster
#   at RATE msg/s     the fanout rows again with the publisher held to RATE messages a second, so that
#                     the machine is not saturated: CPU per delivery without the cost of five
#                     processes fighting over two cores
#   on one CPU        the fanout and fixed-rate rows again with every process (NATS, the nodes, the stompd alone
#                     or the unconnected ones, and the load tool) on CPU 0 (taskset): each message still
#                     crosses the same processes and sockets, but no process wakes another on the other
#                     CPU. Set apart from the row above, it tells the cluster's own cost from what
#                     waking processes across CPUs costs on this machine.
#
# Environment: DURATION [10s; 3s with QUICK=1], WARMUP [2s; 1s], SUBSCRIBERS [100] for the fanout
# rows, RATE [2000] for the fixed-rate rows, KEEP=1 keeps the work directory.
# Ports on 127.0.0.1: NATS 14222, stompd nodes 18181-18183 (HTTP) and 16711-16713 (STOMP), the
# stompd alone 18184 and 16714, the three unconnected ones 18185-18187 and 16715-16717. Every process
# started here is stopped when the script exits.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -n "${QUICK:-}" ] && [ "${QUICK}" != 0 ]; then
	duration=${DURATION:-3s}
	warmup=${WARMUP:-1s}
else
	duration=${DURATION:-10s}
	warmup=${WARMUP:-2s}
fi
subscribers=${SUBSCRIBERS:-100}
rate=${RATE:-2000}

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -z "${KEEP:-}" ]; then rm -rf "$work"; else echo "work directory: $work" >&2; fi
}
trap cleanup EXIT INT TERM
log() { printf '== %s\n' "$*" >&2; }

log "building stompd, stomp and nats-server (go.mod's version)"
(cd "$root" && go build -o "$work/stompd" ./cmd/stompd && go build -o "$work/stomp" ./cmd/stomp &&
	go build -o "$work/nats-server" github.com/nats-io/nats-server/v2)

wait_http() { # url
	for _ in $(seq 300); do
		if curl -fs -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "no answer from $1" >&2
	return 1
}

"$work/nats-server" -a 127.0.0.1 -p 14222 -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
natspid=$!
pids+=("$natspid")
nodepids=()
for i in 1 2 3; do
	"$work/stompd" -nats nats://127.0.0.1:14222 -node-name "node-$i" -stocks=false -chat=false \
		-http-addr "127.0.0.1:1818$i" -stomp-addr "127.0.0.1:1671$i" -log-level warn >"$work/node-$i.log" 2>&1 &
	nodepids+=($!)
	pids+=($!)
done
"$work/stompd" -stocks=false -chat=false -http-addr 127.0.0.1:18184 -stomp-addr 127.0.0.1:16714 -log-level warn >"$work/alone.log" 2>&1 &
alonepid=$!
pids+=("$alonepid")
# Three stompd not joined to anything, for the same work split three ways without a cluster: on
# this machine the split alone costs CPU, and this column tells it apart from the cluster's cost.
splitpids=()
for i in 5 6 7; do
	"$work/stompd" -stocks=false -chat=false -http-addr "127.0.0.1:1818$i" -stomp-addr "127.0.0.1:1671$i" -log-level warn >"$work/split-$i.log" 2>&1 &
	splitpids+=($!)
	pids+=($!)
done
for port in 18181 18182 18183 18184 18185 18186 18187; do wait_http "http://127.0.0.1:$port/readyz"; done

# pin_all CPUS: sets the CPUs every thread of every process started here may run on (threads made
# later inherit it); the load tool is started under $pin.
pin=
pin_all() {
	for p in "${pids[@]}"; do taskset -a -p -c "$1" "$p" >/dev/null; done
}

cpu() { # pid... → CPU seconds, summed
	local total=0
	for p in "$@"; do
		read -r -a f <"/proc/$p/stat"
		total=$((total + f[13] + f[14]))
	done
	echo "scale=3; $total / $(getconf CLK_TCK)" | bc
}

# bench NAME PIDS -- stomp bench arguments: runs it, prints "deliveries/s p99_ms cpu_s lost dup"
bench() {
	local name=$1
	shift
	local watched=()
	while [ "$1" != -- ]; do watched+=("$1"); shift; done
	shift
	local before after
	before=$(cpu "${watched[@]}")
	local natsbefore
	natsbefore=$(cpu "$natspid")
	$pin "$work/stomp" bench "$@" -duration "$duration" -warmup "$warmup" -json >"$work/$name.json" 2>"$work/$name.err" || {
		echo "$name failed: $(cat "$work/$name.err")" >&2
		return 1
	}
	after=$(cpu "${watched[@]}")
	local natsafter
	natsafter=$(cpu "$natspid")
	python3 - "$work/$name.json" "$before" "$after" "$natsbefore" "$natsafter" "${warmup%s}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
before, after, nb, na, warmup = map(float, sys.argv[2:7])
rate = r.get("delivered_per_s", 0)
# The CPU was read around the whole run: count the warm-up's deliveries too, at the measured rate.
deliveries = r.get("delivered", 0) + rate * warmup
p99 = (r.get("latency_us") or {}).get("p99", 0) / 1000
cpu = (after - before) / deliveries * 1e6 if deliveries else 0
nats = (na - nb) / deliveries * 1e6 if deliveries else 0
print(f"{rate:.0f} {p99:.3g} {cpu:.3g} {nats:.3g} {r.get('lost', 0)} {r.get('duplicated', 0)}")
EOF
}

node1=tcp://127.0.0.1:16711
spread=tcp://127.0.0.1:16711,tcp://127.0.0.1:16712,tcp://127.0.0.1:16713
log "fanout 1 → $subscribers, subscribers on node 1"
read -r f_same_rate _ f_same_cpu f_same_nats f_same_lost f_same_dup < <(bench fanout-same "${nodepids[@]}" -- fanout -subscribers "$subscribers" -url "$node1")
log "fanout 1 → $subscribers, subscribers over three nodes"
read -r f_spread_rate _ f_spread_cpu f_spread_nats f_spread_lost f_spread_dup < <(bench fanout-spread "${nodepids[@]}" -- fanout -subscribers "$subscribers" -url "$node1" -receiver-urls "$spread")
log "fanout 1 → $subscribers, stompd alone"
read -r f_alone_rate _ f_alone_cpu _ f_alone_lost f_alone_dup < <(bench fanout-alone "$alonepid" -- fanout -subscribers "$subscribers" -url tcp://127.0.0.1:16714)
# split NAME [stomp bench arguments]: the fanout over the three unconnected stompd, a third of the
# subscribers each, at once; prints "deliveries/s cpu_s_per_million".
split() {
	local name=$1
	shift
	local before after
	before=$(cpu "${splitpids[@]}")
	local benchpids=()
	for i in 5 6 7; do
		$pin "$work/stomp" bench fanout -subscribers $((subscribers / 3)) -url "tcp://127.0.0.1:1671$i" "$@" -duration "$duration" -warmup "$warmup" -json >"$work/$name-$i.json" 2>"$work/$name-$i.err" &
		benchpids+=($!)
	done
	wait "${benchpids[@]}"
	after=$(cpu "${splitpids[@]}")
	python3 - "$work" "$name" "$before" "$after" "${warmup%s}" <<'EOF'
import json, sys
work, name, before, after, warmup = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rs = [json.load(open(f"{work}/{name}-{i}.json")) for i in (5, 6, 7)]
rate = sum(r["delivered_per_s"] for r in rs)
deliveries = sum(r["delivered"] + r["delivered_per_s"] * warmup for r in rs)
print(f"{rate:.0f} {(after - before) / deliveries * 1e6:.3g}")
EOF
}
log "fanout 1 → $((subscribers / 3)) on each of three unconnected stompd, at once"
read -r f_split_rate f_split_cpu < <(split split)

log "fanout at $rate msg/s: on node 1, spread, alone, three unconnected"
read -r r_same_rate _ r_same_cpu _ r_same_lost r_same_dup < <(bench rate-same "${nodepids[@]}" -- fanout -rate "$rate" -subscribers "$subscribers" -url "$node1")
read -r r_spread_rate _ r_spread_cpu _ r_spread_lost r_spread_dup < <(bench rate-spread "${nodepids[@]}" -- fanout -rate "$rate" -subscribers "$subscribers" -url "$node1" -receiver-urls "$spread")
read -r r_alone_rate _ r_alone_cpu _ r_alone_lost r_alone_dup < <(bench rate-alone "$alonepid" -- fanout -rate "$rate" -subscribers "$subscribers" -url tcp://127.0.0.1:16714)
read -r r_split_rate r_split_cpu < <(split rate-split -rate "$rate")

log "fanout, every process on CPU 0: on node 1, spread, alone, three unconnected; flat out, then at $rate msg/s"
pin_all 0
pin="taskset -c 0"
read -r o_same_rate _ o_same_cpu _ o_same_lost o_same_dup < <(bench one-same "${nodepids[@]}" -- fanout -subscribers "$subscribers" -url "$node1")
read -r o_spread_rate _ o_spread_cpu _ o_spread_lost o_spread_dup < <(bench one-spread "${nodepids[@]}" -- fanout -subscribers "$subscribers" -url "$node1" -receiver-urls "$spread")
read -r o_alone_rate _ o_alone_cpu _ o_alone_lost o_alone_dup < <(bench one-alone "$alonepid" -- fanout -subscribers "$subscribers" -url tcp://127.0.0.1:16714)
read -r o_split_rate o_split_cpu < <(split one-split)
read -r p_same_rate _ p_same_cpu _ p_same_lost p_same_dup < <(bench pinned-same "${nodepids[@]}" -- fanout -rate "$rate" -subscribers "$subscribers" -url "$node1")
read -r p_spread_rate _ p_spread_cpu _ p_spread_lost p_spread_dup < <(bench pinned-spread "${nodepids[@]}" -- fanout -rate "$rate" -subscribers "$subscribers" -url "$node1" -receiver-urls "$spread")
read -r p_alone_rate _ p_alone_cpu _ p_alone_lost p_alone_dup < <(bench pinned-alone "$alonepid" -- fanout -rate "$rate" -subscribers "$subscribers" -url tcp://127.0.0.1:16714)
read -r p_split_rate p_split_cpu < <(split pinned-split -rate "$rate")
pin_all "0-$(($(nproc) - 1))"
pin=

log "latency, same node"
read -r _ l_same_p99 _ _ l_same_lost l_same_dup < <(bench latency-same "${nodepids[@]}" -- latency -url "$node1")
log "latency, cross node"
read -r _ l_cross_p99 _ _ l_cross_lost l_cross_dup < <(bench latency-cross "${nodepids[@]}" -- latency -url "$node1" -receiver-urls tcp://127.0.0.1:16712)
log "latency, stompd alone"
read -r _ l_alone_p99 _ _ l_alone_lost l_alone_dup < <(bench latency-alone "$alonepid" -- latency -url tcp://127.0.0.1:16714)

ratio() { echo "scale=3; $1 / $2" | bc; }
table=$(
	cat <<EOF
| scenario (TCP, 128-byte bodies, $duration each) | cluster, all on node 1 | cluster, spread over 3 nodes | stompd alone | 3 unconnected stompd, a third each | spread ÷ alone | spread ÷ 3 unconnected |
|---|---:|---:|---:|---:|---:|---:|
| fanout 1 → $subscribers, deliveries/s | $f_same_rate | $f_spread_rate | $f_alone_rate | $f_split_rate | $(ratio "$f_spread_rate" "$f_alone_rate")× | $(ratio "$f_spread_rate" "$f_split_rate")× |
| broker CPU s per million deliveries (fanout; stompd processes) | $f_same_cpu | $f_spread_cpu | $f_alone_cpu | $f_split_cpu | $(ratio "$f_spread_cpu" "$f_alone_cpu")× | $(ratio "$f_spread_cpu" "$f_split_cpu")× |
| NATS server CPU s per million deliveries (fanout) | $f_same_nats | $f_spread_nats | | | | |
| fanout at $rate msg/s, deliveries/s | $r_same_rate | $r_spread_rate | $r_alone_rate | $r_split_rate | | |
| broker CPU s per million deliveries at $rate msg/s | $r_same_cpu | $r_spread_cpu | $r_alone_cpu | $r_split_cpu | $(ratio "$r_spread_cpu" "$r_alone_cpu")× | $(ratio "$r_spread_cpu" "$r_split_cpu")× |
| fanout 1 → $subscribers on one CPU, deliveries/s | $o_same_rate | $o_spread_rate | $o_alone_rate | $o_split_rate | | |
| broker CPU s per million deliveries (fanout), every process on CPU 0 | $o_same_cpu | $o_spread_cpu | $o_alone_cpu | $o_split_cpu | $(ratio "$o_spread_cpu" "$o_alone_cpu")× | $(ratio "$o_spread_cpu" "$o_split_cpu")× |
| fanout at $rate msg/s on one CPU, deliveries/s | $p_same_rate | $p_spread_rate | $p_alone_rate | $p_split_rate | | |
| broker CPU s per million deliveries at $rate msg/s, every process on CPU 0 | $p_same_cpu | $p_spread_cpu | $p_alone_cpu | $p_split_cpu | $(ratio "$p_spread_cpu" "$p_alone_cpu")× | $(ratio "$p_spread_cpu" "$p_split_cpu")× |
| 100 msg/s → 100 subscribers, p99 latency, ms (same node / cross-node / alone) | $l_same_p99 | $l_cross_p99 | $l_alone_p99 | | $(ratio "$l_cross_p99" "$l_alone_p99")× | |
| lost / duplicated (fanout, fixed rate, both on one CPU, latency) | $f_same_lost / $f_same_dup, $r_same_lost / $r_same_dup, $o_same_lost / $o_same_dup, $p_same_lost / $p_same_dup, $l_same_lost / $l_same_dup | $f_spread_lost / $f_spread_dup, $r_spread_lost / $r_spread_dup, $o_spread_lost / $o_spread_dup, $p_spread_lost / $p_spread_dup, $l_cross_lost / $l_cross_dup | $f_alone_lost / $f_alone_dup, $r_alone_lost / $r_alone_dup, $o_alone_lost / $o_alone_dup, $p_alone_lost / $p_alone_dup, $l_alone_lost / $l_alone_dup | | | |

In the latency row the cluster columns are: subscribers on the publisher's node, and all on another
node (every message crosses NATS). Run: $(date -u '+%Y-%m-%d %H:%M UTC'), stompd $(cd "$root" && git rev-parse --short HEAD), $(nproc) CPUs, NATS $("$work/nats-server" --version | awk '{print $2}').
EOF
)
echo "$table"
if [ -n "${OUT:-}" ]; then echo "$table" >"$OUT"; fi
