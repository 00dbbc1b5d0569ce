package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
	"github.com/berth-io/berth/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testserverbin.Run(m)) }

// model is a testserver process serving as an instance.
type model struct {
	testInstance
	// others are further containers of a multi-container instance, by
	// name.
	others map[string]*model
}

func (m *model) ContainerURL(name string) (string, bool) {
	if o, ok := m.others[name]; ok {
		return o.url, true
	}
	return "", false
}

var _ Containers = (*model)(nil)

// startModel runs the testserver with env and waits until it answers.
func startModel(t *testing.T, env ...string) *model {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(testserverbin.Build(t))
	cmd.Env = append([]string{"SAGEMAKER_BIND_TO_PORT=" + port}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	m := &model{testInstance: testInstance{url: "http://127.0.0.1:" + port}}
	testutil.WaitFor(t, 10*time.Second, func() error {
		resp, err := http.Get(m.url + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("ping: %d", resp.StatusCode)
		}
		return nil
	})
	return m
}

// inflight returns the testserver's invocations in progress and the most
// it ever had at once.
func (m *model) inflight(t *testing.T) (now, most int) {
	t.Helper()
	resp, err := http.Get(m.url + "/inflight")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if _, err := fmt.Sscanf(string(b), "%d %d", &now, &most); err != nil {
		t.Fatalf("inflight %q: %v", b, err)
	}
	return now, most
}

// slots returns the capped requests running on st and those waiting.
func (st *instState) slots() (running, waiting int) {
	st.slotMu.Lock()
	defer st.slotMu.Unlock()
	return st.running, len(st.waiters)
}

func sleepHeader(d string) []Field { return []Field{{Name: "X-Testserver-Sleep", Value: d}} }

// TestPerRequestTimeout: on one endpoint, a request with a short timeout
// times out while one under the router's default succeeds.
func TestPerRequestTimeout(t *testing.T) {
	m := startModel(t)
	r := newRouter(t, Options{Timeout: 10 * time.Second})
	r.Publish(one("ep", m))
	var wg sync.WaitGroup
	var short, long error
	var longBody string
	start := time.Now()
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, short = r.Invoke(context.Background(), "ep", Request{Body: []byte("a"), Header: sleepHeader("400ms"), Timeout: 100 * time.Millisecond})
	}()
	go func() {
		defer wg.Done()
		resp, err := r.Invoke(context.Background(), "ep", Request{Body: []byte("b"), Header: sleepHeader("400ms")})
		if long = err; err == nil {
			longBody = string(resp.Body)
		}
	}()
	wg.Wait()
	var me *ModelError
	if !errors.As(short, &me) || !me.Timeout {
		t.Errorf("short timeout: %v, want a timeout", short)
	}
	if long != nil || longBody != "b" {
		t.Errorf("default timeout: %q %v", longBody, long)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	// The timeout applies to a request over the Transport (chunked body)
	// as well.
	_, err := r.Invoke(context.Background(), "ep", Request{BodyReader: strings.NewReader("c"), ContentLength: -1,
		Header: sleepHeader("400ms"), Timeout: 100 * time.Millisecond})
	if !errors.As(err, &me) || !me.Timeout {
		t.Errorf("short timeout, chunked body: %v", err)
	}
}

// TestPerRequestTarget: a request goes to the path and container it
// names, on either client.
func TestPerRequestTarget(t *testing.T) {
	second := startModel(t, "TESTSERVER_MODE=upper")
	primary := startModel(t)
	primary.others = map[string]*model{"second": second}
	r := newRouter(t, Options{})
	r.Publish(one("ep", primary))
	for _, tt := range []struct {
		name string
		req  Request
		want string
	}{
		{"default path", Request{Body: []byte("abc")}, "abc"},
		{"model path", Request{Body: []byte("abc"), Path: "/models/m-1/invoke"}, "m-1:abc"},
		{"model path, chunked", Request{BodyReader: strings.NewReader("abc"), ContentLength: -1, Path: "/models/m-2/invoke"}, "m-2:abc"},
		{"second container", Request{Body: []byte("abc"), Container: "second"}, "ABC"},
		{"second container, chunked", Request{BodyReader: strings.NewReader("abc"), ContentLength: -1, Container: "second"}, "ABC"},
		{"second container, model path", Request{Body: []byte("abc"), Container: "second", Path: "/models/x/invoke"}, "x:abc"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := r.Invoke(context.Background(), "ep", tt.req)
			if err != nil || string(resp.Body) != tt.want {
				t.Fatalf("got %v %v, want %q", resp, err, tt.want)
			}
		})
	}
	for _, req := range []Request{{Container: "third"}, {Path: "models/x"}, {Path: "/a b"}} {
		if _, err := r.Invoke(context.Background(), "ep", req); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%+v: %v, want an Invalid fault", req, err)
		}
	}
	if n := r.Outstanding(primary); n != 0 {
		t.Errorf("%d requests left outstanding", n)
	}
}

