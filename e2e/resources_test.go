package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const gib = 1 << 30

// procStatusKB reads a field such as VmHWM (peak RSS) from /proc.
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestStreamsOneGiBBothWays sends a 1 GiB response and a 1 GiB upload
// through the gateway and checks its peak RSS grows by less than 64 MiB.
func TestStreamsOneGiBBothWays(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB over loopback")
	}
	var uploaded int64
	var mu sync.Mutex
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/download":
			w.Header().Set("Content-Length", strconv.Itoa(gib))
			io.CopyN(w, zeros{}, gib)
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			mu.Lock()
			uploaded = n
			mu.Unlock()
			fmt.Fprint(w, n)
		}
	})
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	// Warm up, then take the baseline.
	g.get("/upload")
	pid := g.cmd.Process.Pid
	base := procStatusKB(t, pid, "VmHWM")

	resp, err := http.Get("http://" + g.proxy + "/download")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != gib {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	afterDown := procStatusKB(t, pid, "VmHWM")

	req, _ := http.NewRequest("POST", "http://"+g.proxy+"/upload", io.LimitReader(zeros{}, gib))
	req.ContentLength = gib
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	mu.Lock()
	got := uploaded
	mu.Unlock()
	if resp.StatusCode != 200 || got != gib {
		t.Fatalf("upload: status %d, origin got %d bytes", resp.StatusCode, got)
	}
	afterUp := procStatusKB(t, pid, "VmHWM")
	t.Logf("peak RSS: %d KiB at start, %d KiB after 1 GiB down, %d KiB after 1 GiB up", base, afterDown, afterUp)
	if afterUp-base > 64<<10 {
		t.Fatalf("peak RSS grew by %d KiB streaming 1 GiB each way, limit 65536 KiB", afterUp-base)
	}
}

// scrapeCounter reads one unlabelled counter from /metrics.
func scrapeCounter(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	r := g.doKey("GET", "/metrics", "", "")
	for _, line := range strings.Split(string(r.Body), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, line)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestFewerThanOneAllocationPerRequest measures, from outside, heap
// allocations per proxied request under load.
func TestFewerThanOneAllocationPerRequest(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/hello","upstream":{"nodes":{"%s":1,"%s":1}}}`, a.Addr, b.Addr), 201)
	countBodies(t, g, "/hello", 200) // warm pools

	const workers, perWorker = 8, 2500
	before := scrapeCounter(t, g, "go_memstats_mallocs_total")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				resp, err := proxyClient.Get("http://" + g.proxy + "/hello")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	after := scrapeCounter(t, g, "go_memstats_mallocs_total")
	perReq := (after - before) / (workers * perWorker)
	t.Logf("%.0f allocations over %d requests: %.3f per request (includes one /metrics scrape)", after-before, workers*perWorker, perReq)
	if perReq >= 1 {
		t.Fatalf("%.3f heap allocations per proxied request, want < 1", perReq)
	}
}
