//go:build linux

package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// monoTime is a reading of CLOCK_MONOTONIC, in nanoseconds. Unlike the
// monotonic readings of time.Time, it means the same in every process of
// the machine, so that the runner can give the watchdog a deadline.
type monoTime int64

// monoNow reads CLOCK_MONOTONIC.
func monoNow() monoTime {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic("consul-leader: clock_gettime(CLOCK_MONOTONIC): " + err.Error()) // never fails on Linux
	}
	return monoTime(ts.Nano())
}

func (t monoTime) add(d time.Duration) monoTime { return t + monoTime(d) }

// sub returns t - u.
func (t monoTime) sub(u monoTime) time.Duration { return time.Duration(t - u) }

func (t monoTime) before(u monoTime) bool { return t < u }
