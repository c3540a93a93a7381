package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// assets holds the pages and everything under /static/. Directories are named one by one so that a
// node_modules left beside them by vendor.sh is never embedded.
//
//go:embed pages static
var assets embed.FS

// contentSecurityPolicy is sent with every response. Scripts and styles come from the server itself
// only (the pages have no inline code); connect-src admits ws: and wss: because 'self' does not cover
// WebSocket URLs in every browser.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// pageRoutes maps each page's URL path to its file under pages/.
var pageRoutes = map[string]string{
	"/":       "index.html",
	"/stocks": "stocks.html",
	"/chat":   "chat.html",
	"/echo":   "echo.html",
	"/admin":  "admin.html",
}

// notFoundPage is served, with status 404, for every path that is neither a page nor a static file.
const notFoundPage = "notfound.html"

// contentTypes maps file name extensions to the Content-Type they are served with. A file whose type is
// not listed here is served as application/octet-stream; a test keeps every embedded file listed.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".txt":  "text/plain; charset=utf-8",
	"":      "text/plain; charset=utf-8", // LICENSE
}

// asset is one embedded file, ready to serve.
type asset struct {
	name        string
	body        []byte
	contentType string
	etag        string
}

// site serves the embedded assets; it is immutable after newSite, so any number of goroutines may use it.
type site struct {
	pages    map[string]*asset // by URL path
	static   map[string]*asset // by path below /static/
	notFound *asset
}

var loadSite = sync.OnceValue(func() *site { return newSite(assets) })

// Handler returns the handler of the pages: GET or HEAD of /, /stocks, /chat, /echo and /static/...;
// 405 for other methods, 404 for other paths. It is safe for concurrent use and meant to be mounted at
// "/" beside the /ws and /metrics routes, which win by being more specific. Responses carry ETags
// (clients revalidate with If-None-Match) and a Content-Security-Policy that admits only the server's own
// scripts and styles, with nosniff and no-referrer headers.
//
// Handler panics if the embedded files cannot be read, which only a broken build can cause.
func Handler() http.Handler {
	return loadSite()
}

func newSite(fsys fs.FS) *site {
	s := &site{pages: map[string]*asset{}, static: map[string]*asset{}}
	for route, file := range pageRoutes {
		s.pages[route] = mustLoad(fsys, "pages/"+file)
	}
	s.notFound = mustLoad(fsys, "pages/"+notFoundPage)
	err := fs.WalkDir(fsys, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		s.static[strings.TrimPrefix(name, "static/")] = mustLoad(fsys, name)
		return nil
	})
	if err != nil {
		panic("web: embedded static files: " + err.Error())
	}
	return s
}

func mustLoad(fsys fs.FS, name string) *asset {
	body, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic("web: embedded file: " + err.Error())
	}
	sum := sha256.Sum256(body)
	return &asset{
		name:        name,
		body:        body,
		contentType: contentTypeOf(name),
		etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
	}
}

// contentTypeOf gives the Content-Type for a file name from contentTypes.
func contentTypeOf(name string) string {
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		return ct
	}
	return "application/octet-stream"
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := s.lookup(r.URL.Path)
	if a == nil {
		h.Set("Content-Type", s.notFound.contentType)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		if r.Method != http.MethodHead {
			_, _ = w.Write(s.notFound.body)
		}
		return
	}
	// Names carry no version, so a cached copy must be revalidated; the ETag makes that a 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// lookup finds the asset for a URL path: exact matches only, so ".." and trailing slashes find nothing.
func (s *site) lookup(urlPath string) *asset {
	if rest, ok := strings.CutPrefix(urlPath, "/static/"); ok {
		return s.static[rest]
	}
	return s.pages[urlPath]
}
