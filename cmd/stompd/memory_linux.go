package main

import "syscall"

// physicalMemory returns the machine's RAM in bytes, 0 if it cannot be read.
func physicalMemory() int64 {
	var info syscall.Sysinfo_t
	if err := syscall.Sysinfo(&info); err != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}
