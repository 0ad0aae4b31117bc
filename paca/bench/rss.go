package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// procStatus reads the kB fields VmRSS (resident set now) and VmHWM (its
// peak, the "high-water mark") of /proc/self/status, in bytes. ok is false
// where there is no /proc (not Linux).
func procStatus() (rss, hwm int64, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, val, found := strings.Cut(sc.Text(), ":")
		if !found || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if name == "VmRSS" {
			rss = n * 1024
		} else {
			hwm = n * 1024
		}
	}
	return rss, hwm, rss > 0 || hwm > 0
}

// resetPeakRSS sets the process's VmHWM back to its current VmRSS, as
// Linux (since 4.0) does on writing "5" to /proc/self/clear_refs, so the
// next reading is the peak of what happens from now on. It reports
// whether that worked.
func resetPeakRSS() bool {
	f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0)
	if err != nil {
		return false
	}
	_, err = f.WriteString("5")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false
	}
	rss, hwm, ok := procStatus()
	// The reset worked if the mark is back near the current RSS (it may
	// have grown by a few pages since).
	return ok && hwm <= rss+1<<20
}

// cpuModel is the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return ""
}
