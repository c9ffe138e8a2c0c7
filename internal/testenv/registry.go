package testenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// registryStartTimeout bounds the wait for a fresh registry to answer /v2/;
// it answers in about 50 ms on a 2-core test machine.
const registryStartTimeout = 15 * time.Second

// Registry starts a private image registry (the Debian docker-registry binary,
// Docker Distribution 2.8) on a free 127.0.0.1 port with its storage in a
// temporary directory, waits until it answers, and returns its base URL
// ("http://127.0.0.1:PORT"). The registry is killed, by its own pid, when the
// test ends. Without the binary the test ends through Missing.
func Registry(t testing.TB) string {
	t.Helper()
	bin := Binary(t, "docker-registry", "docker-registry")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between probe and bind
		url, err := startRegistry(t, bin)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatalf("start docker-registry: %v", lastErr)
	return ""
}

func startRegistry(t testing.TB, bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		return "", err
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer logFile.Close()

	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill() // this registry's own pid, nothing else
		<-exited
	}

	url := "http://" + addr
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(registryStartTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // let stop() return
			return "", fmt.Errorf("docker-registry exited at start (%v); log: %s", err, readTail(logPath))
		default:
		}
		resp, err := client.Get(url + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Cleanup(stop)
				return url, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("docker-registry on %s did not answer /v2/ within %s; log: %s", addr, registryStartTimeout, readTail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}
