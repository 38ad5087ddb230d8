package main

import (
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// The query log, in the format of dnsprobe/nameserver/querylog.py (which reads it):
//
//	time  proto  client  port  id  qname  qtype  edns  fault  rcode
//
// Python opened the file first (header written, a line cut by a crash removed); this appends to it.
// Lines are buffered and written every flushInterval, when the buffer is large, and on exit.

const (
	flushInterval = 200 * time.Millisecond
	flushSize     = 256 << 10
)

type queryLog struct {
	mu     sync.Mutex
	file   *os.File
	buf    []byte
	qtypes map[uint16]string
}

func openQueryLog(path string, qtypes map[uint16]string) (*queryLog, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &queryLog{file: file, buf: make([]byte, 0, flushSize+4096), qtypes: qtypes}, nil
}

// record logs one packet. q is nil for a packet without a readable question; id is -1 without an ID;
// fault is the fault rule's name, "" for none.
func (l *queryLog) record(proto string, client netip.AddrPort, id int, q *query, fault, outcome string) {
	if l == nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	b := l.buf
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, '.')
	micros := now.Nanosecond() / 1000
	for div := 100000; div > 0; div /= 10 {
		b = append(b, byte('0'+micros/div%10))
	}
	b = append(b, '\t')
	b = append(b, proto...)
	b = append(b, '\t')
	b = client.Addr().Unmap().AppendTo(b)
	b = append(b, '\t')
	b = strconv.AppendUint(b, uint64(client.Port()), 10)
	b = append(b, '\t')
	if id < 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, int64(id), 10)
	}
	b = append(b, '\t')
	if q == nil {
		b = append(b, "-\t-\t-"...)
	} else {
		b = appendNameText(b, q.qname)
		b = append(b, '\t')
		if text, ok := l.qtypes[q.qtype]; ok {
			b = append(b, text...)
		} else {
			b = append(b, "TYPE"...)
			b = strconv.AppendUint(b, uint64(q.qtype), 10)
		}
		b = append(b, '\t')
		if q.edns < 0 {
			b = append(b, '-')
		} else {
			b = strconv.AppendInt(b, int64(q.edns), 10)
		}
	}
	b = append(b, '\t')
	if fault == "" {
		b = append(b, '-')
	} else {
		b = append(b, fault...)
	}
	b = append(b, '\t')
	b = append(b, outcome...)
	b = append(b, '\n')
	l.buf = b
	if len(b) >= flushSize {
		l.flushLocked()
	}
	l.mu.Unlock()
}

func (l *queryLog) flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.flushLocked()
	l.mu.Unlock()
}

func (l *queryLog) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.file.Write(l.buf); err != nil {
		logf("cannot write the query log %s: %v", l.file.Name(), err)
	}
	l.buf = l.buf[:0]
}

func (l *queryLog) close() {
	if l == nil {
		return
	}
	l.flush()
	l.file.Close()
}

// appendNameText writes a wire name as dnspython's Name.to_text does: labels joined by dots, a trailing
// dot, `"().;\@$` escaped with a backslash, other bytes outside 0x21-0x7e as \DDD.
func appendNameText(b []byte, wire []byte) []byte {
	if len(wire) == 0 || wire[0] == 0 {
		return append(b, '.')
	}
	for pos := 0; pos < len(wire) && wire[pos] != 0; {
		end := pos + 1 + int(wire[pos])
		for _, c := range wire[pos+1 : end] {
			switch {
			case c == '"' || c == '(' || c == ')' || c == '.' || c == ';' || c == '\\' || c == '@' || c == '$':
				b = append(b, '\\', c)
			case c > 0x20 && c < 0x7f:
				b = append(b, c)
			default:
				b = append(b, '\\', '0'+c/100, '0'+c/10%10, '0'+c%10)
			}
		}
		b = append(b, '.')
		pos = end
	}
	return b
}
