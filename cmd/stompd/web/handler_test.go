package web

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(method, target string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, r)
	return w
}

func TestHandlerServesEmbeddedFiles(t *testing.T) {
	tests := []struct {
		path, file, contentType string
	}{
		{"/", "pages/index.html", "text/html; charset=utf-8"},
		{"/stocks", "pages/stocks.html", "text/html; charset=utf-8"},
		{"/chat", "pages/chat.html", "text/html; charset=utf-8"},
		{"/echo", "pages/echo.html", "text/html; charset=utf-8"},
		{"/static/css/stompd.css", "static/css/stompd.css", "text/css; charset=utf-8"},
		{"/static/js/stompd.js", "static/js/stompd.js", "text/javascript; charset=utf-8"},
		{"/static/js/chat.js", "static/js/chat.js", "text/javascript; charset=utf-8"},
		{"/static/vendor/stomp.umd.min.js", "static/vendor/stomp.umd.min.js", "text/javascript; charset=utf-8"},
		{"/static/vendor/LICENSE", "static/vendor/LICENSE", "text/plain; charset=utf-8"},
		{"/static/favicon.svg", "static/favicon.svg", "image/svg+xml"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := serve(http.MethodGet, tt.path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			checkSecurityHeaders(t, w)
			want, err := fs.ReadFile(assets, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Errorf("body is not %s (%d bytes, want %d)", tt.file, w.Body.Len(), len(want))
			}
			if w.Header().Get("ETag") == "" || w.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("ETag %q, Cache-Control %q: want an ETag and no-cache", w.Header().Get("ETag"), w.Header().Get("Cache-Control"))
			}
		})
	}
}

func checkSecurityHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self' ws: wss:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q allows something unsafe", csp)
	}
	if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
}

func TestHandlerNotFound(t *testing.T) {
	for _, path := range []string{
		"/nope", "/stocks/", "/index.html", "/pages/index.html", "/static", "/static/", "/static/js",
		"/static/js/", "/static/../pages/index.html", "/static/js/../../handler.go", "/static/vendor/../../doc.go",
		"/package.json", "/vendor.sh", "/static/vendor/stomp.umd.min.js.map", "/ws/", "/STOCKS",
	} {
		t.Run(path, func(t *testing.T) {
			w := serve(http.MethodGet, "http://localhost"+path, nil)
			if w.Code != http.StatusNotFound {
				t.Fatalf("status %d, want 404", w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q, want the HTML not-found page", got)
			}
			if !strings.Contains(w.Body.String(), "Page not found") {
				t.Errorf("body %.80q is not the not-found page", w.Body.String())
			}
			checkSecurityHeaders(t, w)
		})
	}
}

func TestHandlerMethods(t *testing.T) {
	tests := []struct {
		method   string
		status   int
		wantBody bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, true},
		{http.MethodPut, http.StatusMethodNotAllowed, true},
		{http.MethodDelete, http.StatusMethodNotAllowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			w := serve(tt.method, "/chat", nil)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if (w.Body.Len() > 0) != tt.wantBody {
				t.Errorf("body of %d bytes; want a body: %v", w.Body.Len(), tt.wantBody)
			}
			if tt.status == http.StatusMethodNotAllowed && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q, want GET, HEAD", w.Header().Get("Allow"))
			}
			checkSecurityHeaders(t, w)
		})
	}
}

func TestHandlerRevalidation(t *testing.T) {
	for _, path := range []string{"/", "/static/js/stocks.js"} {
		t.Run(path, func(t *testing.T) {
			etag := serve(http.MethodGet, path, nil).Header().Get("ETag")
			tests := []struct {
				ifNoneMatch string
				status      int
			}{
				{etag, http.StatusNotModified},
				{`"something-else"`, http.StatusOK},
			}
			for _, tt := range tests {
				w := serve(http.MethodGet, path, http.Header{"If-None-Match": {tt.ifNoneMatch}})
				if w.Code != tt.status {
					t.Errorf("If-None-Match %s: status %d, want %d", tt.ifNoneMatch, w.Code, tt.status)
				}
			}
		})
	}
}

func TestETagsDifferPerFile(t *testing.T) {
	seen := map[string]string{}
	s := Handler().(*site)
	for _, a := range append(mapValues(s.pages), mapValues(s.static)...) {
		if other, dup := seen[a.etag]; dup {
			t.Errorf("%s and %s share ETag %s", a.name, other, a.etag)
		}
		seen[a.etag] = a.name
	}
}

func mapValues(m map[string]*asset) []*asset {
	var out []*asset
	for _, a := range m {
		out = append(out, a)
	}
	return out
}

func BenchmarkHandlerPage(b *testing.B) {
	benchmarkServe(b, "/stocks")
}

func BenchmarkHandlerStaticBundle(b *testing.B) {
	benchmarkServe(b, "/static/vendor/stomp.umd.min.js")
}

func benchmarkServe(b *testing.B, path string) {
	h := Handler()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
