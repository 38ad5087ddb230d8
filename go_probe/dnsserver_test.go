package main

import (
	"context"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNameserver is a tiny UDP DNS server on 127.0.0.1 whose answer is chosen by the name's zone:
//
//	*.ok.test.      A 127.0.0.1 and 127.0.0.2, TXT "hello", NOERROR/no data for other types
//	*.nodata.test.  NOERROR, no answers        *.nx.test.    NXDOMAIN
//	*.sf.test.      SERVFAIL                   *.rf.test.    REFUSED
//	*.drop.test.    never answers
//
// Answers are sent after delay; the server records the largest number of distinct names it was
// holding at once (A and AAAA for one name count once).
type testNameserver struct {
	conn  net.PacketConn
	delay time.Duration

	mu         sync.Mutex
	pending    map[string]int
	maxPending int
	queries    int
	replies    sync.WaitGroup // reply goroutines, waited for at cleanup
}

func startNameserver(t *testing.T, delay time.Duration) *testNameserver {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testNameserver{conn: conn, delay: delay, pending: make(map[string]int)}
	go s.serve()
	t.Cleanup(func() {
		conn.Close()
		s.replies.Wait()
	})
	return s
}

// resolver is a pure-Go resolver whose every query goes to this server, whatever resolv.conf says.
func (s *testNameserver) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

func (s *testNameserver) stats() (queries, maxPending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries, s.maxPending
}

func (s *testNameserver) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		query := append([]byte(nil), buf[:n]...)
		name, qtype, qend, ok := parseQuestion(query)
		if !ok {
			continue
		}
		s.mu.Lock()
		s.queries++
		s.pending[name]++
		if len(s.pending) > s.maxPending {
			s.maxPending = len(s.pending)
		}
		s.replies.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.replies.Done()
			time.Sleep(s.delay)
			s.mu.Lock()
			if s.pending[name]--; s.pending[name] == 0 {
				delete(s.pending, name)
			}
			s.mu.Unlock()
			if reply := answer(query, name, qtype, qend); reply != nil {
				s.conn.WriteTo(reply, from)
			}
		}()
	}
}

const (
	typeA   = 1
	typeTXT = 16
)

// parseQuestion returns the lowercased question name (with a trailing dot), its type, and where the
// question section ends.
func parseQuestion(msg []byte) (string, uint16, int, bool) {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg[4:]) != 1 {
		return "", 0, 0, false
	}
	var labels []string
	i := 12
	for {
		if i >= len(msg) {
			return "", 0, 0, false
		}
		l := int(msg[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(msg) {
			return "", 0, 0, false
		}
		labels = append(labels, string(msg[i:i+l]))
		i += l
	}
	if i+4 > len(msg) {
		return "", 0, 0, false
	}
	return strings.ToLower(strings.Join(labels, ".")) + ".", binary.BigEndian.Uint16(msg[i:]), i + 4, true
}

// answer builds the reply to query, or nil for no reply.
func answer(query []byte, name string, qtype uint16, qend int) []byte {
	const (
		rcodeOK       = 0
		rcodeServFail = 2
		rcodeNXDomain = 3
		rcodeRefused  = 5
	)
	rcode := rcodeOK
	var rrs [][]byte // each: type (2 bytes) then rdata
	switch {
	case strings.HasSuffix(name, ".drop.test."):
		return nil
	case strings.HasSuffix(name, ".nx.test."):
		rcode = rcodeNXDomain
	case strings.HasSuffix(name, ".sf.test."):
		rcode = rcodeServFail
	case strings.HasSuffix(name, ".rf.test."):
		rcode = rcodeRefused
	case strings.HasSuffix(name, ".ok.test."):
		switch qtype {
		case typeA:
			rrs = append(rrs, []byte{0, typeA, 127, 0, 0, 1}, []byte{0, typeA, 127, 0, 0, 2})
		case typeTXT:
			rrs = append(rrs, append([]byte{0, typeTXT, 5}, "hello"...))
		}
	}
	reply := make([]byte, 0, 512)
	reply = append(reply, query[0], query[1])             // ID
	flags := uint16(0x8000|0x0400|0x0080) | uint16(rcode) // QR, AA, RA
	flags |= binary.BigEndian.Uint16(query[2:]) & 0x0100  // RD as asked
	reply = binary.BigEndian.AppendUint16(reply, flags)
	reply = append(reply, 0, 1, byte(len(rrs)>>8), byte(len(rrs))) // QDCOUNT, ANCOUNT
	reply = append(reply, 0, 0, 0, 0)                              // NSCOUNT, ARCOUNT
	reply = append(reply, query[12:qend]...)
	for _, rr := range rrs {
		reply = append(reply, 0xc0, 12)           // the question's name
		reply = append(reply, rr[0], rr[1], 0, 1) // type, class IN
		reply = append(reply, 0, 0, 0, 60)        // TTL
		reply = binary.BigEndian.AppendUint16(reply, uint16(len(rr)-2))
		reply = append(reply, rr[2:]...)
	}
	return reply
}
