package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// adminOptions are admin's flags.
type adminOptions struct {
	url      string
	login    string
	passcode string
	token    string
	json     bool
	user     string
	remote   string
	headers  headerList
	base64   bool
}

// adminActions are the admin subcommands: how many arguments each takes, and what they are.
var adminActions = map[string]struct {
	args  int
	usage string
}{
	"overview":    {0, "overview"},
	"nodes":       {0, "nodes"},
	"connections": {0, "connections [-user NAME] [-remote ADDR]"},
	"queues":      {0, "queues"},
	"topics":      {0, "topics"},
	"close":       {1, "close SESSION"},
	"purge":       {1, "purge QUEUE"},
	"delete":      {1, "delete QUEUE"},
	"publish":     {2, "publish DEST BODY"},
}

func runAdmin(ctx context.Context, con *console, args []string) error {
	fs := newFlagSet("admin", "ACTION [flags] [args]",
		"Calls stompd's management API (/api/): overview, nodes, connections, queues, topics, close\n"+
			"SESSION, purge QUEUE, delete QUEUE, publish DEST BODY. QUEUE is the name after /queue/.\n"+
			"Prints tables, or the API's JSON with -json. Authenticates with -login and -passcode\n"+
			"(HTTP Basic) or -token (Bearer); without them only a broker on this machine answers.")
	var o adminOptions
	fs.StringVar(&o.url, "url", "http://localhost:8080", "the broker's HTTP `URL` (env STOMP_ADMIN_URL)")
	fs.StringVar(&o.login, "login", "", "user `name` with the admin role (env STOMP_LOGIN)")
	fs.StringVar(&o.passcode, "passcode", "", "its `passcode`; prefer env STOMP_PASSCODE")
	fs.StringVar(&o.token, "token", "", "a bearer `token` of a user with the admin role; prefer env STOMP_TOKEN")
	fs.BoolVar(&o.json, "json", false, "print the API's JSON answer")
	fs.StringVar(&o.user, "user", "", "connections: only those of this `user`")
	fs.StringVar(&o.remote, "remote", "", "connections: only those whose remote address contains `text`")
	fs.Var(&o.headers, "H", "publish: a message `header`, name:value (repeatable)")
	fs.BoolVar(&o.base64, "base64", false, "publish: BODY is base64 (a binary body)")
	args, err := parseInterspersed(fs, args, con)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return fmt.Errorf("%w: no action (usage: stomp admin ACTION [flags] [args])", errUsage)
	}
	action, ok := adminActions[args[0]]
	if !ok {
		return fmt.Errorf("%w: unknown action %q", errUsage, args[0])
	}
	if len(args)-1 != action.args {
		return fmt.Errorf("%w: usage: stomp admin %s", errUsage, action.usage)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, e := range []struct {
		flag, env string
		dst       *string
	}{
		{"url", "STOMP_ADMIN_URL", &o.url}, {"login", "STOMP_LOGIN", &o.login},
		{"passcode", "STOMP_PASSCODE", &o.passcode}, {"token", "STOMP_TOKEN", &o.token},
	} {
		if v, ok := con.lookupEnv(e.env); ok && !set[e.flag] {
			*e.dst = v
		}
	}
	c := &adminClient{base: strings.TrimSuffix(o.url, "/"), o: o, http: &http.Client{Timeout: 30 * time.Second}}
	return c.run(ctx, con.stdout, args[0], args[1:])
}

// adminClient calls the management API.
type adminClient struct {
	base string
	o    adminOptions
	http *http.Client
}

func (c *adminClient) run(ctx context.Context, w io.Writer, action string, args []string) error {
	var (
		method = http.MethodGet
		path   string
		body   any
		list   url.Values // the query of a paged list, read whole
	)
	switch action {
	case "overview", "nodes":
		path = "/api/" + action
	case "queues", "topics":
		path, list = "/api/"+action, url.Values{}
	case "connections":
		path, list = "/api/connections", url.Values{}
		if c.o.user != "" {
			list.Set("user", c.o.user)
		}
		if c.o.remote != "" {
			list.Set("remote", c.o.remote)
		}
	case "close":
		method, path = http.MethodDelete, "/api/connections/"+url.PathEscape(args[0])
	case "purge":
		method, path = http.MethodDelete, "/api/queues/"+queuePath(args[0])+"/contents"
	case "delete":
		method, path = http.MethodDelete, "/api/queues/"+queuePath(args[0])
	case "publish":
		req := map[string]any{"destination": args[0]}
		if c.o.base64 {
			req["body_base64"] = args[1]
		} else {
			req["body"] = args[1]
		}
		if len(c.o.headers) > 0 {
			h := map[string]string{}
			for _, kv := range c.o.headers {
				h[kv[0]] = kv[1]
			}
			req["headers"] = h
		}
		method, path, body = http.MethodPost, "/api/publish", req
	}
	var raw []byte
	var err error
	if list != nil {
		raw, err = c.listAll(ctx, path, list, action)
	} else {
		raw, err = c.call(ctx, method, path, body)
	}
	if err != nil {
		return err
	}
	if c.o.json {
		_, err := w.Write(raw)
		return err
	}
	return printAdmin(w, action, raw)
}

