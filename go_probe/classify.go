package main

import (
	"context"
	"errors"
	"net"
	"strings"
)

// Outcome classes: every lookup gets exactly one. The Python side (records.py OUTCOMES) uses the same
// strings; start_failure is the harness's own and never comes from the probe.
const (
	outcomeOK        = "ok"
	outcomeNotFound  = "not_found"
	outcomeTimeout   = "timeout"
	outcomeTemporary = "temporary"
	outcomeRefused   = "refused"
	outcomeOther     = "other"
)

// classify maps a lookup error to its outcome class. The checks run top to bottom; the first match wins.
//
//	check (on the *net.DNSError unless said)        class      typical error text
//	----------------------------------------------  ---------  ---------------------------------------------
//	err == nil                                      ok
//	IsNotFound (or Err == "no such host")           not_found  "no such host" (NXDOMAIN, NODATA, EAI_NONAME)
//	IsTimeout                                       timeout    "i/o timeout" (also our context deadline)
//	IsTemporary, not a local socket failure         temporary  SERVFAIL "server misbehaving" (Go resolver),
//	                                                           "Temporary failure in name resolution" (glibc
//	                                                           EAI_AGAIN), "Try again" (musl EAI_AGAIN)
//	Err == "server misbehaving", not temporary      refused    REFUSED, also FORMERR/NOTIMP (Go resolver)
//	any error: errors.Is(context.DeadlineExceeded)  timeout    a bare context error (not wrapped by net)
//	any error with Timeout() true                   timeout
//	anything else                                   other      "too many open files", "no answer from DNS
//	                                                           server", "operation was canceled", ...
//
// Why this order: DNSError.Temporary() is IsTimeout||IsTemporary, so timeouts must be taken before
// temporary; and IsTimeout/IsTemporary are read as fields, never through the methods.
//
// Why "local socket failure" is excluded from temporary: the Go resolver sets IsTemporary on every
// socket-level error (a *net.OpError from dial/read/write: "dial udp 10.0.0.10:53: socket: too many open
// files", "read udp ...: connection refused"), and cgo's EAI_SYSTEM with errno EMFILE/ENFILE is temporary
// by syscall.Errno's rules. Those are the client running out of resources or finding no server, not the
// resolver reporting SERVFAIL/EAI_AGAIN, so they are "other" (the outcome class "temporary" is SERVFAIL / EAI_AGAIN).
// The DNSError carries only the text of such errors, hence the text match.
func classify(err error) string {
	if err == nil {
		return outcomeOK
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound || dnsErr.Err == "no such host":
			return outcomeNotFound
		case dnsErr.IsTimeout:
			return outcomeTimeout
		case dnsErr.IsTemporary && !isLocalFailure(dnsErr.Err):
			return outcomeTemporary
		case dnsErr.Err == "server misbehaving" && !dnsErr.IsTemporary:
			return outcomeRefused
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return outcomeTimeout
	}
	var t interface{ Timeout() bool }
	if errors.As(err, &t) && t.Timeout() {
		return outcomeTimeout
	}
	return outcomeOther
}

// isLocalFailure reports whether a DNSError's text is a socket-level error on the client's side rather
// than an answer (or EAI_AGAIN) from the resolver: net.OpError text starts with its Op ("dial udp ...",
// "read udp ...", "write tcp ..."), and EMFILE/ENFILE read "too many open files[ in system]".
func isLocalFailure(text string) bool {
	for _, op := range [...]string{"dial ", "read ", "write "} {
		if strings.HasPrefix(text, op) {
			return true
		}
	}
	return strings.Contains(text, "too many open files")
}
