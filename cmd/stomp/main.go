package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first interrupt stops the command cleanly (pub between messages, sub between reads); a
	// second one, for a pub blocked reading a terminal, ends the process at once.
	context.AfterFunc(ctx, stop)
	os.Exit(run(ctx, os.Args[1:], &console{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv,
	}))
}

// console is what a command may touch of the outside world; tests fill it with buffers and a fake
// environment.
type console struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// command is one subcommand. run returns nil on success; exitCode maps its errors to exit codes.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, con *console, args []string) error
}

// commands lists the subcommands in the order stomp -h shows them.
var commands = []command{
	{name: "sub", summary: "print messages from destinations as they arrive", run: runSub},
	{name: "pub", summary: "send messages to a destination", run: runPub},
	{name: "bench", summary: "load a broker and measure throughput, loss, latency, CPU and memory", run: runBench},
	{name: "admin", summary: "stompd's management API: overview, connections, queues, topics, close, purge, publish", run: runAdmin},
}

// run is the whole program; it returns the exit code. ctx ending (SIGINT, SIGTERM) stops the
// command in progress.
func run(ctx context.Context, args []string, con *console) int {
	if len(args) == 0 {
		printUsage(con.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printUsage(con.stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, con, args[1:])
		if err != nil && !errors.Is(err, flag.ErrHelp) && !errors.Is(err, errFlagReported) {
			fmt.Fprintf(con.stderr, "stomp %s: %v\n", c.name, err)
		}
		return exitCode(err)
	}
	fmt.Fprintf(con.stderr, "stomp: unknown command %q\n\n", args[0])
	printUsage(con.stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: stomp COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "A STOMP 1.0-1.2 client over TCP, TLS and WebSocket.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-5s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "stomp COMMAND -h" for a command's flags. Flags may follow the arguments; "--" ends the flags.

Environment: STOMP_URL, STOMP_LOGIN and STOMP_PASSCODE stand in for -url, -login and -passcode.

Exit codes:
  0  success
  1  runtime or broker error (reason on stderr, with an ERROR frame's message); bench: messages
     lost, duplicated, or out of order on a topic
  2  usage error
  3  timeout (sub -timeout with no message, -connect-timeout, a receipt that never came,
     bench -timeout)
`)
}
