// Package benchscale measures what a process pays to lead many resources,
// or to hold many candidates of one: the time until every leadership is
// acquired, the requests per second it then sends, the sockets it keeps
// open to the store, and the memory and goroutines it grows by. The
// benchmarks of the backend packages run each election recipe through it,
// this module's and the store's own, in the same run.
//
// The measurements read /proc, so they are meaningful on Linux only;
// elsewhere the socket and RSS counts are reported as -1.
package benchscale

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Int returns the value of the environment variable name as a positive
// integer, or def when it is unset. It panics on a value that is not one,
// so that a mistyped setting never measures the default silently.
func Int(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		panic(fmt.Sprintf("%s=%q: want a positive integer", name, v))
	}
	return n
}

// Duration returns the value of the environment variable name as a
// positive Go duration, or def when it is unset. It panics on a value that
// is not one.
func Duration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		panic(fmt.Sprintf("%s=%q: want a positive duration such as 30s", name, v))
	}
	return d
}

// Sockets counts the TCP connections of this process that are established
// to port on a remote (or loopback) host, from /proc. It returns -1 when
// /proc cannot be read.
func Sockets(port int) int {
	inodes, err := socketInodes()
	if err != nil {
		return -1
	}
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		c, err := countEstablished(table, port, inodes)
		if err != nil {
			if table == "/proc/net/tcp6" && os.IsNotExist(err) {
				continue
			}
			return -1
		}
		n += c
	}
	return n
}

// socketInodes returns the inodes of the sockets among this process's file
// descriptors.
func socketInodes() (map[string]bool, error) {
	const dir = "/proc/self/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	inodes := make(map[string]bool, len(entries))
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return inodes, nil
}

// countEstablished counts the rows of the /proc/net table file that are
// established connections to the remote port and whose inode is in inodes.
func countEstablished(file string, port int, inodes map[string]bool) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	n := 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(s.Text())
		if len(fields) < 10 || fields[3] != "01" {
			continue
		}
		if strings.HasSuffix(fields[2], want) && inodes[fields[9]] {
			n++
		}
	}
	return n, s.Err()
}

// Usage is a snapshot of the process's resources.
type Usage struct {
	// Goroutines is runtime.NumGoroutine.
	Goroutines int
	// HeapInuse is the bytes of in-use heap spans, after a collection.
	HeapInuse uint64
	// HeapAlloc is the bytes of live heap objects, after a collection: of
	// HeapInuse, what is not lost to spans that live objects fill only in
	// part.
	HeapAlloc uint64
	// StackInuse is the bytes of goroutine stacks.
	StackInuse uint64
	// RSS is the resident set size in bytes, from /proc/self/status;
	// -1 when it cannot be read.
	RSS int64
}

// Take collects garbage, returns freed memory to the system, and then
// takes a snapshot.
func Take() Usage {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return Usage{Goroutines: runtime.NumGoroutine(), HeapInuse: m.HeapInuse, HeapAlloc: m.HeapAlloc, StackInuse: m.StackInuse, RSS: rss()}
}

// rss reads VmRSS from /proc/self/status.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return -1
		}
		return kb * 1024
	}
	return -1
}

// Quantile returns the q-quantile (0 ≤ q ≤ 1) of samples, nearest rank; zero
// for no samples. It sorts samples.
func Quantile(samples []time.Duration, q float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	slices.Sort(samples)
	return samples[min(len(samples)-1, int(q*float64(len(samples))))]
}

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteHeapProfile writes the profile of the heap in use, as of the last
// collection, to the file name.
func WriteHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// HeapLive returns the bytes of live heap objects after a collection, for
// tests that bound what each of many electors keeps.
func HeapLive() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
