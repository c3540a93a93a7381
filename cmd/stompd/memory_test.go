package main

import (
	"testing"
	"testing/fstest"
)

func TestMemoryAvailableFromCgroups(t *testing.T) {
	cases := []struct {
		name      string
		files     map[string]string
		wantLimit int64
		wantFile  string // "" when no cgroup limit applies
	}{
		{name: "cgroup v2 with a limit", files: map[string]string{
			"proc/self/cgroup": "0::/system.slice/stompd.service\n",
			"sys/fs/cgroup/system.slice/stompd.service/memory.max": "536870912\n",
		}, wantLimit: 512 << 20, wantFile: "/sys/fs/cgroup/system.slice/stompd.service/memory.max"},
		{name: "cgroup v2 in a container's namespace", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "1073741824\n",
		}, wantLimit: 1 << 30, wantFile: "/sys/fs/cgroup/memory.max"},
		{name: "cgroup v2 without a limit", files: map[string]string{
			"proc/self/cgroup":         "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n",
		}},
		{name: "cgroup v1 with a limit", files: map[string]string{
			"proc/self/cgroup": "12:pids:/\n9:cpu,cpuacct:/\n4:memory:/docker/abc\n1:name=systemd:/\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "268435456\n",
		}, wantLimit: 256 << 20, wantFile: "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"},
		{name: "cgroup v1 unlimited", files: map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
		}},
		{name: "hybrid: v2 membership without a memory file, v1 memory controller", files: map[string]string{
			"proc/self/cgroup":                           "4:memory:/\n0::/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "100000000\n",
		}, wantLimit: 100000000, wantFile: "/sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{name: "no /proc", files: map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fstest.MapFS{}
			for name, text := range tc.files {
				root[name] = &fstest.MapFile{Data: []byte(text)}
			}
			limit, file, ok := cgroupMemoryLimit(root)
			if ok != (tc.wantFile != "") || limit != tc.wantLimit || file != tc.wantFile {
				t.Fatalf("cgroupMemoryLimit = %d, %q, %v; want %d, %q", limit, file, ok, tc.wantLimit, tc.wantFile)
			}
			// With no cgroup limit, auto falls back to physical memory, which this machine has.
			available, source := memoryAvailable(root)
			if tc.wantFile == "" && (available <= 0 || source != "physical memory") {
				t.Fatalf("memoryAvailable without a cgroup limit = %d from %q, want physical memory", available, source)
			}
		})
	}
}

func TestMaxMemoryFlag(t *testing.T) {
	root := fstest.MapFS{
		"proc/self/cgroup":         {Data: []byte("0::/\n")},
		"sys/fs/cgroup/memory.max": {Data: []byte("1073741824\n")},
	}
	cases := []struct {
		value     string
		wantLimit int64
		wantErr   bool
	}{
		{value: "auto", wantLimit: 512 << 20},
		{value: "0"},
		{value: "2GiB", wantLimit: 2 << 30},
		{value: "300000000", wantLimit: 300000000},
		{value: "lots", wantErr: true},
	}
	for _, tc := range cases {
		var m maxMemory
		err := m.Set(tc.value)
		if (err != nil) != tc.wantErr {
			t.Fatalf("-max-memory %s: error %v", tc.value, err)
		}
		if err != nil {
			continue
		}
		if limit, _ := m.resolve(root); limit != tc.wantLimit {
			t.Errorf("-max-memory %s resolves to %d, want %d", tc.value, limit, tc.wantLimit)
		}
		if m.String() != tc.value {
			t.Errorf("-max-memory %s prints as %q", tc.value, m.String())
		}
	}
}
