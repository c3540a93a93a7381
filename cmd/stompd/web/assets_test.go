package web

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// embeddedFiles lists every embedded file with the given extension ("" for all).
func embeddedFiles(t *testing.T, ext string) []string {
	t.Helper()
	var names []string
	err := fs.WalkDir(assets, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (ext == "" || path.Ext(name) == ext) {
			names = append(names, name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no embedded %q files", ext)
	}
	return names
}

func readAsset(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(assets, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEveryEmbeddedFileHasAContentType(t *testing.T) {
	for _, name := range embeddedFiles(t, "") {
		if ct := contentTypeOf(name); ct == "application/octet-stream" {
			t.Errorf("%s would be served as %s: add its extension to contentTypes", name, ct)
		}
	}
}

var (
	tagPattern           = regexp.MustCompile(`(?is)<[a-z][^>]*>`)
	handlerAttrPattern   = regexp.MustCompile(`(?is)\son[a-z]+\s*=`)
	styleAttrPattern     = regexp.MustCompile(`(?is)\sstyle\s*=`)
	scriptPattern        = regexp.MustCompile(`(?is)<script\b([^>]*)>(.*?)</script\s*>`)
	srcPattern           = regexp.MustCompile(`(?is)\ssrc\s*=\s*"([^"]*)"`)
	localRefPattern      = regexp.MustCompile(`(?is)\s(?:src|href)\s*=\s*"(/[^"?]*)"`)
	javascriptURLPattern = regexp.MustCompile(`(?is)=\s*"\s*javascript:`)
)

// The Content-Security-Policy forbids inline code, so a page that had any would break in the browser;
// this test says where instead.
func TestPagesHaveNoInlineCode(t *testing.T) {
	for _, name := range embeddedFiles(t, ".html") {
		t.Run(name, func(t *testing.T) {
			page := readAsset(t, name)
			for _, tag := range tagPattern.FindAllString(page, -1) {
				if handlerAttrPattern.MatchString(tag) {
					t.Errorf("event handler attribute in %s", tag)
				}
				if styleAttrPattern.MatchString(tag) {
					t.Errorf("inline style in %s", tag)
				}
				if javascriptURLPattern.MatchString(tag) {
					t.Errorf("javascript: URL in %s", tag)
				}
			}
			if strings.Contains(strings.ToLower(page), "<style") {
				t.Error("inline <style> element")
			}
			scripts := scriptPattern.FindAllStringSubmatch(page, -1)
			if strings.Count(strings.ToLower(page), "<script") != len(scripts) {
				t.Fatal("a <script> element without its closing tag")
			}
			for _, s := range scripts {
				if strings.TrimSpace(s[2]) != "" || !srcPattern.MatchString(s[1]) {
					t.Errorf("inline script: %s", s[0])
				}
			}
		})
	}
}

// Every file a page links to must be served, and a page script that uses STOMP.js needs the vendored
// bundle loaded before it.
func TestPagesReferenceServedFiles(t *testing.T) {
	s := Handler().(*site)
	for _, name := range embeddedFiles(t, ".html") {
		t.Run(name, func(t *testing.T) {
			page := readAsset(t, name)
			for _, m := range localRefPattern.FindAllStringSubmatch(page, -1) {
				if s.lookup(m[1]) == nil {
					t.Errorf("links to %s, which is not served", m[1])
				}
			}
			bundle := strings.Index(page, `src="/static/vendor/stomp.umd.min.js"`)
			for _, m := range pageScriptPattern.FindAllStringSubmatchIndex(page, -1) {
				script := page[m[2]:m[3]]
				if strings.Contains(readAsset(t, "static/js/"+script), "StompJs") && (bundle < 0 || bundle > m[0]) {
					t.Errorf("loads %s, which uses STOMP.js, without the STOMP.js bundle before it", script)
				}
			}
		})
	}
}

// pageScriptPattern finds the page scripts a page loads, by file name.
var pageScriptPattern = regexp.MustCompile(`src="/static/js/([a-z]+\.js)"`)

// User text must reach the DOM as text. The page scripts build elements with textContent; these
// calls would parse text as markup (or as code), so none may appear, in our scripts or the vendored one.
func TestScriptsNeverParseMarkup(t *testing.T) {
	forbidden := []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "createContextualFragment", "DOMParser"}
	for _, name := range embeddedFiles(t, ".js") {
		t.Run(name, func(t *testing.T) {
			src := readAsset(t, name)
			for _, f := range forbidden {
				if strings.Contains(src, f) {
					t.Errorf("uses %s", f)
				}
			}
		})
	}
}

// testJSBundle is the copy of STOMP.js the browser tests in test/ use, installed by test/run.
var testJSBundle = filepath.Join("..", "..", "..", "test", "js", "node_modules", "@stomp", "stompjs", "bundles", "stomp.umd.min.js")

// requireTestJS skips when test/js's npm modules are not installed, unless STOMPD_REQUIRE_TOOLS is set
// (test/run sets it after installing them), which makes the missing piece a failure.
func requireTestJS(t *testing.T) {
	t.Helper()
	_, err := os.Stat(testJSBundle)
	if err == nil {
		return
	}
	if os.Getenv("STOMPD_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s is missing (%v); test/run installs it", testJSBundle, err)
	}
	t.Skipf("%s is missing; run test/run, which installs it", testJSBundle)
}

// testSockJSBundle is the copy of the SockJS client the SockJS browser test in test/ uses.
var testSockJSBundle = filepath.Join("..", "..", "..", "test", "js", "node_modules", "sockjs-client", "dist", "sockjs.min.js")

// The pages serve exactly the STOMP.js and SockJS client bundles the browser tests run.
func TestVendoredBundleMatchesTestedBundle(t *testing.T) {
	requireTestJS(t)
	for asset, tested := range map[string]string{
		"static/vendor/stomp.umd.min.js":     testJSBundle,
		"static/vendor/sockjs/sockjs.min.js": testSockJSBundle,
	} {
		want, err := os.ReadFile(tested)
		if err != nil {
			t.Fatal(err)
		}
		if vendored := []byte(readAsset(t, asset)); !bytes.Equal(vendored, want) {
			t.Errorf("%s differs from %s: run vendor.sh after changing the pinned version", asset, tested)
		}
	}
}

// The pages and the browser tests must pin the same STOMP.js and SockJS client releases, down to the
// lock file's hash.
func TestPinnedVersionMatchesTestJS(t *testing.T) {
	type lock struct {
		Packages map[string]struct {
			Version   string `json:"version"`
			Integrity string `json:"integrity"`
		} `json:"packages"`
	}
	read := func(file string, v any) {
		t.Helper()
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	var ours, tests lock
	read("package-lock.json", &ours)
	read(filepath.Join("..", "..", "..", "test", "js", "package-lock.json"), &tests)
	var manifest struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	read("package.json", &manifest)
	for _, name := range []string{"@stomp/stompjs", "sockjs-client"} {
		key := "node_modules/" + name
		got, want := ours.Packages[key], tests.Packages[key]
		if got.Version == "" || got != want {
			t.Errorf("%s locked at %+v here and %+v in test/js", name, got, want)
		}
		if pinned := manifest.Dependencies[name]; pinned != got.Version {
			t.Errorf("package.json pins %s %q, lock file has %q: pin an exact version", name, pinned, got.Version)
		}
	}
	if !strings.Contains(readAsset(t, "static/vendor/LICENSE"), "Apache License") {
		t.Error("static/vendor/LICENSE is not the package's Apache license")
	}
	if !strings.Contains(readAsset(t, "static/vendor/sockjs/LICENSE"), "MIT License") {
		t.Error("static/vendor/sockjs/LICENSE is not the package's MIT license")
	}
}

// vendor.sh must stay a strict bash script that installs exactly what the lock file says.
func TestVendorScript(t *testing.T) {
	b, err := os.ReadFile("vendor.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for _, want := range []string{"set -euo pipefail", "npm ci", "--ignore-scripts", "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1", "static/vendor/"} {
		if !strings.Contains(script, want) {
			t.Errorf("vendor.sh lacks %q", want)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		if out, err := exec.Command(bash, "-n", "vendor.sh").CombinedOutput(); err != nil {
			t.Errorf("bash -n vendor.sh: %v\n%s", err, out)
		}
	}
}
