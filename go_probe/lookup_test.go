package main

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestExpandRand(t *testing.T) {
	g := newNameGen()
	name := g.expand("{rand}.api.example.test")
	if !regexp.MustCompile(`^[0-9a-f]{16}\.api\.example\.test$`).MatchString(name) {
		t.Fatalf("expand gave %q", name)
	}
	if !strings.HasPrefix(name, g.prefix) {
		t.Errorf("%q does not start with the process prefix %q", name, g.prefix)
	}
}

func TestExpandUniqueUnderConcurrency(t *testing.T) {
	g := newNameGen()
	const workers, each = 8, 2000
	names := make([][]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				names[w] = append(names[w], g.expand("{rand}.x.test"))
			}
		}(w)
	}
	wg.Wait()
	seen := make(map[string]bool)
	for _, list := range names {
		for _, n := range list {
			if seen[n] {
				t.Fatalf("%q expanded twice", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d distinct names, want %d", len(seen), workers*each)
	}
}

func TestExpandSeqAndPlain(t *testing.T) {
	g := newNameGen()
	if got := g.expand("plain.example.test"); got != "plain.example.test" {
		t.Errorf("plain name changed to %q", got)
	}
	if got := g.expand("{seq}.a.test"); got != "1.a.test" {
		t.Errorf("first {seq} gave %q", got)
	}
	if got := g.expand("{seq}.a.test"); got != "2.a.test" {
		t.Errorf("second {seq} gave %q", got)
	}
	// One counter value per expansion, shared by every placeholder in the name.
	got := g.expand("{rand}-{seq}-{rand}")
	parts := strings.Split(got, "-")
	if len(parts) != 3 || parts[0] != parts[2] || parts[1] != "3" {
		t.Fatalf("mixed template gave %q", got)
	}
	if n, err := strconv.ParseUint(parts[0][8:], 16, 32); err != nil || n != 3 {
		t.Errorf("counter half of %q is not 3", parts[0])
	}
	if got := g.expand("{other}.a.test"); got != "{other}.a.test" {
		t.Errorf("unknown placeholder changed to %q", got)
	}
}

func TestHex8(t *testing.T) {
	for v, want := range map[uint32]string{0: "00000000", 0xabc: "00000abc", 0xffffffff: "ffffffff", 0x12345678: "12345678"} {
		if got := hex8(v); got != want {
			t.Errorf("hex8(%#x) = %q, want %q", v, got, want)
		}
	}
}

func TestEveryKindHasALookup(t *testing.T) {
	for _, kind := range []string{"host", "ip", "ip4", "ip6", "cname", "srv", "txt", "mx", "ns", "ptr"} {
		if kinds[kind] == nil {
			t.Errorf("kind %q missing", kind)
		}
	}
	if len(kinds) != 10 {
		t.Errorf("%d kinds, want 10", len(kinds))
	}
}
