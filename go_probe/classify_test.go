package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestClassifyErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, outcomeOK},
		{"nxdomain", &net.DNSError{Err: "no such host", IsNotFound: true}, outcomeNotFound},
		{"no such host without the flag", &net.DNSError{Err: "no such host"}, outcomeNotFound},
		{"go timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true, IsTemporary: true}, outcomeTimeout},
		{"read deadline", &net.DNSError{Err: "read udp 127.0.0.1:1->127.0.0.1:53: i/o timeout", IsTimeout: true, IsTemporary: true}, outcomeTimeout},
		{"servfail", &net.DNSError{Err: "server misbehaving", IsTemporary: true}, outcomeTemporary},
		{"glibc EAI_AGAIN", &net.DNSError{Err: "Temporary failure in name resolution", IsTemporary: true}, outcomeTemporary},
		{"musl EAI_AGAIN", &net.DNSError{Err: "Try again", IsTemporary: true}, outcomeTemporary},
		{"refused", &net.DNSError{Err: "server misbehaving"}, outcomeRefused},
		{"go EMFILE", &net.DNSError{Err: "dial udp 10.0.0.10:53: socket: too many open files", IsTemporary: true}, outcomeOther},
		{"cgo EMFILE", &net.DNSError{Err: "too many open files", IsTemporary: true}, outcomeOther},
		{"ENFILE", &net.DNSError{Err: "too many open files in system", IsTemporary: true}, outcomeOther},
		{"port unreachable", &net.DNSError{Err: "read udp 127.0.0.1:1->127.0.0.1:53: read: connection refused", IsTemporary: true}, outcomeOther},
		{"no answer", &net.DNSError{Err: "no answer from DNS server"}, outcomeOther},
		{"lame referral", &net.DNSError{Err: "lame referral"}, outcomeOther},
		{"canceled", &net.DNSError{Err: "operation was canceled"}, outcomeOther},
		{"wrapped DNSError", fmt.Errorf("ctx: %w", &net.DNSError{Err: "no such host", IsNotFound: true}), outcomeNotFound},
		{"bare deadline", context.DeadlineExceeded, outcomeTimeout},
		{"wrapped deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), outcomeTimeout},
		{"os deadline", os.ErrDeadlineExceeded, outcomeTimeout},
		{"bare canceled", context.Canceled, outcomeOther},
		{"plain", errors.New("boom"), outcomeOther},
		{"errno", syscall.EMFILE, outcomeOther},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("%s: classify(%v) = %q, want %q", c.name, c.err, got, c.want)
		}
	}
}

// The table above hand-builds DNSErrors; this checks the mapping against what Go's resolver really
// returns for each server behaviour, through a nameserver on 127.0.0.1.
func TestClassifyRealResolverErrors(t *testing.T) {
	ns := startNameserver(t, 0)
	r := ns.resolver()
	cases := []struct {
		kind, name  string
		timeout     time.Duration
		wantOutcome string
		wantAnswers int
	}{
		{"host", "a.ok.test.", time.Second, outcomeOK, 2},
		{"ip", "a.ok.test.", time.Second, outcomeOK, 2},
		{"ip4", "a.ok.test.", time.Second, outcomeOK, 2},
		{"txt", "a.ok.test.", time.Second, outcomeOK, 1},
		{"ip6", "a.ok.test.", time.Second, outcomeNotFound, 0},
		{"host", "a.nodata.test.", time.Second, outcomeNotFound, 0},
		{"host", "a.nx.test.", time.Second, outcomeNotFound, 0},
		{"srv", "a.nx.test.", time.Second, outcomeNotFound, 0},
		{"host", "a.sf.test.", time.Second, outcomeTemporary, 0},
		{"mx", "a.sf.test.", time.Second, outcomeTemporary, 0},
		{"host", "a.rf.test.", time.Second, outcomeRefused, 0},
		{"txt", "a.rf.test.", time.Second, outcomeRefused, 0},
		{"host", "a.drop.test.", 200 * time.Millisecond, outcomeTimeout, 0},
		{"ns", "a.drop.test.", 200 * time.Millisecond, outcomeTimeout, 0},
	}
	for _, c := range cases {
		res := lookupOnce(context.Background(), r, kinds[c.kind], c.name, c.timeout)
		t.Logf("%s %s: %s %d %q", c.kind, c.name, res.Outcome, res.Answers, res.Error)
		if res.Outcome != c.wantOutcome || res.Answers != c.wantAnswers {
			t.Errorf("%s %s: outcome %q answers %d (error %q), want %q and %d",
				c.kind, c.name, res.Outcome, res.Answers, res.Error, c.wantOutcome, c.wantAnswers)
		}
		if (res.Error == "") != (res.Outcome == outcomeOK) {
			t.Errorf("%s %s: outcome %q with error %q", c.kind, c.name, res.Outcome, res.Error)
		}
	}
	if queries, _ := ns.stats(); queries == 0 {
		t.Fatal("the test nameserver saw no query")
	}
}
