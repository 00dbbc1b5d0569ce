package fdlimit

import "testing"

func TestMaxConnections(t *testing.T) {
	for _, c := range []struct {
		limit uint64
		want  int
	}{
		{0, 0}, {64, 16}, {287, 16}, {300, 22}, {1024, 384}, {20000, 9872}, {1 << 20, (1<<20 - 256) / 2}, {1 << 62, (1<<20 - 256) / 2},
	} {
		if got := MaxConnections(c.limit); got != c.want {
			t.Errorf("MaxConnections(%d) = %d, want %d", c.limit, got, c.want)
		}
	}
}

func TestRaise(t *testing.T) {
	limit, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if limit == 0 {
		t.Skip("no open-file limit on this system")
	}
	again, err := Raise()
	if err != nil || again != limit {
		t.Errorf("second Raise = %d, %v; want %d", again, err, limit)
	}
}
