package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestListenOnTCPAnnouncesTheActualPort(t *testing.T) {
	ln, addr, cleanup, err := listenOn("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	defer ln.Close()
	if !regexp.MustCompile(`^127\.0\.0\.1:[1-9][0-9]*$`).MatchString(addr) {
		t.Errorf("announced %q", addr)
	}
}

func TestListenOnUnixRemovesAStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "probe.sock")
	// A socket file nobody listens on any more, as a killed probe leaves it.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	_, addr, cleanup, err := listenOn("unix:" + path)
	if err != nil {
		t.Fatal(err)
	}
	if addr != "unix:"+path {
		t.Errorf("announced %q", addr)
	}
	// A second probe on the same path must not steal the live socket.
	if _, _, _, err := listenOn("unix:" + path); err == nil || !strings.Contains(err.Error(), "listening") {
		t.Errorf("second listen on a live socket: %v", err)
	}
	cleanup()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after cleanup: %v", err)
	}
}

func TestListenOnUnixRefusesToRemoveARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-a-socket")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := listenOn("unix:" + path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listen over a regular file: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "keep me" {
		t.Error("the regular file was changed")
	}
}

func TestRunFailsWithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-listen", "unix:"},
		{"-listen", "256.0.0.1:0"},
		{"-bogus"},
		{"-listen", "127.0.0.1:0", "extra"},
	} {
		var stdout, stderr strings.Builder
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		if !regexp.MustCompile(`^dnsprobe-probe: [^\n]+\n$`).MatchString(stderr.String()) || stdout.Len() != 0 {
			t.Errorf("%v: stdout %q stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

// The whole lifecycle in-process: start, announce, answer /info, SIGTERM, exit 0, socket file gone.
func TestRunServesInfoAndStopsOnSIGTERM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "probe.sock")
	outR, outW := io.Pipe()
	var stderr strings.Builder
	exit := make(chan int, 1)
	go func() {
		exit <- run([]string{"-listen", "unix:" + path, "-mode", "unit"}, outW, &stderr)
		outW.Close()
	}()
	lines := bufio.NewScanner(outR)
	if !lines.Scan() || lines.Text() != "listening on unix:"+path {
		t.Fatalf("first stdout line %q", lines.Text())
	}
	go io.Copy(io.Discard, outR)

	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	resp, err := client.Get("http://probe/info")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info["mode"] != "unit" || info["go_version"] != runtime.Version() || info["pid"].(float64) != float64(os.Getpid()) {
		t.Errorf("info %v", info)
	}
	for _, key := range []string{"goos", "goarch", "build", "cgo_enabled", "tags", "started_at_ns"} {
		if _, ok := info[key]; !ok {
			t.Errorf("info has no %q", key)
		}
	}
	client.CloseIdleConnections()

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d after SIGTERM", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after exit: %v", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q", stderr.String())
	}
}

func TestInfoFromBuildSettings(t *testing.T) {
	info := newInfo("m", time.Unix(0, 42))
	if info.Mode != "m" || info.StartedAtNS != 42 || info.Build == nil {
		t.Errorf("info %+v", info)
	}
	if info.CgoEnabled != (info.Build["CGO_ENABLED"] == "1") || info.Tags != info.Build["-tags"] {
		t.Errorf("cgo_enabled/tags disagree with build %v", info.Build)
	}
}
