package transport

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originAllowed applies the origin rule of WebSocketOptions.OriginPatterns to a plain HTTP request: a
// request without an Origin header (not from a browser) and one from the request's own host are
// allowed; any other origin must match a pattern, against its host, or against scheme://host when the
// pattern contains "://". It is the rule the WebSocket library applies at the upgrade, so that the
// SockJS transports admit exactly the origins /ws admits.
func originAllowed(r *http.Request, patterns []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(r.Host, u.Host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, err := path.Match(strings.ToLower(p), strings.ToLower(target)); err == nil && ok {
			return true
		}
	}
	return false
}
