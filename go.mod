module github.com/stompd/stompd

go 1.26.8

require (
	github.com/coder/websocket v1.8.15
	github.com/go-stomp/stomp/v3 v3.1.3
	github.com/google/uuid v1.6.0
	go.uber.org/goleak v1.3.0
)
