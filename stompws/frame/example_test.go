package frame_test

import (
	"fmt"

	"github.com/stompd/stompd/stompws/frame"
)

func ExampleParser_Feed() {
	p := frame.NewParser(frame.Limits{})
	emit := func(f *frame.Frame) error {
		if f == nil {
			fmt.Println("heart-beat")
			return nil
		}
		dest, _ := f.Get("destination")
		fmt.Printf("%s to %s: %q\n", f.Command, dest, f.Body)
		return nil
	}
	// A transport read may end anywhere; the parser keeps the partial frame.
	reads := []string{"\nSEND\ndestination:/queue/a\ncontent-le", "ngth:5\n\nhel", "lo\x00SEND\ndestination:/topic/b\n\nhi\x00"}
	for _, r := range reads {
		if err := p.Feed([]byte(r), emit); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// heart-beat
	// SEND to /queue/a: "hello"
	// SEND to /topic/b: "hi"
}

func ExampleParser_SetVersion() {
	p := frame.NewParser(frame.Limits{})
	in := "CONNECT\naccept-version:1.1\n\n\x00SEND\ndestination:/a\\cb\n\n\x00SEND\ndestination:/a\\rb\n\n\x00"
	err := p.Feed([]byte(in), func(f *frame.Frame) error {
		if f.Command == frame.CONNECT {
			p.SetVersion(frame.V11) // negotiated: applies from the next frame on
			return nil
		}
		dest, _ := f.Get("destination")
		fmt.Printf("%s %q\n", f.Command, dest)
		return nil
	})
	fmt.Println(err)
	// Output:
	// SEND "/a:b"
	// invalid header escape: \r is not defined in STOMP 1.1
}

func ExampleAppendFrame() {
	headers := []frame.Header{
		{Name: []byte("destination"), Value: []byte("/topic/a:b")},
		{Name: []byte("message-id"), Value: []byte("n1-7")},
	}
	b := frame.AppendFrame(nil, frame.V12, frame.MESSAGE, headers, []byte("hi"))
	fmt.Printf("%q\n", b)
	// Output:
	// "MESSAGE\ndestination:/topic/a\\cb\nmessage-id:n1-7\ncontent-length:2\n\nhi\x00"
}

func ExampleAppendHeader() {
	b := frame.AppendCommand(nil, frame.RECEIPT)
	b = frame.AppendHeader(b, frame.V12, "receipt-id", "r:1")
	b = frame.AppendBody(b, nil)
	fmt.Printf("%q\n", b)
	// Output:
	// "RECEIPT\nreceipt-id:r\\c1\n\n\x00"
}
