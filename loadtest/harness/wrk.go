package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// WrkOptions is one wrk run.
type WrkOptions struct {
	URL      string
	Script   string   // a script of loadtest/wrk (each prints the summary line)
	Args     []string // the script's arguments (after --)
	Conns    int      // connections (default 64)
	Threads  int      // threads (default 1)
	Duration time.Duration
	Timeout  time.Duration // wrk's per-request timeout, whole seconds (default 2 s)
	CPUs     string        // taskset -c value; empty for no pinning
}

// WrkResult is the summary line printed by loadtest/wrk/summary.lua.
type WrkResult struct {
	Requests      int64   `json:"requests"`
	DurationUS    int64   `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	ErrorsConnect int64   `json:"errors_connect"`
	ErrorsRead    int64   `json:"errors_read"`
	ErrorsWrite   int64   `json:"errors_write"`
	ErrorsTimeout int64   `json:"errors_timeout"`
	ErrorsStatus  int64   `json:"errors_status"`
	P50US         int64   `json:"latency_p50_us"`
	P90US         int64   `json:"latency_p90_us"`
	P99US         int64   `json:"latency_p99_us"`
	P999US        int64   `json:"latency_p999_us"`
	MaxUS         int64   `json:"latency_max_us"`
	MeanUS        float64 `json:"latency_mean_us"`
}

// RPS is requests per second over the run.
func (r WrkResult) RPS() float64 {
	if r.DurationUS == 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

// Errors counts socket errors, timeouts and responses with a status above
// 399.
func (r WrkResult) Errors() int64 {
	return r.ErrorsConnect + r.ErrorsRead + r.ErrorsWrite + r.ErrorsTimeout + r.ErrorsStatus
}

// AddErrors adds o's error counters to r's (to sum errors over runs).
func (r *WrkResult) AddErrors(o WrkResult) {
	r.ErrorsConnect += o.ErrorsConnect
	r.ErrorsRead += o.ErrorsRead
	r.ErrorsWrite += o.ErrorsWrite
	r.ErrorsTimeout += o.ErrorsTimeout
	r.ErrorsStatus += o.ErrorsStatus
}

// P50 and P99 are the latency percentiles as durations.
func (r WrkResult) P50() time.Duration { return time.Duration(r.P50US) * time.Microsecond }
func (r WrkResult) P99() time.Duration { return time.Duration(r.P99US) * time.Microsecond }

const summaryPrefix = "wrk-summary: "

// ParseWrkSummary finds the summary line in wrk's output.
func ParseWrkSummary(out []byte) (WrkResult, error) {
	var r WrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(summaryPrefix)); ok {
			if err := json.Unmarshal(rest, &r); err != nil {
				return r, fmt.Errorf("harness: bad wrk summary line: %w", err)
			}
			return r, nil
		}
	}
	return r, errors.New("harness: no wrk summary line in the output (is the script one of loadtest/wrk?)")
}

// RunWrk runs wrk to completion and returns its summary.
func RunWrk(ctx context.Context, o WrkOptions) (WrkResult, error) {
	if o.Conns == 0 {
		o.Conns = 64
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	secs := int(o.Duration.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	argv := []string{"wrk", "-t" + strconv.Itoa(o.Threads), "-c" + strconv.Itoa(o.Conns),
		"-d" + strconv.Itoa(secs) + "s", "--timeout", strconv.Itoa(max(1, int(o.Timeout/time.Second))) + "s",
		"--latency", "-s", o.Script, o.URL}
	if len(o.Args) > 0 {
		argv = append(append(argv, "--"), o.Args...)
	}
	if o.CPUs != "" {
		argv = append([]string{"taskset", "-c", o.CPUs}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return WrkResult{}, fmt.Errorf("harness: wrk %s: %w\n%s", o.URL, err, out)
	}
	r, err := ParseWrkSummary(out)
	if err != nil {
		return r, fmt.Errorf("%w\n%s", err, out)
	}
	return r, nil
}
