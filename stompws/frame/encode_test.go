package frame

import (
	"testing"
)

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		name       string
		v          Version
		key, value string
		want       string
	}{
		{"plain 1.2", V12, "destination", "/queue/a", "destination:/queue/a\n"},
		{"plain 1.0", V10, "destination", "/queue/a", "destination:/queue/a\n"},
		{"1.2 escapes", V12, "a:b\\", "x\ny\rz:\\", "a\\cb\\\\:x\\ny\\rz\\c\\\\\n"},
		{"1.1 escapes, CR raw", V11, "a:b\\", "x\ny\rz:\\", "a\\cb\\\\:x\\ny\rz\\c\\\\\n"},
		{"1.0 spaces for CR LF and a colon in the name", V10, "a:b\\", "x\ny\rz:\\", "a b\\:x y z:\\\n"},
		{"empty", V12, "", "", ":\n"},
		{"only escapes", V12, "\n", "\r\r", "\\n:\\r\\r\n"},
		{"unknown version escapes as 1.2", Version(0), "k", "\r", "k:\\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendHeader([]byte("<"), tt.v, tt.key, tt.value)); got != "<"+tt.want {
				t.Errorf("string: got %q, want %q", got, "<"+tt.want)
			}
			if got := string(AppendHeader([]byte("<"), tt.v, []byte(tt.key), []byte(tt.value))); got != "<"+tt.want {
				t.Errorf("[]byte: got %q, want %q", got, "<"+tt.want)
			}
		})
	}
}

func TestAppendPieces(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"command", AppendCommand([]byte("x"), SEND), "xSEND\n"},
		{"body", AppendBody([]byte("x"), []byte("a\x00b")), "x\na\x00b\x00"},
		{"empty body", AppendBody(nil, nil), "\n\x00"},
		{"heart-beat", AppendHeartBeat([]byte("x")), "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.got) != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	h := func(kv ...string) []Header {
		var hs []Header
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, Header{[]byte(kv[i]), []byte(kv[i+1])})
		}
		return hs
	}
	tests := []struct {
		name    string
		v       Version
		command string
		headers []Header
		body    string
		want    string
	}{
		{"adds content-length", V12, SEND, h("destination", "/a"), "hi",
			"SEND\ndestination:/a\ncontent-length:2\n\nhi\x00"},
		{"keeps a given content-length", V12, SEND, h("content-length", "2", "x", "y"), "hi",
			"SEND\ncontent-length:2\nx:y\n\nhi\x00"},
		{"no content-length without a body", V12, RECEIPT, h("receipt-id", "7"), "",
			"RECEIPT\nreceipt-id:7\n\n\x00"},
		{"escapes per version", V12, MESSAGE, h("a", "b:c"), "",
			"MESSAGE\na:b\\cc\n\n\x00"},
		{"CONNECT unescaped", V12, CONNECT, h("login", "a:b\\"), "",
			"CONNECT\nlogin:a:b\\\n\n\x00"},
		{"CONNECTED unescaped", V11, CONNECTED, h("server", "s\\1"), "",
			"CONNECTED\nserver:s\\1\n\n\x00"},
		{"STOMP unescaped but safe", V12, STOMP, h("host", "a\nb"), "",
			"STOMP\nhost:a b\n\n\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendFrame(nil, tt.v, tt.command, tt.headers, []byte(tt.body))); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEncodeAllocations(t *testing.T) {
	headers := []Header{{[]byte("destination"), []byte("/a:b")}, {[]byte("x"), []byte("y\n")}}
	body := []byte("body")
	dst := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendCommand(dst[:0], MESSAGE)
		dst = AppendHeader(dst, V12, "destination", "/a:b")
		dst = AppendHeader(dst, V11, []byte("k"), []byte("v\\"))
		dst = AppendBody(dst, body)
		dst = AppendHeartBeat(dst)
		dst = AppendFrame(dst, V12, SEND, headers, body)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
}
