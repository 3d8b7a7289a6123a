// Package harness is the shared machinery of the load programs
// (loadtest/runner, bench/peers): starting processes pinned to a core,
// reading their CPU time and memory from /proc, running wrk with the
// repository's Lua scripts, installing missing tools, and driving a
// gateway through its Admin API.
//
// It targets Linux (/proc, taskset) and 127.0.0.1 only.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a started process whose output goes to a log file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string // path of the combined stdout/stderr log

	done chan struct{}
	err  error
}

// Start runs argv in dir with its output in dir/name.log. A non-empty cpus
// pins it (and its children) with `taskset -c cpus`; env entries are added
// to the current environment.
func Start(dir, name, cpus string, env []string, argv ...string) (*Proc, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that Stop reaches nginx's worker too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("harness: cannot start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (taskset execs the program, so it is the
// program's own).
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL after a grace
// period, and waits for the exit.
func (p *Proc) Stop() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n lines of the process log.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var (
	clkTckOnce sync.Once
	clkTck     = 100.0
)

// ticksPerSecond is the kernel's USER_HZ (getconf CLK_TCK), 100 when it
// cannot be read.
func ticksPerSecond() float64 {
	clkTckOnce.Do(func() {
		out, err := exec.Command("getconf", "CLK_TCK").Output()
		if err != nil {
			return
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err == nil && v > 0 {
			clkTck = v
		}
	})
	return clkTck
}

// ParseStatCPU returns utime+stime, in clock ticks, from the content of
// /proc/<pid>/stat. The command name (field 2) may hold spaces and
// parentheses, so fields are counted after the last ')'.
func ParseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("harness: malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15), so utime is
	// f[14-3] = f[11].
	if len(f) < 13 {
		return 0, errors.New("harness: short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("harness: malformed utime/stime in /proc stat")
	}
	return u + s, nil
}

// children returns the pids of pid's direct children (from every thread's
// children list).
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// TreeCPU returns the user+system CPU time used so far by pid and every
// live descendant (nginx's master and worker), each process counting all
// its threads.
func TreeCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	ticks, err := ParseStatCPU(b)
	if err != nil {
		return 0, err
	}
	total := time.Duration(float64(ticks) / ticksPerSecond() * float64(time.Second))
	for _, c := range children(pid) {
		if d, err := TreeCPU(c); err == nil {
			total += d
		}
	}
	return total, nil
}

// StatusKB returns a "kB" field of /proc/<pid>/status, such as VmRSS or
// VmHWM (peak RSS).
func StatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 0 {
				break
			}
			return strconv.ParseInt(fs[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("harness: no %s in /proc/%d/status", field, pid)
}

// TreeRSSKB is the summed VmRSS of pid and its live descendants.
func TreeRSSKB(pid int) (int64, error) {
	kb, err := StatusKB(pid, "VmRSS")
	if err != nil {
		return 0, err
	}
	for _, c := range children(pid) {
		if v, err := TreeRSSKB(c); err == nil {
			kb += v
		}
	}
	return kb, nil
}
