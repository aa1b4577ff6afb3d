//go:build !linux

package main

// threadCPU is 0 where the thread's CPU time is not read: only wall times are meaningful.
func threadCPU() int64 { return 0 }