// TestPinnedInstance: a request pinned to the instance of an earlier hop
// goes there, whichever the picker would choose.
func TestPinnedInstance(t *testing.T) {
	a, b := startModel(t, "TESTSERVER_MODE=upper"), startModel(t)
	r := newRouter(t, Options{})
	r.Publish(one("ep", a, b))
	s, err := r.Open(context.Background(), "ep", &Request{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(s)
	inst := s.Instance()
	s.Close()
	for range 10 {
		resp, err := r.Invoke(context.Background(), "ep", Request{Body: []byte("x"), Instance: inst})
		if err != nil || string(resp.Body) != string(body) {
			t.Fatalf("pinned request answered %v %v, want %q", resp, err, body)
		}
	}
	r.Publish(one("ep", b))
	if _, err := r.Invoke(context.Background(), "ep", Request{Body: []byte("x"), Instance: a}); fault.KindOf(err) != fault.Unavailable {
		t.Errorf("pinned to an instance no longer routed to: %v", err)
	}
}

// TestInstanceCapQueues: with a cap of 1, five concurrent requests all
// succeed, one at a time at the instance.
func TestInstanceCapQueues(t *testing.T) {
	m := startModel(t)
	r := newRouter(t, Options{})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, MaxConcurrency: 1, Instances: []Instance{m}}}})
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := r.Invoke(context.Background(), "ep", Request{Body: []byte(strconv.Itoa(i)), Header: sleepHeader("50ms")})
			if err == nil && string(resp.Body) != strconv.Itoa(i) {
				err = fmt.Errorf("request %d answered %q", i, resp.Body)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, most := m.inflight(t); most != 1 {
		t.Errorf("at most %d requests at once at the instance, want 1", most)
	}
	// A request's own cap overrides the variant's.
	m2 := startModel(t)
	r.Publish(&Endpoint{Name: "ep2", Variants: []*Variant{{Name: "v", Weight: 1, Instances: []Instance{m2}}}})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Invoke(context.Background(), "ep2", Request{Header: sleepHeader("50ms"), MaxConcurrency: 2}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, most := m2.inflight(t); most != 2 {
		t.Errorf("at most %d requests at once with a request cap of 2", most)
	}
}

// TestInstanceCapCancelAndTimeout: queued requests whose context ends or
// whose timeout passes leave the queue at once, holding nothing; the
// request in flight is unaffected and the slot serves the next.
func TestInstanceCapCancelAndTimeout(t *testing.T) {
	m := startModel(t)
	r := newRouter(t, Options{Timeout: 20 * time.Second})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, MaxConcurrency: 1, Instances: []Instance{m}}}})
	st := r.states[m]

	held := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), "ep", Request{Header: sleepHeader("1s")})
		held <- err
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if now, _ := m.inflight(t); now != 1 {
			return fmt.Errorf("%d in flight", now)
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := r.Invoke(ctx, "ep", Request{})
			queued <- err
		}()
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, waiting := st.slots(); waiting != 4 {
			return fmt.Errorf("%d waiting", waiting)
		}
		return nil
	})
	if n := r.Outstanding(m); n != 5 {
		t.Errorf("outstanding = %d, want 5 (queued requests count)", n)
	}
	cancel()
	for range 4 {
		select {
		case err := <-queued:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled queued request: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a cancelled request stayed queued")
		}
	}
	if running, waiting := st.slots(); running != 1 || waiting != 0 {
		t.Errorf("after cancelling: %d running, %d waiting; want 1, 0", running, waiting)
	}
	if n := r.Outstanding(m); n != 1 {
		t.Errorf("outstanding after cancelling = %d, want 1", n)
	}

	// A queued request's own timeout ends its wait: throttled.
	start := time.Now()
	_, err := r.Invoke(context.Background(), "ep", Request{Timeout: 100 * time.Millisecond})
	if fault.KindOf(err) != fault.Throttled {
		t.Errorf("timed out in the queue: %v, want a Throttled fault", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the queue timeout took %s", d)
	}

	if err := <-held; err != nil {
		t.Errorf("request holding the slot: %v", err)
	}
	if _, err := r.Invoke(context.Background(), "ep", Request{Body: []byte("next")}); err != nil {
		t.Errorf("next request: %v", err)
	}
	if running, waiting := st.slots(); running != 0 || waiting != 0 || r.Outstanding(m) != 0 {
		t.Errorf("at rest: %d running, %d waiting, %d outstanding", running, waiting, r.Outstanding(m))
	}
}

