package stompws

import (
	"net/http"

	"github.com/stompd/stompd/transport"
)

// SockJSHandler returns the handler that serves STOMP over SockJS under prefix (for example "/stomp";
// mount it at prefix and prefix+"/"), for clients whose network lets no WebSocket through: the
// websocket, xhr-streaming, xhr-polling and eventsource transports. A SockJS session is one STOMP
// session, run by the same code as over WebSocket and TCP, under the same rules: the Origin allow-list
// (CORS answers follow it), authentication at the first request (access_token, Basic or Bearer, as at
// the WebSocket upgrade) or in CONNECT, connection limits (one slot per SockJS session), every frame
// limit and the slow-consumer policies, and Shutdown. Its bytes are counted under the "sockjs"
// transport label.
//
// SockJS carries text only. A subscriber on SockJS that is due a message whose body or headers are not
// UTF-8 gets an ERROR naming the message and is disconnected (a queue message stays on its queue); see
// transport.ErrNotText.
func (srv *Server) SockJSHandler(prefix string) http.Handler {
	return transport.NewSockJSHandler(prefix, transport.SockJSOptions{
		Options:        srv.opts.transportOptions(),
		OriginPatterns: srv.opts.OriginPatterns,
		ReadLimit:      int64(srv.opts.Limits.MaxFrameBytes) + 64<<10,
		Open:           srv.openSockJS,
	})
}

// openSockJS admits a request that opens a SockJS session, as ServeHTTP admits a WebSocket upgrade.
func (srv *Server) openSockJS(w http.ResponseWriter, r *http.Request) (func(transport.Conn), bool) {
	ctx, ip, ok := srv.admitHTTP(w, r)
	if !ok {
		return nil, false
	}
	start := func(c transport.Conn) {
		if !srv.addConn() {
			srv.admit.release(ip)
			c.Abort()
			return
		}
		go srv.startSession(ctx, c, func() {
			srv.admit.release(ip)
			srv.conns.Done()
		})
	}
	return start, true
}
