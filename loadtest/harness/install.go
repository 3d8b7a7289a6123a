package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// K6Version is the k6 release `make loadtest` installs with go install:
// the newest that builds with this repository's Go (1.26) through the
// module proxy.
const K6Version = "v1.8.1"

var aptUpdate sync.Once

// EnsureApt makes sure bin is on PATH, installing the Debian package pkg
// with apt-get (as root) when it is not.
func EnsureApt(bin, pkg string) error {
	if _, err := exec.LookPath(bin); err == nil {
		return nil
	}
	fmt.Printf("installing %s (apt-get install %s)\n", bin, pkg)
	var err error
	aptUpdate.Do(func() { err = run("apt-get", "update", "-qq") })
	if err != nil {
		return err
	}
	if err := run("apt-get", "install", "-y", "-qq", "--no-install-recommends", pkg); err != nil {
		return err
	}
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("harness: %s still not found after installing %s", bin, pkg)
	}
	return nil
}

// EnsureK6 returns the path of a k6 binary of K6Version, building it with
// `go install go.k6.io/k6@K6Version` when neither PATH nor GOBIN/GOPATH
// has it (the first build takes a few minutes).
func EnsureK6() (string, error) {
	candidates := []string{}
	if p, err := exec.LookPath("k6"); err == nil {
		candidates = append(candidates, p)
	}
	gobin := goEnv("GOBIN")
	if gobin == "" {
		gobin = filepath.Join(goEnv("GOPATH"), "bin")
	}
	candidates = append(candidates, filepath.Join(gobin, "k6"))
	for _, c := range candidates {
		if out, err := exec.Command(c, "version").Output(); err == nil && strings.Contains(string(out), K6Version) {
			return c, nil
		}
	}
	fmt.Printf("installing k6 %s (go install go.k6.io/k6@%s; a few minutes)\n", K6Version, K6Version)
	cmd := exec.Command("go", "install", "go.k6.io/k6@"+K6Version)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Outside this module, so that its go.mod does not constrain k6.
	cmd.Dir = os.TempDir()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("harness: go install go.k6.io/k6@%s: %w", K6Version, err)
	}
	return filepath.Join(gobin, "k6"), nil
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func run(argv ...string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("harness: %s: %w", strings.Join(argv, " "), err)
	}
	return nil
}
