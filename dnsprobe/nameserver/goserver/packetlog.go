package main

import (
	"encoding/binary"
	"math"
	"net/netip"
	"os"
	"sync"
	"time"
)

// The raw packet log for --pcap, in the format dnsprobe/nameserver/pcap.py reads (and turns into
// dns.pcap with dpkt): per message, little endian, time f64, proto u8 (0 udp, 1 tcp), direction u8
// (0 to the server, 1 from it), family u8 (4 or 6), a pad byte, client address 16 bytes, client port u16,
// server address 16 bytes, server port u16, length u32, then the DNS message (TCP without its length).

type packetLog struct {
	mu   sync.Mutex
	file *os.File
	buf  []byte
}

func openPacketLog(path string) (*packetLog, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &packetLog{file: file, buf: make([]byte, 0, flushSize+4096)}, nil
}

func appendAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	var raw [16]byte
	if ip.Is4() {
		v4 := ip.As4()
		copy(raw[:], v4[:])
	} else {
		raw = ip.As16()
	}
	b = append(b, raw[:]...)
	return binary.LittleEndian.AppendUint16(b, a.Port())
}

// add logs one DNS message; inbound is true for a query the server received.
func (l *packetLog) add(proto string, inbound bool, client, server netip.AddrPort, message []byte) {
	if l == nil {
		return
	}
	now := float64(time.Now().UnixNano()) / 1e9
	var head [4]byte
	if proto == "tcp" {
		head[0] = 1
	}
	if !inbound {
		head[1] = 1
	}
	head[2] = 4
	if !client.Addr().Unmap().Is4() {
		head[2] = 6
	}
	l.mu.Lock()
	b := binary.LittleEndian.AppendUint64(l.buf, math.Float64bits(now))
	b = append(b, head[:]...)
	b = appendAddr(b, client)
	b = appendAddr(b, server)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(message)))
	b = append(b, message...)
	l.buf = b
	if len(b) >= flushSize {
		l.flushLocked()
	}
	l.mu.Unlock()
}

func (l *packetLog) flush() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.flushLocked()
	l.mu.Unlock()
}

func (l *packetLog) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	if _, err := l.file.Write(l.buf); err != nil {
		logf("cannot write the packet log %s: %v", l.file.Name(), err)
	}
	l.buf = l.buf[:0]
}

func (l *packetLog) close() {
	if l == nil {
		return
	}
	l.flush()
	l.file.Close()
}
