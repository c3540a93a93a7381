package main

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"strconv"
	"strings"
)

// defaultMemoryFraction is the share of the memory available to the process that -max-memory takes
// by default. Half: the rest is for what the Go runtime does not count and a limit cannot hold back,
// chiefly the kernel's socket buffers, which grow with every connection and every client that reads
// slowly, and for whatever else runs beside stompd.
const defaultMemoryFraction = 0.5

// noMemoryLimit is how cgroup v1 says "no limit": a page-rounded 2^63-1. Anything this large is none.
const noMemoryLimit = 1 << 60

// maxMemory is the -max-memory flag: "auto" (the default: defaultMemoryFraction of the memory
// available to the process), a byte count, or 0 for no limit.
type maxMemory struct {
	auto  bool
	bytes byteSize
}

func (m *maxMemory) String() string {
	if m.auto {
		return "auto"
	}
	return m.bytes.String()
}

func (m *maxMemory) Set(s string) error {
	if strings.TrimSpace(s) == "auto" {
		m.auto, m.bytes = true, 0
		return nil
	}
	var b byteSize
	if err := b.Set(s); err != nil {
		return errors.New("want auto, 0 (no limit) or a byte count such as 512MiB or 2GiB")
	}
	m.auto, m.bytes = false, b
	return nil
}

// resolve returns the limit in bytes (0: none) and what it was derived from, for the log.
func (m *maxMemory) resolve(root fs.FS) (int64, string) {
	if !m.auto {
		if m.bytes == 0 {
			return 0, "-max-memory 0: no limit"
		}
		return int64(m.bytes), "-max-memory"
	}
	available, source := memoryAvailable(root)
	if available <= 0 {
		return 0, "auto: the memory available is unknown, so no limit"
	}
	return int64(float64(available) * defaultMemoryFraction), "auto: half of " + source
}

// memoryAvailable returns the memory this process may use and where that figure came from: the limit
// of its cgroup (v2 memory.max, else v1 memory.limit_in_bytes) where one is set, else the machine's
// physical memory; 0 when neither can be read. root is the file system holding /proc and /sys.
func memoryAvailable(root fs.FS) (int64, string) {
	if limit, file, ok := cgroupMemoryLimit(root); ok {
		return limit, "the cgroup limit (" + file + ")"
	}
	if total := physicalMemory(); total > 0 {
		return total, "physical memory"
	}
	return 0, ""
}

// cgroupMemoryLimit reads the memory limit of the process's own cgroup, v2 first. It reports false
// where there is no cgroup file to read or the limit is "max" (none).
func cgroupMemoryLimit(root fs.FS) (limit int64, file string, ok bool) {
	membership, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0, "", false
	}
	var candidates []string
	sc := bufio.NewScanner(bytes.NewReader(membership))
	for sc.Scan() {
		// hierarchy-id:controllers:path; v2 has id 0 and no controllers.
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		path := strings.Trim(parts[2], "/")
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append([]string{joinPath("sys/fs/cgroup", path, "memory.max")}, candidates...)
		case hasController(parts[1], "memory"):
			candidates = append(candidates, joinPath("sys/fs/cgroup/memory", path, "memory.limit_in_bytes"))
		}
	}
	for _, f := range candidates {
		text, err := fs.ReadFile(root, f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(text))
		if v == "max" {
			return 0, "", false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= noMemoryLimit {
			return 0, "", false
		}
		return n, "/" + f, true
	}
	return 0, "", false
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

func joinPath(dir, path, file string) string {
	if path == "" {
		return dir + "/" + file
	}
	return dir + "/" + path + "/" + file
}
