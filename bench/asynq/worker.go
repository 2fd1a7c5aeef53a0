package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// workerSpec mirrors bench.protocol.WorkerSpec.
type workerSpec struct {
	URL           string  `json:"url"`
	Concurrency   int     `json:"concurrency"`
	Work          string  `json:"work"`
	Report        string  `json:"report"`
	Expect        int     `json:"expect"`
	ProgressEvery int     `json:"progress_every"`
	HoldS         float64 `json:"hold_s"`
	Results       bool    `json:"results"`
	Scheduler     bool    `json:"scheduler"`
	Queue         string  `json:"queue"`
	CounterKey    string  `json:"counter_key"`
}

// payload is the job body every system carries: index and a wall time.
type payload struct {
	I int     `json:"i"`
	T float64 `json:"t"`
}

// probe counts and times job executions, like bench/systems/_probe.py.
type probe struct {
	spec      workerSpec
	ev        *events
	rdb       *redis.Client
	mu        sync.Mutex
	count     int
	first     float64
	latencies []float64
}

func (p *probe) handle(ctx context.Context, task *asynq.Task) error {
	start := wallSeconds(time.Now())
	var body payload
	if err := json.Unmarshal(task.Payload(), &body); err != nil {
		return fmt.Errorf("bad payload: %w", err)
	}
	switch p.spec.Report {
	case "latency":
		p.mu.Lock()
		p.latencies = append(p.latencies, start-body.T)
		p.mu.Unlock()
	case "each":
		p.ev.emit("started", map[string]any{"i": body.I, "t": start})
	}
	switch p.spec.Work {
	case "incr":
		if err := p.rdb.Incr(ctx, p.spec.CounterKey).Err(); err != nil {
			return err
		}
	case "hold":
		select {
		case <-time.After(time.Duration(p.spec.HoldS * float64(time.Second))):
		case <-ctx.Done():
		}
	}
	p.finish(body)
	return nil
}

func (p *probe) finish(body payload) {
	now := wallSeconds(time.Now())
	if p.spec.Report == "each" {
		p.ev.emit("completed", map[string]any{"i": body.I, "t": now})
	}
	p.mu.Lock()
	p.count++
	count := p.count
	if count == 1 {
		p.first = now
	}
	var done []float64
	if count == p.spec.Expect {
		done = append([]float64{}, p.latencies...)
	}
	p.mu.Unlock()
	if every := p.spec.ProgressEvery; every > 0 && count%every == 0 {
		p.ev.emit("progress", map[string]any{"count": count})
	}
	if count == p.spec.Expect {
		p.ev.emit("done", map[string]any{
			"count": count, "first": p.first, "last": now, "latencies": done,
		})
	}
}

func runWorker(ev *events, text string) error {
	var spec workerSpec
	if err := json.Unmarshal([]byte(text), &spec); err != nil {
		return fmt.Errorf("bad worker spec: %w", err)
	}
	opt, err := asynq.ParseRedisURI(spec.URL)
	if err != nil {
		return err
	}
	redisOpt, err := redis.ParseURL(spec.URL)
	if err != nil {
		return err
	}
	p := &probe{spec: spec, ev: ev, rdb: redis.NewClient(redisOpt)}
	defer p.rdb.Close()

	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: spec.Concurrency,
		Queues:      map[string]int{spec.Queue: 1},
		LogLevel:    asynq.WarnLevel,
	})
	mux := asynq.NewServeMux()
	mux.HandleFunc("bench_job", p.handle)
	if err := srv.Start(mux); err != nil {
		return err
	}
	ev.emit("ready", map[string]any{"pid": os.Getpid(), "versions": versions()})

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	srv.Shutdown()
	return nil
}
