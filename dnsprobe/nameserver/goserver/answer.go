package main

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// The answer path: the same header walk, EDNS parse and closest-encloser lookup as
// dnsprobe/codec/wire.py, over answers that Python encoded once per node and type (zone.json).
// Every reply is byte-for-byte the reply the Python engine sends; tests/test_goserver.py checks that.

const (
	flagQR     = 0x8000
	flagOpcode = 0x7800
	flagAA     = 0x0400
	flagTC     = 0x0200
	flagRD     = 0x0100
	flagRA     = 0x0080
	flagCD     = 0x0010
	copied     = flagRD | flagCD
	answerBits = flagQR | flagAA | flagRA

	rcodeFormerr = 1
	rcodeNotimp  = 4
	rcodeRefused = 5
	rcodeBadvers = 16

	typeOPT    = 41
	typeANY    = 255
	ednsSize   = 4096  // the UDP payload size we advertise
	tcpLimit   = 65535 // the largest message a 2-byte TCP length carries
	maxNameLen = 255
)

// encoded is an answer's sections after the question.
type encoded struct {
	Rcode   uint16 `json:"rcode"`
	Ancount uint16 `json:"an"`
	Nscount uint16 `json:"ns"`
	Body    []byte `json:"body"`
}

// node is a name that exists (or a wildcard): its answer per query type, to ANY, to every other type,
// and the NXDOMAIN answer for names below it that do not exist.
type node struct {
	Name  []byte         `json:"name"` // lower-case wire form (JSON: base64)
	Types map[uint16]int `json:"types"`
	Any   int            `json:"any"`
	Other int            `json:"other"`
	Nx    int            `json:"nx"`
}

// zone is what Python writes to zone.json (dnsprobe/nameserver/goengine.py: compile_zone).
type zone struct {
	Answers []encoded         `json:"answers"`
	Nodes   []node            `json:"nodes"`
	Nothing int               `json:"nothing"`
	QTypes  map[uint16]string `json:"qtypes"`
	Rcodes  map[uint16]string `json:"rcodes"`

	index map[string]*node // by Name
}

// indexNodes builds the lookup map and checks every answer index, so a bad zone.json fails at start.
func (z *zone) indexNodes() error {
	check := func(i int) error {
		if i < 0 || i >= len(z.Answers) {
			return fmt.Errorf("answer index %d out of range (%d answers)", i, len(z.Answers))
		}
		return nil
	}
	z.index = make(map[string]*node, len(z.Nodes))
	for i := range z.Nodes {
		n := &z.Nodes[i]
		for _, a := range n.Types {
			if err := check(a); err != nil {
				return err
			}
		}
		for _, a := range []int{n.Any, n.Other, n.Nx} {
			if err := check(a); err != nil {
				return err
			}
		}
		z.index[string(n.Name)] = n
	}
	return check(z.Nothing)
}

// query is one parsed question.
type query struct {
	id, flags     uint16
	qname         []byte // wire form as received
	offsets       []int  // where each label starts in qname, the root label last
	qtype, qclass uint16
	question      []byte // the question section as received, echoed back
	edns          int    // advertised UDP payload size; -1 without an OPT record
	ednsVersion   uint8
}

func (q *query) udpLimit() int {
	if q.edns < 0 {
		return 512
	}
	return min(max(512, q.edns), ednsSize)
}

// badQuery is a packet that gets no normal answer: reply is what to send (nil: nothing).
type badQuery struct {
	id      int // -1: no ID (too short to have one)
	reply   []byte
	outcome string
}

func (b *badQuery) Error() string { return b.outcome }

func header(id, flags, qd, an, ns, ar uint16) []byte {
	h := make([]byte, 12, 512)
	binary.BigEndian.PutUint16(h[0:], id)
	binary.BigEndian.PutUint16(h[2:], flags)
	binary.BigEndian.PutUint16(h[4:], qd)
	binary.BigEndian.PutUint16(h[6:], an)
	binary.BigEndian.PutUint16(h[8:], ns)
	binary.BigEndian.PutUint16(h[10:], ar)
	return h
}

