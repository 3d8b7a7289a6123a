package harness

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis, as the kernel
	// allows; utime 1234 and stime 56 are fields 14 and 15.
	stat := []byte("4242 (nginx: worker) S 4241 4241 4241 0 -1 4194624 10 0 0 0 1234 56 7 8 20 0 1 0 100 0 0")
	got, err := ParseStatCPU(stat)
	if err != nil || got != 1290 {
		t.Fatalf("ParseStatCPU = %d, %v; want 1290", got, err)
	}
	if _, err := ParseStatCPU([]byte("garbage")); err == nil {
		t.Fatal("ParseStatCPU accepted garbage")
	}
}

func TestTreeCPUOfSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := TreeCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if kb, err := StatusKB(os.Getpid(), "VmRSS"); err != nil || kb <= 0 {
		t.Fatalf("VmRSS = %d, %v", kb, err)
	}
}

func TestParseWrkSummary(t *testing.T) {
	out := []byte("Running 1s test @ http://127.0.0.1:1/\n" +
		`wrk-summary: {"requests":2000,"duration_us":1000000,"bytes":1,"errors_connect":1,"errors_read":2,` +
		`"errors_write":0,"errors_timeout":3,"errors_status":4,"latency_p50_us":500,"latency_p90_us":900,` +
		`"latency_p99_us":1500,"latency_p999_us":3000,"latency_max_us":4000,"latency_mean_us":550.5}` + "\n")
	r, err := ParseWrkSummary(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS() != 2000 || r.Errors() != 10 || r.P99US != 1500 || r.P50().Microseconds() != 500 {
		t.Fatalf("parsed %+v: rps %v errors %d", r, r.RPS(), r.Errors())
	}
	if _, err := ParseWrkSummary([]byte("Requests/sec: 1\n")); err == nil {
		t.Fatal("a run without the summary line was accepted")
	}
}

func TestMedianAndCPUPerRequest(t *testing.T) {
	in := []float64{5, 1, 3, 2}
	if got := Median(in); got != 2.5 {
		t.Fatalf("Median(5 1 3 2) = %v, want 2.5", got)
	}
	if in[0] != 5 {
		t.Fatal("Median sorted its argument")
	}
	if got := Median([]float64{7, 1, 4}); got != 4 {
		t.Fatalf("Median(7 1 4) = %v, want 4", got)
	}
	if Median(nil) != 0 || CPUPerRequest(time.Second, 0) != 0 {
		t.Fatal("empty input is not 0")
	}
	if got := CPUPerRequest(2*time.Second, 100000); got != 20 {
		t.Fatalf("2 s over 100,000 requests = %v µs, want 20", got)
	}
}

func TestWrkResultAddErrors(t *testing.T) {
	var sum WrkResult
	sum.AddErrors(WrkResult{Requests: 9, ErrorsConnect: 1, ErrorsRead: 2, ErrorsWrite: 3, ErrorsTimeout: 4, ErrorsStatus: 5})
	sum.AddErrors(WrkResult{ErrorsTimeout: 10})
	if sum.Errors() != 25 || sum.ErrorsTimeout != 14 || sum.Requests != 0 {
		t.Fatalf("sum %+v", sum)
	}
}