// TestLeastOutstandingCountsQueued: requests waiting for a slot count as
// outstanding, so capped instances share the backlog evenly.
func TestLeastOutstandingCountsQueued(t *testing.T) {
	a, b := startModel(t), startModel(t)
	r := newRouter(t, Options{})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, MaxConcurrency: 1, Instances: []Instance{a, b}}}})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Invoke(context.Background(), "ep", Request{Header: sleepHeader("500ms")}); err != nil {
				t.Error(err)
			}
		}()
		// One at a time, so each pick sees the previous ones counted.
		testutil.WaitFor(t, 5*time.Second, func() error {
			if n := r.Outstanding(a) + r.Outstanding(b); n != int64(i+1) {
				return fmt.Errorf("%d outstanding", n)
			}
			return nil
		})
	}
	if na, nb := r.Outstanding(a), r.Outstanding(b); na != 3 || nb != 3 {
		t.Errorf("outstanding %d and %d, want 3 and 3", na, nb)
	}
	wg.Wait()
}

// TestAbandonWakesQueued: Abandon ends the wait of requests queued for a
// slot, although their contexts never end.
func TestAbandonWakesQueued(t *testing.T) {
	m := startModel(t)
	r := newRouter(t, Options{Timeout: time.Minute})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, MaxConcurrency: 1, Instances: []Instance{m}}}})
	go r.Invoke(context.Background(), "ep", Request{Header: sleepHeader("2s")})
	testutil.WaitFor(t, 5*time.Second, func() error {
		if running, _ := r.states[m].slots(); running != 1 {
			return fmt.Errorf("%d running", running)
		}
		return nil
	})
	queued := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), "ep", Request{})
		queued <- err
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, waiting := r.states[m].slots(); waiting != 1 {
			return fmt.Errorf("%d waiting", waiting)
		}
		return nil
	})
	r.Abandon()
	select {
	case err := <-queued:
		if fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "abandoned") {
			t.Errorf("abandoned queued request: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a queued request was not abandoned")
	}
}

// TestContainerConnectionsClosedWithInstance: the pooled connections to
// every container of an instance go when the router stops routing to it.
func TestContainerConnectionsClosedWithInstance(t *testing.T) {
	second := startModel(t)
	primary := startModel(t)
	primary.others = map[string]*model{"second": second}
	r := newRouter(t, Options{})
	r.Publish(one("ep", primary))
	for _, c := range []string{"", "second"} {
		if _, err := r.Invoke(context.Background(), "ep", Request{Container: c}); err != nil {
			t.Fatal(err)
		}
	}
	addr := strings.TrimPrefix(second.url, "http://")
	if n := r.upstream.IdleConns(addr); n != 1 {
		t.Fatalf("%d idle connections to the second container, want 1", n)
	}
	r.Remove("ep")
	if n := r.upstream.IdleConns(addr); n != 0 {
		t.Errorf("%d idle connections to a removed instance's second container, want 0", n)
	}
}