func formerr(id, flags uint16) *badQuery {
	reply := header(id, flagQR|(flags&(flagOpcode|flagRD))|rcodeFormerr, 0, 0, 0, 0)
	return &badQuery{int(id), reply, "formerr"}
}

// parseQuery mirrors wire.parse_query: the same checks in the same order, the same outcomes.
func parseQuery(data []byte, z *zone) (*query, *badQuery) {
	size := len(data)
	if size < 12 {
		return nil, &badQuery{-1, nil, "drop"}
	}
	id := binary.BigEndian.Uint16(data[0:])
	flags := binary.BigEndian.Uint16(data[2:])
	qdcount := binary.BigEndian.Uint16(data[4:])
	records := int(binary.BigEndian.Uint16(data[6:])) + int(binary.BigEndian.Uint16(data[8:])) +
		int(binary.BigEndian.Uint16(data[10:]))
	answerAndAuthority := int(binary.BigEndian.Uint16(data[6:])) + int(binary.BigEndian.Uint16(data[8:]))
	if flags&flagQR != 0 {
		return nil, &badQuery{int(id), nil, "drop"} // never answer a response
	}
	if flags&flagOpcode != 0 {
		reply := header(id, flagQR|(flags&(flagOpcode|flagRD))|rcodeNotimp, 0, 0, 0, 0)
		return nil, &badQuery{int(id), reply, z.rcodeText(rcodeNotimp)}
	}
	if qdcount != 1 {
		return nil, formerr(id, flags)
	}
	pos := 12
	offsets := make([]int, 0, 8)
	for {
		if pos >= size {
			return nil, formerr(id, flags)
		}
		length := int(data[pos])
		offsets = append(offsets, pos-12)
		if length == 0 {
			break
		}
		if length > 63 { // a compression pointer (nothing precedes the question) or an extended label
			return nil, formerr(id, flags)
		}
		pos += length + 1
	}
	pos++
	if pos-12 > maxNameLen || pos+4 > size {
		return nil, formerr(id, flags)
	}
	q := &query{id: id, flags: flags, qname: data[12:pos], offsets: offsets, edns: -1}
	q.qtype = binary.BigEndian.Uint16(data[pos:])
	q.qclass = binary.BigEndian.Uint16(data[pos+2:])
	pos += 4
	q.question = data[12:pos]

	for index := 0; index < records; index++ {
		ownerIsRoot := pos < size && data[pos] == 0
		for {
			if pos >= size {
				return nil, formerr(id, flags)
			}
			length := int(data[pos])
			if length >= 0xC0 {
				pos += 2 // a pointer ends the name; never followed, so it cannot loop
				break
			}
			if length > 63 {
				return nil, formerr(id, flags)
			}
			pos += length + 1
			if length == 0 {
				break
			}
		}
		if pos+10 > size {
			return nil, formerr(id, flags)
		}
		rtype := binary.BigEndian.Uint16(data[pos:])
		rclass := binary.BigEndian.Uint16(data[pos+2:])
		ttl := binary.BigEndian.Uint32(data[pos+4:])
		pos += 10 + int(binary.BigEndian.Uint16(data[pos+8:]))
		if pos > size {
			return nil, formerr(id, flags)
		}
		if rtype == typeOPT {
			// RFC 6891 §6.1.1: one OPT, in the additional section, owned by the root.
			if q.edns >= 0 || index < answerAndAuthority || !ownerIsRoot {
				return nil, formerr(id, flags)
			}
			q.edns = int(rclass)
			q.ednsVersion = uint8(ttl >> 16)
		}
	}
	return q, nil
}

// optRecord is our OPT: root owner, our payload size, the extended rcode's upper bits, version 0.
func optRecord(extendedRcode uint8) []byte {
	return []byte{0, 0, typeOPT, ednsSize >> 8, ednsSize & 0xFF, extendedRcode, 0, 0, 0, 0, 0}
}

