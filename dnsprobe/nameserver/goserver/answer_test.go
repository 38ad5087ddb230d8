package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The byte-for-byte comparison with the Python engine lives in tests/test_goserver.py; these check the
// pieces on their own.

func wireName(labels ...string) []byte {
	var b []byte
	for _, l := range labels {
		b = append(b, byte(len(l)))
		b = append(b, l...)
	}
	return append(b, 0)
}

func TestNameTextEscapesAsDnspython(t *testing.T) {
	cases := []struct {
		wire []byte
		want string
	}{
		{[]byte{0}, "."},
		{wireName("www", "example", "test"), "www.example.test."},
		{wireName("*", "w", "test"), "*.w.test."},
		{wireName("a.b", "test"), `a\.b.test.`},
		{wireName("say\"hi\"", "x"), `say\"hi\".x.`},
		{wireName("sp ace", "x"), `sp\032ace.x.`},
		{wireName("\x00\x7f\xff", "x"), `\000\127\255.x.`},
		{wireName("(@$;)", "x"), `\(\@\$\;\).x.`},
	}
	for _, c := range cases {
		if got := string(appendNameText(nil, c.wire)); got != c.want {
			t.Errorf("appendNameText(%q) = %q, want %q", c.wire, got, c.want)
		}
	}
}

func testZone() *zone {
	z := &zone{
		Answers: []encoded{{Rcode: 3}, {Rcode: 0, Ancount: 1, Body: []byte("A")}, {Rcode: 0}},
		Nodes: []node{
			{Name: wireName("test"), Types: map[uint16]int{}, Any: 2, Other: 2, Nx: 0},
			{Name: wireName("*", "w", "test"), Types: map[uint16]int{1: 1}, Any: 1, Other: 2, Nx: 0},
			{Name: wireName("w", "test"), Types: map[uint16]int{}, Any: 2, Other: 2, Nx: 0},
		},
		Nothing: 0,
		Rcodes:  map[uint16]string{0: "NOERROR", 1: "FORMERR", 3: "NXDOMAIN", 4: "NOTIMP"},
	}
	if err := z.indexNodes(); err != nil {
		panic(err)
	}
	return z
}

func question(name []byte, qtype uint16) []byte {
	packet := append(header(0x1234, flagRD, 1, 0, 0, 0), name...)
	return append(packet, byte(qtype>>8), byte(qtype), 0, 1)
}

func TestLookupWildcardsAndClosestEncloser(t *testing.T) {
	z := testZone()
	cases := []struct {
		name  []byte
		qtype uint16
		want  int
	}{
		{wireName("Deep", "Name", "W", "TEST"), 1, 1}, // wildcard, any case
		{wireName("x", "w", "test"), 28, 2},           // wildcard, NODATA for AAAA
		{wireName("x", "test"), 1, 0},                 // below test., no wildcard: NXDOMAIN
		{wireName("x", "other"), 1, 0},                // outside every node: nothing
		{wireName("w", "test"), 255, 2},               // ANY at an empty non-terminal
	}
	for _, c := range cases {
		q, bad := parseQuery(question(c.name, c.qtype), z)
		if bad != nil {
			t.Fatalf("%q: %v", c.name, bad)
		}
		if got := z.lookup(q); got != c.want {
			t.Errorf("lookup(%q, %d) = %d, want %d", c.name, c.qtype, got, c.want)
		}
	}
}

func TestBadPacketsGetPythonsOutcomes(t *testing.T) {
	z := testZone()
	valid := question(wireName("a", "w", "test"), 1)
	cases := []struct {
		packet  []byte
		outcome string
		reply   bool
	}{
		{valid[:11], "drop", false},
		{append([]byte{0x12, 0x34, 0x81, 0x00}, valid[4:]...), "drop", false},       // a response
		{append([]byte{0x12, 0x34, 0x28, 0x00}, valid[4:]...), "NOTIMP", true},      // UPDATE
		{valid[:20], "formerr", true},                                               // cut in the name
		{append(header(1, 0, 1, 0, 0, 0), 0xc0, 0x0c, 0, 1, 0, 1), "formerr", true}, // a pointer
	}
	for i, c := range cases {
		_, bad := parseQuery(c.packet, z)
		if bad == nil || bad.outcome != c.outcome || (bad.reply != nil) != c.reply {
			t.Errorf("case %d: got %+v, want %s (reply %v)", i, bad, c.outcome, c.reply)
		}
	}
}

func TestTruncationAndEDNS(t *testing.T) {
	z := testZone()
	z.Answers[1].Body = bytes.Repeat([]byte{1}, 600)
	q, _ := parseQuery(question(wireName("a", "w", "test"), 1), z)
	if q.udpLimit() != 512 {
		t.Fatalf("no EDNS: limit %d, want 512", q.udpLimit())
	}
	reply, _ := z.respond(q, q.udpLimit())
	if reply[2]&0x02 == 0 || len(reply) > 512 {
		t.Errorf("600 bytes of answer in 512: TC not set or reply too long (%d bytes)", len(reply))
	}
	reply, _ = z.respond(q, tcpLimit)
	if reply[2]&0x02 != 0 || len(reply) < 600 {
		t.Errorf("over TCP the whole answer: got %d bytes, TC %v", len(reply), reply[2]&0x02 != 0)
	}
}

func TestQueryLogLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.tsv")
	l, err := openQueryLog(path, map[uint16]string{1: "A"})
	if err != nil {
		t.Fatal(err)
	}
	z := testZone()
	q, _ := parseQuery(question(wireName("a", "w", "test"), 1), z)
	l.record("udp", netip.MustParseAddrPort("127.0.0.1:4242"), int(q.id), q, "", "NOERROR")
	l.record("tcp", netip.MustParseAddrPort("[::ffff:127.0.0.1]:7"), -1, nil, "", "drop")
	l.close()
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(lines), raw)
	}
	if got := strings.SplitN(lines[0], "\t", 2)[1]; got != "udp\t127.0.0.1\t4242\t4660\ta.w.test.\tA\t-\t-\tNOERROR" {
		t.Errorf("line 1: %q", got)
	}
	if got := strings.SplitN(lines[1], "\t", 2)[1]; got != "tcp\t127.0.0.1\t7\t-\t-\t-\t-\t-\tdrop" {
		t.Errorf("line 2: %q", got)
	}
	if stamp := strings.SplitN(lines[0], "\t", 2)[0]; len(stamp) < 17 || stamp[len(stamp)-7] != '.' {
		t.Errorf("time %q: want seconds with 6 decimals", stamp)
	}
}
