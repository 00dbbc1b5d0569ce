// Command benchtool serves berth's built-in model server and drives HTTP
// load for bench/xgboost/run.sh.
//
//	benchtool serve xgboost              # like `berth model-server xgboost`
//	benchtool load -url U -body F -c 16 -d 10s
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-io/berth/internal/modelserver/builtin"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool serve <framework> | load [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "serve":
		if len(os.Args) < 3 {
			err = fmt.Errorf("serve needs a framework")
			break
		}
		err = builtin.Main(ctx, os.Args[2], os.Args[3:], os.Stdout, os.Stderr)
	case "load":
		err = load(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// load sends the same CSV body with c concurrent keep-alive clients for d
// and prints requests per second.
func load(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	url := fs.String("url", "", "invocations URL")
	bodyFile := fs.String("body", "", "file with the request body")
	conc := fs.Int("c", 1, "concurrent clients")
	dur := fs.Duration("d", 10*time.Second, "duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", *url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "text/csv")
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	fmt.Printf("%.1f req/s (%d ok, %d failed, c=%d)\n", float64(ok.Load())/el, ok.Load(), failed.Load(), *conc)
	if ok.Load() == 0 {
		return fmt.Errorf("no successful requests")
	}
	return nil
}
