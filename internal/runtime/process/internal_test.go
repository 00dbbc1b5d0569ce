package process

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInstanceDirName(t *testing.T) {
	ids := []string{
		"my-endpoint/AllTraffic/0", "my-endpoint_AllTraffic_0", "..", ".", "../../etc",
		"a/../../b", "é\x00ü", strings.Repeat("x", 500), "/abs/path",
	}
	seen := map[string]string{}
	for _, id := range ids {
		name := instanceDirName(id)
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." || len(name) > 80 {
			t.Errorf("instanceDirName(%q) = %q: not one safe path element", id, name)
		}
		if filepath.Dir(filepath.Join("/state", name)) != "/state" {
			t.Errorf("instanceDirName(%q) = %q escapes the state dir", id, name)
		}
		if other, dup := seen[name]; dup {
			t.Errorf("ids %q and %q share dir %q", other, id, name)
		}
		seen[name] = id
	}
	if got := instanceDirName("my-endpoint/AllTraffic/0"); !strings.HasPrefix(got, "my-endpoint_AllTraffic_0-") {
		t.Errorf("readable prefix lost: %q", got)
	}
}

func TestTailWriter(t *testing.T) {
	var sink strings.Builder
	w := newTailWriter(&sink, 3)
	for _, chunk := range []string{"one\ntw", "o\r\nthree\n", "four\nfi", "ve"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("write %q = %d, %v", chunk, n, err)
		}
	}
	if got, want := fmt.Sprint(w.lines()), "[three four five]"; got != want {
		t.Errorf("lines = %s, want %s", got, want)
	}
	if sink.String() != "one\ntwo\r\nthree\nfour\nfive" {
		t.Errorf("sink got %q", sink.String())
	}
	long := strings.Repeat("y", 3*maxLineLen)
	w.Write([]byte(long + "\n"))
	if l := w.lines(); len(l[len(l)-1]) != maxLineLen {
		t.Errorf("long line kept at %d bytes, want %d", len(l[len(l)-1]), maxLineLen)
	}
}

func TestPortAllocatorRange(t *testing.T) {
	a := newPortAllocator(42000, 42011, 3) // three blocks of four
	a.free = func([]int) bool { return true }
	var leases []portLease
	for range 3 {
		l, err := a.allocate()
		if err != nil {
			t.Fatal(err)
		}
		if l.SafeLo != l.Bind+1 || l.SafeHi != l.Bind+3 || (l.Bind-42000)%4 != 0 {
			t.Errorf("lease %+v not a block", l)
		}
		leases = append(leases, l)
	}
	if _, err := a.allocate(); !errors.Is(err, errNoPorts) {
		t.Errorf("allocate from a full range: %v, want errNoPorts", err)
	}
	a.release(leases[1])
	l, err := a.allocate()
	if err != nil || l != leases[1] {
		t.Errorf("allocate after release = %+v, %v; want %+v", l, err, leases[1])
	}
}

func TestPortAllocatorSkipsBusyPorts(t *testing.T) {
	a := newPortAllocator(42000, 42011, 3)
	a.free = func(ports []int) bool { return !slices.Contains(ports, 42002) } // block 0 busy
	for _, want := range []int{42004, 42008} {
		if l, err := a.allocate(); err != nil || l.Bind != want {
			t.Errorf("allocate = %+v, %v; want bind %d", l, err, want)
		}
	}
	if _, err := a.allocate(); !errors.Is(err, errNoPorts) {
		t.Errorf("allocate with only a busy block left: %v, want errNoPorts", err)
	}
}

func TestPortAllocatorOS(t *testing.T) {
	a := newPortAllocator(0, 0, 10)
	held := map[int]bool{}
	for range 20 {
		l, err := a.allocate()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.ports() {
			if held[p] {
				t.Fatalf("port %d leased twice", p)
			}
			held[p] = true
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string // substring of the error; empty means valid
	}{
		{"defaults", Options{StateDir: "x"}, ""},
		{"no state dir", Options{}, "state dir"},
		{"port range too low", Options{StateDir: "x", PortRange: [2]int{80, 90}}, "port range"},
		{"port range too small", Options{StateDir: "x", PortRange: [2]int{9000, 9005}}, "port range"},
		{"port range", Options{StateDir: "x", PortRange: [2]int{9000, 9100}}, ""},
		{"negative grace", Options{StateDir: "x", StopGrace: -time.Second}, "stop grace"},
		{"backoff inverted", Options{StateDir: "x", BackoffMin: time.Minute, BackoffMax: time.Second}, "backoff min"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.setDefaults()
			err := o.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
