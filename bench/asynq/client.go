package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// clientSpec mirrors bench.protocol.ClientSpec.
type clientSpec struct {
	URL      string  `json:"url"`
	Mode     string  `json:"mode"`
	N        int     `json:"n"`
	Batch    int     `json:"batch"`
	Rate     float64 `json:"rate"`
	LeadS    float64 `json:"lead_s"`
	SpacingS float64 `json:"spacing_s"`
	TimeoutS float64 `json:"timeout_s"`
	Warmup   int     `json:"warmup"`
	Results  bool    `json:"results"`
	Queue    string  `json:"queue"`
}

// prefillInFlight matches PREFILL_IN_FLIGHT in bench/systems/_client.py.
const prefillInFlight = 50

type submitter struct {
	client *asynq.Client
	queue  string
}

func (s *submitter) submit(i int, t float64, opts ...asynq.Option) error {
	body, err := json.Marshal(payload{I: i, T: t})
	if err != nil {
		return err
	}
	opts = append(opts, asynq.Queue(s.queue))
	_, err = s.client.Enqueue(asynq.NewTask("bench_job", body), opts...)
	return err
}

func runClient(ev *events, text string) error {
	var spec clientSpec
	if err := json.Unmarshal([]byte(text), &spec); err != nil {
		return fmt.Errorf("bad client spec: %w", err)
	}
	opt, err := asynq.ParseRedisURI(spec.URL)
	if err != nil {
		return err
	}
	s := &submitter{client: asynq.NewClient(opt), queue: spec.Queue}
	defer s.client.Close()
	var result map[string]any
	switch spec.Mode {
	case "sequential":
		result, err = sequential(s, spec)
	case "prefill":
		result, err = prefill(s, spec)
	case "paced":
		result, err = paced(s, spec)
	case "delayed":
		result, err = delayed(s, spec)
	default:
		err = fmt.Errorf("Unsupported: asynq has no %s mode", spec.Mode)
	}
	if err != nil {
		return err
	}
	ev.emit("result", result)
	return nil
}

func sequential(s *submitter, spec clientSpec) (map[string]any, error) {
	for i := 0; i < spec.Warmup; i++ {
		if err := s.submit(-1-i, 0); err != nil {
			return nil, err
		}
	}
	durations := make([]float64, 0, spec.N)
	begin := time.Now()
	for i := 0; i < spec.N; i++ {
		t0 := time.Now()
		if err := s.submit(i, 0); err != nil {
			return nil, err
		}
		durations = append(durations, time.Since(t0).Seconds())
	}
	elapsed := time.Since(begin).Seconds()
	return map[string]any{
		"n": spec.N, "seconds": elapsed, "rate": float64(spec.N) / elapsed,
		"call": summarizeMs(durations),
	}, nil
}

func prefill(s *submitter, spec clientSpec) (map[string]any, error) {
	begin := time.Now()
	for start := 0; start < spec.N; start += prefillInFlight {
		stop := min(spec.N, start+prefillInFlight)
		errs := make(chan error, stop-start)
		var wg sync.WaitGroup
		for i := start; i < stop; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs <- s.submit(i, 0)
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return nil, err
			}
		}
	}
	return map[string]any{"n": spec.N, "seconds": time.Since(begin).Seconds(), "bulk": false}, nil
}

func paced(s *submitter, spec clientSpec) (map[string]any, error) {
	begin := time.Now()
	behind := 0.0
	for i := 0; i < spec.N; i++ {
		due := begin.Add(time.Duration(float64(i) / spec.Rate * float64(time.Second)))
		if wait := time.Until(due); wait > 500*time.Microsecond {
			time.Sleep(wait)
		} else {
			behind = math.Max(behind, -wait.Seconds())
		}
		if err := s.submit(i, wallSeconds(time.Now())); err != nil {
			return nil, err
		}
	}
	elapsed := time.Since(begin).Seconds()
	achieved := 0.0
	if spec.N > 1 && elapsed > 0 {
		achieved = float64(spec.N-1) / elapsed
	}
	return map[string]any{
		"n": spec.N, "rate": spec.Rate, "achieved": achieved, "max_behind_ms": behind * 1e3,
	}, nil
}

func delayed(s *submitter, spec clientSpec) (map[string]any, error) {
	start := wallSeconds(time.Now())
	for i := 0; i < spec.N; i++ {
		due := start + spec.LeadS + float64(i)*spec.SpacingS
		at := time.Unix(0, int64(due*1e9))
		if err := s.submit(i, due, asynq.ProcessAt(at)); err != nil {
			return nil, err
		}
	}
	return map[string]any{
		"n": spec.N, "submit_seconds": wallSeconds(time.Now()) - start,
		"first_due": start + spec.LeadS,
	}, nil
}

// summarizeMs matches bench.stats.summarize_ms (nearest-rank percentiles).
func summarizeMs(seconds []float64) map[string]any {
	if len(seconds) == 0 {
		return map[string]any{"n": 0}
	}
	ordered := append([]float64{}, seconds...)
	sort.Float64s(ordered)
	rank := func(pct float64) float64 {
		r := int(math.Ceil(pct / 100 * float64(len(ordered))))
		r = max(1, min(r, len(ordered)))
		return ordered[r-1] * 1e3
	}
	sum := 0.0
	for _, v := range ordered {
		sum += v
	}
	return map[string]any{
		"n": len(ordered), "min": ordered[0] * 1e3, "p50": rank(50), "p95": rank(95),
		"p99": rank(99), "max": ordered[len(ordered)-1] * 1e3,
		"mean": sum / float64(len(ordered)) * 1e3,
	}
}
