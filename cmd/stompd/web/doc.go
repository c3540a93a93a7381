// Package web serves the browser pages of stompd: an index that explains what runs on the server, a
// live stock ticker (/stocks), a chat room (/chat) and a send-and-see page for any destination (/echo).
//
// The pages are plain HTML, CSS and JavaScript embedded in the binary, so a stompd with no network
// serves them complete. They talk STOMP over the browser's WebSocket to /ws on the same host through
// @stomp/stompjs, whose pinned release vendor.sh copies into static/vendor (package.json and
// package-lock.json pin it; the copy is committed).
//
// Invariants:
//   - Every response, 404 included, carries a Content-Security-Policy that allows scripts and styles
//     from the server itself only, and WebSocket connections to any host: no inline script or style,
//     no third-party origin. The pages therefore keep all code in static/js and all styling in
//     static/css, and tests check that they do.
//   - User-supplied text (chat messages, names, message bodies and headers on the echo page) reaches
//     the DOM as text only (textContent), never as markup; tests forbid innerHTML, outerHTML,
//     insertAdjacentHTML and document.write in the page scripts.
//   - The embedded files are read once, when Handler is called; serving never touches a file system.
package web
