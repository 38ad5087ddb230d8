package main

import (
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"
)

// infoResponse describes the running binary, so the harness can check it got the build it asked for.
type infoResponse struct {
	Mode        string            `json:"mode"`
	GoVersion   string            `json:"go_version"`
	GOOS        string            `json:"goos"`
	GOARCH      string            `json:"goarch"`
	PID         int               `json:"pid"`
	Build       map[string]string `json:"build"` // every debug.BuildInfo setting: CGO_ENABLED, -tags, -ldflags, ...
	CgoEnabled  bool              `json:"cgo_enabled"`
	Tags        string            `json:"tags"`
	StartedAtNS int64             `json:"started_at_ns"`
	// Beyond the contract, cheap and telling: the GODEBUG the probe was started with, and GOMAXPROCS
	// (with `go 1.21` in go.mod, Go 1.25+ keeps the pre-1.25 default that ignores cgroup CPU limits).
	GODEBUG    string `json:"godebug"`
	GOMAXPROCS int    `json:"gomaxprocs"`
}

func newInfo(mode string, started time.Time) infoResponse {
	info := infoResponse{
		Mode:        mode,
		GoVersion:   runtime.Version(),
		GOOS:        runtime.GOOS,
		GOARCH:      runtime.GOARCH,
		PID:         os.Getpid(),
		Build:       make(map[string]string),
		StartedAtNS: started.UnixNano(),
		GODEBUG:     os.Getenv("GODEBUG"),
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			info.Build[s.Key] = s.Value
		}
	}
	info.CgoEnabled = info.Build["CGO_ENABLED"] == "1"
	info.Tags = info.Build["-tags"]
	return info
}

func (p *probe) handleInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "/info takes GET, not "+r.Method)
		return
	}
	info := p.info
	info.GOMAXPROCS = runtime.GOMAXPROCS(0)
	writeJSON(w, http.StatusOK, info)
}
