package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicksPerSecond is Linux's USER_HZ, the unit of utime and stime in /proc/PID/stat; the
// kernel fixes it at 100 on every architecture Go supports.
const clockTicksPerSecond = 100

// procCPUSeconds returns the user plus system CPU time process pid has used, from /proc/PID/stat.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := parseStatCPUTicks(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return float64(ticks) / clockTicksPerSecond, nil
}

// parseStatCPUTicks returns utime+stime (fields 14 and 15) of a /proc/PID/stat line. The command
// name in field 2 may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPUTicks(stat []byte) (int64, error) {
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return 0, errProcFormat
	}
	fields := bytes.Fields(stat[end+1:]) // fields[0] is field 3, the state
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, errProcFormat
	}
	u, err1 := strconv.ParseInt(string(fields[utime]), 10, 64)
	s, err2 := strconv.ParseInt(string(fields[stime]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errProcFormat
	}
	return u + s, nil
}

// procRSSBytes returns the resident set size of process pid, from VmRSS in /proc/PID/status.
func procRSSBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	rss, err := parseStatusRSS(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return rss, nil
}

// parseStatusRSS reads the "VmRSS:  1234 kB" line of /proc/PID/status, in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, errProcFormat
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, errProcFormat
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%w: no VmRSS line", errProcFormat)
}