// queuePath escapes a queue name (with or without /queue/) into one segment of the API's path: its
// slashes too (%2F), so that no part of a name is read as the /contents suffix, and a name that is
// all dots, which URL handling would resolve away, as %2E.
func queuePath(name string) string {
	name = strings.TrimPrefix(name, "/queue/")
	if strings.Trim(name, ".") == "" {
		return strings.Repeat("%2E", len(name))
	}
	return url.PathEscape(name)
}

// listPage is how many items listAll asks for at a time (the API's most), and listPages bounds the
// pages it reads.
const (
	listPage  = 1000
	listPages = 1000
)

// listAll reads every page of the paged list at path (filtered by query) and returns one answer of
// the API's shape with all the items under key, as `rabbitmqadmin list` prints them however many
// there are. Pages are read one after the other: an item that comes or goes meanwhile may be missed
// or shown twice.
func (c *adminClient) listAll(ctx context.Context, path string, query url.Values, key string) ([]byte, error) {
	var items []json.RawMessage
	for offset := 0; offset < listPage*listPages; offset += listPage {
		query.Set("offset", strconv.Itoa(offset))
		query.Set("limit", strconv.Itoa(listPage))
		raw, err := c.call(ctx, http.MethodGet, path+"?"+query.Encode(), nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Total int `json:"total"`
		}
		var fields map[string]json.RawMessage
		var got []json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := json.Unmarshal(fields[key], &got); err != nil {
			return nil, fmt.Errorf("%s: no %s in the answer: %w", path, key, err)
		}
		items = append(items, got...)
		if len(got) < listPage || len(items) >= page.Total {
			break
		}
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	return json.Marshal(map[string]any{"total": len(items), "offset": 0, "limit": len(items), key: items})
}

// call makes one request and returns the JSON answer, or the API's error as an error.
func (c *adminClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("%w: -url %q: %v", errUsage, c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.o.token != "":
		req.Header.Set("Authorization", "Bearer "+c.o.token)
	case c.o.login != "":
		req.SetBasicAuth(c.o.login, c.o.passcode)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return data, nil
}

// printAdmin writes an answer for people: a table for lists, name: value lines otherwise.
func printAdmin(w io.Writer, action string, raw []byte) error {
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	switch action {
	case "connections":
		fmt.Fprintln(tw, "SESSION\tNAME\tUSER\tTRANSPORT\tREMOTE\tSUBS\tMSGS IN\tMSGS OUT")
		for _, c := range list(v, "connections") {
			msgs := c["messages"].(map[string]any)
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%d\t%v\t%v\n", c["session"], c["name"], orDash(c["user"]), c["transport"],
				c["remote"], len(c["subscriptions"].([]any)), msgs["in"], msgs["out"])
		}
		fmt.Fprintf(tw, "(%v in all)\n", v["total"])
	case "nodes":
		fmt.Fprintln(tw, "NODE\tVERSION\tMODE\tCONNECTIONS\tSUBS\tPUBLISHED/S\tDELIVERED/S\tMEMORY HELD\tSTARTED")
		for _, n := range list(v, "nodes") {
			name := fmt.Sprint(n["name"])
			if n["this"] == true {
				name += " (this)"
			}
			fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%v\t%.1f\t%.1f\t%v\t%v\n", name, n["version"], n["mode"], n["connections"],
				n["subscriptions"], n["published_per_second"], n["delivered_per_second"], n["memory_held_bytes"], n["started"])
		}
	case "queues":
		fmt.Fprintln(tw, "QUEUE\tREADY\tUNACKED\tCONSUMERS\tPUBLISHED\tDELIVERED")
		for _, q := range list(v, "queues") {
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\t%v\t%v\n", q["destination"], q["ready"], q["unacked"], q["consumers"], q["published"], q["delivered"])
		}
		fmt.Fprintf(tw, "(%v in all)\n", v["total"])
	case "topics":
		fmt.Fprintln(tw, "TOPIC\tSUBSCRIBERS\tRETAINED\tSTREAM")
		for _, t := range list(v, "topics") {
			fmt.Fprintf(tw, "%v\t%v\t%v\t%v\n", t["destination"], t["subscribers"], t["retained"], t["stream"])
		}
		fmt.Fprintf(tw, "(%v in all)\n", v["total"])
	default:
		printFields(tw, "", v)
	}
	return tw.Flush()
}

func list(v map[string]any, key string) []map[string]any {
	var out []map[string]any
	items, _ := v[key].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// printFields writes nested objects as dotted name: value lines, sorted.
func printFields(w io.Writer, prefix string, v map[string]any) {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch x := v[k].(type) {
		case map[string]any:
			printFields(w, prefix+k+".", x)
		case []any:
			parts := make([]string, len(x))
			for i, e := range x {
				parts[i] = fmt.Sprint(e)
			}
			fmt.Fprintf(w, "%s%s:\t%s\n", prefix, k, strings.Join(parts, ", "))
		default:
			fmt.Fprintf(w, "%s%s:\t%v\n", prefix, k, x)
		}
	}
}

func orDash(v any) any {
	if v == nil || v == "" {
		return "-"
	}
	return v
}
