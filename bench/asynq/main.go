// Command asynq-bench is the asynq adapter of the Bananas benchmark harness.
//
// It speaks the protocol of bench/protocol.py: it is started as
//
//	asynq-bench <role> <spec-json>
//
// with role info, worker or client, and writes one JSON event per line on
// standard output (asynq's own logs go to standard error). The worker runs an
// asynq.Server with the spec's concurrency on the queue "bench"; its handler
// does what the Python probe does (bench/systems/_probe.py): read the clock
// first, optionally INCR a counter or sleep, count completions, and report.
// The client runs the same submission loops as bench/systems/_client.py,
// minus bulk (asynq has none) and round trip (asynq has no way to wait for a
// result short of polling the inspector).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// events writes one JSON object per line, safe for concurrent use.
type events struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newEvents() *events { return &events{enc: json.NewEncoder(os.Stdout)} }

func (e *events) emit(event string, fields map[string]any) {
	out := map[string]any{"event": event}
	for k, v := range fields {
		out[k] = v
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_ = e.enc.Encode(out)
}

// wallSeconds returns the wall clock in seconds, like Python's time.time().
func wallSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// versions reports the Go toolchain and the asynq and go-redis modules.
func versions() map[string]string {
	found := map[string]string{"go": runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			switch dep.Path {
			case "github.com/hibiken/asynq":
				found["asynq"] = dep.Version
			case "github.com/redis/go-redis/v9":
				found["go-redis"] = dep.Version
			}
		}
	}
	return found
}

func main() {
	ev := newEvents()
	if len(os.Args) < 2 {
		ev.emit("error", map[string]any{"message": "usage: asynq-bench ROLE [SPEC]"})
		os.Exit(2)
	}
	spec := "{}"
	if len(os.Args) > 2 {
		spec = os.Args[2]
	}
	var err error
	switch os.Args[1] {
	case "info":
		ev.emit("info", map[string]any{"system": "asynq", "versions": versions()})
	case "worker":
		err = runWorker(ev, spec)
	case "client":
		err = runClient(ev, spec)
	default:
		err = fmt.Errorf("unknown role %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		ev.emit("error", map[string]any{"message": err.Error()})
		os.Exit(1)
	}
}
