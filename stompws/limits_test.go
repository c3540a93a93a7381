package stompws

import (
	"testing"
)

func TestAdmission(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		addrs   []string // admitted in order
		want    []string // refusal message per address, "" for admitted
		release int      // how many of the admitted to release afterwards
		left    int      // IPs still counted after the releases
	}{
		{
			name:    "total",
			opts:    Options{MaxConnections: 2},
			addrs:   []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"},
			want:    []string{"", "", "too many connections"},
			release: 2, left: 0,
		},
		{
			name:    "per IP, others unaffected",
			opts:    Options{MaxConnectionsPerIP: 1},
			addrs:   []string{"10.0.0.1:1", "10.0.0.1:2", "[::1]:1", "10.0.0.2"},
			want:    []string{"", "too many connections from this address", "", ""},
			release: 1, left: 2,
		},
		{
			name:    "accept rate",
			opts:    Options{AcceptRate: 0.001, AcceptBurst: 2},
			addrs:   []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"},
			want:    []string{"", "", "connection rate exceeded"},
			release: 2, left: 0,
		},
		{
			name:    "unbounded",
			opts:    Options{MaxConnections: -1},
			addrs:   []string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3"},
			want:    []string{"", "", ""},
			release: 1, left: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts.withDefaults()
			a := newAdmission(&opts)
			var admitted []string
			for i, addr := range tt.addrs {
				ip, retryAfter, refusal := a.admit(addr)
				got := ""
				if refusal != nil {
					got = refusal.message
					if retryAfter < 1 {
						t.Errorf("%s: Retry-After %d, want at least 1", addr, retryAfter)
					}
				} else {
					admitted = append(admitted, ip)
				}
				if got != tt.want[i] {
					t.Errorf("admit(%s) refused with %q, want %q", addr, got, tt.want[i])
				}
			}
			for _, ip := range admitted[:tt.release] {
				a.release(ip)
			}
			if len(a.perIP) != tt.left || a.total != len(admitted)-tt.release {
				t.Errorf("after releases: %d IPs and %d connections, want %d and %d", len(a.perIP), a.total, tt.left, len(admitted)-tt.release)
			}
		})
	}
}

func BenchmarkAdmission(b *testing.B) {
	opts := Options{MaxConnectionsPerIP: 100, AcceptRate: 1e12}.withDefaults()
	a := newAdmission(&opts)
	b.ReportAllocs()
	for b.Loop() {
		ip, _, refusal := a.admit("192.0.2.1:40000")
		if refusal != nil {
			b.Fatal(refusal)
		}
		a.release(ip)
	}
}

func BenchmarkSendRateCheck(b *testing.B) {
	opts := Options{SendRate: 1e12, SendBytesRate: 1e15}.withDefaults()
	s := &session{sendLimiter: newSendLimiter(&opts), sendBytesLimiter: newSendBytesLimiter(&opts)}
	b.ReportAllocs()
	for b.Loop() {
		if !s.allowSend(128) {
			b.Fatal("refused")
		}
	}
}