var (
	opt        = optRecord(0)
	badversOpt = optRecord(rcodeBadvers >> 4)
)

// respond mirrors wire.Responder.respond: the reply and its rcode, truncated beyond limit bytes.
func (z *zone) respond(q *query, limit int) ([]byte, uint16) {
	if q.qclass != 1 && q.qclass != typeANY {
		return z.errorReply(q, rcodeRefused), rcodeRefused
	}
	if q.ednsVersion != 0 {
		flags := flagQR | flagRA | (q.flags & copied)
		reply := append(header(q.id, flags, 1, 0, 0, 1), q.question...)
		return append(reply, badversOpt...), rcodeBadvers
	}
	if q.qtype == typeOPT {
		return z.errorReply(q, rcodeFormerr), rcodeFormerr
	}
	if q.qtype >= 249 && q.qtype <= 254 { // TKEY TSIG IXFR AXFR MAILB MAILA
		return z.errorReply(q, rcodeNotimp), rcodeNotimp
	}
	answer := &z.Answers[z.lookup(q)]
	var optRR []byte
	var arcount uint16
	if q.edns >= 0 {
		optRR, arcount = opt, 1
	}
	flags := answerBits | (q.flags & copied) | answer.Rcode
	if 12+len(q.question)+len(answer.Body)+len(optRR) > limit {
		// RFC 2181 §9: set TC and send what fits; the question only, as most servers do.
		reply := append(header(q.id, flags|flagTC, 1, 0, 0, arcount), q.question...)
		return append(reply, optRR...), answer.Rcode
	}
	reply := append(header(q.id, flags, 1, answer.Ancount, answer.Nscount, arcount), q.question...)
	reply = append(reply, answer.Body...)
	return append(reply, optRR...), answer.Rcode
}

// errorReply: the rcode, the question and no records (REFUSED, NOTIMP, FORMERR).
func (z *zone) errorReply(q *query, rcode uint16) []byte {
	return z.errorReplyWith(q, rcode, 0, false)
}

// errorReplyWith is Responder.error with its options: header bits cleared, no OPT record.
func (z *zone) errorReplyWith(q *query, rcode uint16, flagsClear uint16, noOpt bool) []byte {
	flags := (flagQR | flagRA | (q.flags & copied) | (rcode & 0xF)) &^ flagsClear
	if q.edns < 0 || noOpt {
		return append(header(q.id, flags, 1, 0, 0, 0), q.question...)
	}
	reply := append(header(q.id, flags, 1, 0, 0, 1), q.question...)
	if rcode >= 16 { // the upper bits go in the OPT record
		return append(reply, optRecord(uint8(rcode>>4))...)
	}
	return append(reply, opt...)
}

// lookup: the node for the name, else the wildcard below its closest encloser, else that encloser's
// NXDOMAIN; then the node's answer for the type.
func (z *zone) lookup(q *query) int {
	var key [maxNameLen]byte
	lower := key[:len(q.qname)]
	for i, c := range q.qname { // DNS compares ASCII letters only; label lengths are below 'A'
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	found, ok := z.index[string(lower)]
	if !ok {
		matched := false
		for _, offset := range q.offsets[1:] {
			suffix := lower[offset:]
			encloser, exists := z.index[string(suffix)]
			if !exists {
				continue
			}
			var wild [maxNameLen + 2]byte // "*." + the encloser, built on the stack: no allocation per query
			wildcard, exists := z.index[string(append(append(wild[:0], 1, '*'), suffix...))]
			if !exists {
				return encloser.Nx
			}
			found, matched = wildcard, true
			break
		}
		if !matched {
			return z.Nothing
		}
	}
	if q.qtype == typeANY {
		return found.Any
	}
	if index, ok := found.Types[q.qtype]; ok {
		return index
	}
	return found.Other
}

func (z *zone) rcodeText(rcode uint16) string {
	if text, ok := z.Rcodes[rcode]; ok {
		return text
	}
	return strconv.Itoa(int(rcode))
}
