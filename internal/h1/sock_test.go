package h1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// TestSockIO checks that sockIO reads and writes as net.Conn does: whole
// writes through a full socket buffer, io.EOF, deadlines and resets
// reported with the errors callers test for.
func TestSockIO(t *testing.T) {
	a, b := tcpPair(t)
	var s sockIO
	s.init(a)
	if rawSyscalls && s.raw == nil {
		t.Fatal("raw system calls not in use on a TCP connection")
	}

	// 8 MiB does not fit the socket buffers: Write must wait for room.
	big := bytes.Repeat([]byte("0123456789abcdef"), 512<<10)
	got := make(chan []byte)
	go func() {
		buf, _ := io.ReadAll(io.LimitReader(b, int64(len(big))))
		got <- buf
	}()
	if n, err := s.Write(big); n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if !bytes.Equal(<-got, big) {
		t.Fatal("the peer read other bytes than were written")
	}

	// A read waits for data, and for nothing longer than the deadline.
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.Write([]byte("hello"))
	}()
	buf := make([]byte, 64)
	if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := s.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})

	// An orderly close is io.EOF.
	b.CloseWrite()
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer's FIN = %d, %v", n, err)
	}

	// A reset is found by errors.Is, as the router's retry test needs.
	c, d := tcpPair(t)
	s.init(c)
	d.SetLinger(0)
	d.Close()
	time.Sleep(20 * time.Millisecond)
	if _, err := s.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Read after a reset: %v", err)
	}
	var op *net.OpError
	if _, err := s.Write([]byte("x")); err == nil || !errors.As(err, &op) {
		t.Fatalf("Write after a reset: %v", err)
	}

	// After Close, both fail with net.ErrClosed.
	c.Close()
	if _, err := s.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// TestSockWriteRead checks WriteRead, which writes a request and waits for
// the answer without first trying a read: an answer sent at once (before
// the wait starts) must still wake it, every time; errors are reported on
// the right side.
func TestSockWriteRead(t *testing.T) {
	a, b := tcpPair(t)
	var s sockIO
	s.init(a)

	go echoPeer(b)
	a.SetDeadline(time.Now().Add(10 * time.Second)) // a missed wake-up fails, not hangs
	in := make([]byte, 4096)
	for i := range 3000 {
		out := fmt.Appendf(nil, "request %d", i)
		n, werr, rerr := s.WriteRead(out, in)
		if werr != nil || rerr != nil {
			t.Fatalf("exchange %d: write %v, read %v", i, werr, rerr)
		}
		// The echo may come back in pieces.
		for n < len(out) {
			m, err := s.Read(in[n:])
			if err != nil {
				t.Fatalf("exchange %d: %v", i, err)
			}
			n += m
		}
		if !bytes.Equal(in[:n], out) {
			t.Fatalf("exchange %d: %q", i, in[:n])
		}
	}

	// No answer: the read side times out.
	c, d := tcpPair(t)
	s.init(c)
	c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, werr, rerr := s.WriteRead([]byte("x"), in); werr != nil || !errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("no answer: write %v, read %v", werr, rerr)
	}
	// The peer closes after reading: io.EOF from the read side.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		io.ReadFull(d, make([]byte, 2))
		d.Close()
	}()
	if n, werr, rerr := s.WriteRead([]byte("y"), in); n != 0 || werr != nil || rerr != io.EOF {
		t.Fatalf("peer closed: %d, write %v, read %v", n, werr, rerr)
	}

	// A request larger than the socket buffers is written whole first.
	e, f := tcpPair(t)
	s.init(e)
	e.SetDeadline(time.Now().Add(10 * time.Second))
	big := bytes.Repeat([]byte("z"), 8<<20)
	go func() {
		io.ReadFull(f, make([]byte, len(big)))
		f.Write([]byte("done"))
	}()
	if n, werr, rerr := s.WriteRead(big, in); werr != nil || rerr != nil || string(in[:n]) != "done" {
		t.Fatalf("big request: %q, write %v, read %v", in[:n], werr, rerr)
	}

	// Closed: the write side fails.
	e.Close()
	if _, werr, _ := s.WriteRead([]byte("x"), in); !errors.Is(werr, net.ErrClosed) {
		t.Fatalf("after Close: write %v", werr)
	}
}

// echoPeer writes back what it reads, as fast as it can, until c fails.
func echoPeer(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}
