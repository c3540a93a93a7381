# Drives Debian's ruby-stomp (the stomp gem) against a live stompd over TCP:
#
#   ruby stomp_rb.rb HOST:PORT VERSION
#
# VERSION is 1.0 (the gem's default: a CONNECT with no accept-version) or 1.2 (accept-version 1.2,
# CRLF line endings, heart-beats every second). It does topic pub/sub in order, a queue with client
# acks (/queue/clients.ruby), a 1 MiB message and a disconnect with a receipt. Prints one JSON line
# {"ok":true,"passed":[...]} or {"ok":false,"error":"..."}; exits non-zero on failure.
require 'json'
require 'stomp'
require 'timeout'

$passed = []

def check(cond, what)
  raise "check failed: #{what}" unless cond
  $passed << what
end

def receive(conn, what)
  Timeout.timeout(15, RuntimeError, "timed out waiting for #{what}") do
    loop do
      m = conn.receive
      raise "connection ended waiting for #{what}" if m.nil?
      raise "ERROR #{m.headers['message']}" if m.command == 'ERROR'
      return m
    end
  end
end

def open_connection(host, port, version)
  params = { hosts: [{ host: host, port: port }], reliable: false, connect_timeout: 15 }
  if version == '1.2'
    params[:connect_headers] = { 'accept-version' => '1.2', 'host' => '/', 'heart-beat' => '1000,1000' }
    params[:usecrlf] = true
  end
  Stomp::Connection.new(params)
end

begin
  host, port = ARGV[0].split(':')
  version = ARGV[1]
  sub = open_connection(host, port.to_i, version)
  pub = open_connection(host, port.to_i, version)
  connected = sub.connection_frame
  check(connected.command == 'CONNECTED' && connected.headers['version'] == version, "CONNECTED version #{version}")
  if version == '1.2'
    check(connected.headers['heart-beat'] == '1000,1000', 'CONNECTED heart-beat 1000,1000, as asked')
  end

  sub.subscribe('/topic/clients.ruby', { id: 't', receipt: 'sub-t' })
  r = receive(sub, 'the subscription receipt')
  check(r.command == 'RECEIPT' && r.headers['receipt-id'] == 'sub-t', 'RECEIPT for SUBSCRIBE')
  texts = (0...10).map { |i| "message #{i} ✓ ünïcödé" }
  texts.each_with_index { |t, i| pub.publish('/topic/clients.ruby', t, { 'x-seq' => i.to_s }) }
  got = (0...10).map { receive(sub, 'a topic message') }
  check(got.map { |m| m.body.force_encoding('UTF-8') } == texts && got.map { |m| m.headers['x-seq'] } == (0...10).map(&:to_s),
        'topic messages in order, UTF-8 and headers intact')

  sub.subscribe('/queue/clients.ruby', { id: 'q', ack: 'client' })
  3.times { |i| pub.publish('/queue/clients.ruby', "job #{i}") }
  jobs = (0...3).map { receive(sub, 'a queue message') }
  jobs.each do |m|
    case version
    when '1.2' then sub.ack(m.headers['ack'])
    else sub.ack(m.headers['message-id'])
    end
  end
  check(jobs.map(&:body) == ['job 0', 'job 1', 'job 2'], 'queue messages with client acks')

  large = 'x' * (1 << 20)
  sub.subscribe('/topic/clients.large', { id: 'l', receipt: 'sub-l' })
  receive(sub, 'the subscription receipt')
  pub.publish('/topic/clients.large', large)
  check(receive(sub, 'the large message').body == large, 'a 1 MiB message intact')

  if version == '1.2'
    before = sub.hbrecv_count
    sleep 3
    check(sub.hbrecv_count - before >= 2, "#{sub.hbrecv_count - before} server heart-beats in 3 s idle")
    pub.publish('/topic/clients.ruby', 'still here')
    check(receive(sub, 'a message after idling').body == 'still here', 'connection alive after idling')
  end

  [sub, pub].each { |c| c.disconnect({ receipt: 'bye' }) }
  check(sub.disconnect_receipt && sub.disconnect_receipt.headers['receipt-id'] == 'bye', 'DISCONNECT receipt')
  puts JSON.generate({ ok: true, passed: $passed })
rescue StandardError => e
  puts JSON.generate({ ok: false, error: "#{e.class}: #{e.message}", passed: $passed })
  exit 1
end
