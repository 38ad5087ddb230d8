// Command goserver is the Go engine of dnsprobe's embedded nameserver: records and fault rules at full
// speed.
//
// Python does everything but the per-packet work. It binds the sockets (and checks they are on
// loopback), passes them as inherited file descriptors, opens the query log, encodes every answer the
// zone can give and compiles every fault rule into one JSON file (dnsprobe/nameserver/goengine.py and
// faults.py). This program parses each query, asks the socket's fault rules (faults.go), picks the
// pre-encoded answer, sends it (now or after a delay) and logs the packet, the way the Python engine
// does, without an interpreter between the packets.
//
// It prints "ready" on stdout once it serves, logs problems to stderr, and exits 0 on SIGTERM or SIGINT
// after writing out the query log.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

const tcpIdle = 10 * time.Second // an idle TCP connection is closed after this (as the Python engine)

// config is the JSON file named by -config.
type config struct {
	Zone     zone          `json:"zone"`
	Faults   []ruleSetJSON `json:"faults"` // one rule set per server; sockets name theirs
	Sockets  []socket      `json:"sockets"`
	QueryLog string        `json:"querylog"` // "" for none
	Packets  string        `json:"packets"`  // the raw packet log for --pcap, "" for none
}

type socket struct {
	FD    int    `json:"fd"`
	Proto string `json:"proto"` // "udp" or "tcp" (already listening)
	Rules *int   `json:"rules"` // index into config.Faults; absent: no fault rules
	// udp: windows [start_s, end_s] (seconds after "ready") during which the socket is closed, then bound
	// again on the same address: clients get ICMP port unreachable, as while a node-local cache restarts.
	Gaps [][2]float64 `json:"gaps"`
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dnsprobe-goserver: "+format+"\n", args...)
}

func main() {
	configPath := flag.String("config", "", "the JSON file goengine.py wrote")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "goroutines reading each UDP socket")
	flag.Parse()
	if err := run(*configPath, *workers); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

func run(configPath string, workers int) error {
	// Go when the process that started us goes (Linux: when its starting thread ends), so a SIGKILLed
	// `dnsprobe serve` does not leave its port answering.
	syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() == 1 {
		return errors.New("the process that started this one has already exited")
	}
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var cfg config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	z := &cfg.Zone
	if err := z.indexNodes(); err != nil {
		return fmt.Errorf("%s: %w", configPath, err)
	}
	var ql *queryLog
	if cfg.QueryLog != "" {
		if ql, err = openQueryLog(cfg.QueryLog, z.QTypes); err != nil {
			return err
		}
		defer ql.close()
	}
	var pl *packetLog
	if cfg.Packets != "" {
		if pl, err = openPacketLog(cfg.Packets); err != nil {
			return err
		}
		defer pl.close()
	}
	s := &server{zone: z, log: ql, pkts: pl, conns: map[net.Conn]struct{}{}}
	ruleSets := make([]*ruleSet, len(cfg.Faults))
	for i, spec := range cfg.Faults {
		if ruleSets[i], err = newRuleSet(spec); err != nil {
			return fmt.Errorf("%s: fault rules of server %d: %w", configPath, i+1, err)
		}
	}
	var gapped []gappedSocket
	for _, sock := range cfg.Sockets {
		var rules *ruleSet
		if sock.Rules != nil {
			if *sock.Rules < 0 || *sock.Rules >= len(ruleSets) {
				return fmt.Errorf("socket %d: rule set %d out of range (%d sets)", sock.FD, *sock.Rules, len(ruleSets))
			}
			rules = ruleSets[*sock.Rules]
		}
		file := os.NewFile(uintptr(sock.FD), fmt.Sprintf("%s socket %d", sock.Proto, sock.FD))
		if file == nil {
			return fmt.Errorf("file descriptor %d was not passed", sock.FD)
		}
		switch sock.Proto {
		case "udp":
			pc, err := net.FilePacketConn(file)
			if err != nil {
				return fmt.Errorf("fd %d: %w", sock.FD, err)
			}
			udp := pc.(*net.UDPConn)
			s.closers = append(s.closers, udp)
			for i := 0; i < max(1, workers); i++ {
				s.wg.Add(1)
				go s.serveUDP(udp, rules)
			}
			if len(sock.Gaps) > 0 {
				gapped = append(gapped, gappedSocket{udp, rules, sock.Gaps})
			}
		case "tcp":
			ln, err := net.FileListener(file)
			if err != nil {
				return fmt.Errorf("fd %d: %w", sock.FD, err)
			}
			s.closers = append(s.closers, ln)
			s.wg.Add(1)
			go s.serveTCP(ln, rules)
		default:
			return fmt.Errorf("socket %d: proto %q, want udp or tcp", sock.FD, sock.Proto)
		}
		file.Close() // the net package holds its own duplicate
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	ticker := time.NewTicker(flushInterval)
	defer ticker.Stop()
	for _, rules := range ruleSets {
		rules.restartClock() // time windows count from the moment every socket serves
	}
	started := time.Now()
	for _, g := range gapped {
		go s.gaps(g, started, max(1, workers))
	}
	fmt.Println("ready")
	for {
		select {
		case <-ticker.C:
			ql.flush()
			pl.flush()
		case <-stop:
			s.shutdown()
			return nil
		}
	}
}

type server struct {
	zone    *zone
	log     *queryLog
	pkts    *packetLog
	closers []io.Closer
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
}

// handle answers one packet as the Python engine's Nameserver._handle does: the reply (nil: none), the
// delay before it goes out and the pair it is swapped in (nil: it goes out as it is).
func (s *server) handle(data []byte, client netip.AddrPort, proto string, rules *ruleSet) ([]byte, time.Duration, *swapPair) {
	q, bad := parseQuery(data, s.zone)
	if bad != nil {
		s.log.record(proto, client, bad.id, nil, "", bad.outcome)
		return bad.reply, 0, nil
	}
	var act *action
	if rules != nil {
		act = rules.faultFor(q, proto, client)
	}
	if act == nil {
		limit := tcpLimit
		if proto == "udp" {
			limit = q.udpLimit()
		}
		reply, rcode := s.zone.respond(q, limit)
		s.log.record(proto, client, int(q.id), q, "", s.zone.rcodeText(rcode))
		return reply, 0, nil
	}
	reply, rcode := s.zone.apply(act, q, proto)
	outcome := "drop"
	if reply != nil {
		outcome = s.zone.rcodeText(rcode)
	}
	s.log.record(proto, client, int(q.id), q, act.fault, outcome)
	return reply, act.delay, act.swap
}

func (s *server) serveUDP(conn *net.UDPConn, rules *ruleSet) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	send := func(reply []byte, to netip.AddrPort) { // for swapped replies, whose address is another's
		s.pkts.add("udp", false, to, local, reply)
		conn.WriteToUDPAddrPort(reply, to)
	}
	for {
		n, client, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error queued on the socket: nothing to answer
		}
		s.pkts.add("udp", true, client, local, buf[:n])
		reply, delay, swap := s.handle(buf[:n], client, "udp", rules)
		if reply == nil {
			continue
		}
		if swap != nil {
			if swap.arrive(reply, client, send) {
				time.AfterFunc(swap.window, swap.release)
			}
			continue
		}
		sendUDP := func() {
			s.pkts.add("udp", false, client, local, reply) // logged when it leaves: a delay shows
			conn.WriteToUDPAddrPort(reply, client)         // a client that went away is not an error
		}
		if delay > 0 {
			time.AfterFunc(delay, sendUDP)
		} else {
			sendUDP()
		}
	}
}

func (s *server) serveTCP(ln net.Listener, rules *ruleSet) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of file descriptors, say: let some close
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn, rules)
	}
}

// serveConn: RFC 7766 framing, each message after a 2-byte length, several queries per connection.
func (s *server) serveConn(conn net.Conn, rules *ruleSet) {
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	client := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	reader := bufio.NewReader(conn)
	var size [2]byte
	var writing sync.Mutex // delayed replies are written from their timers
	send := func(framed []byte) error {
		writing.Lock()
		defer writing.Unlock()
		_, err := conn.Write(framed)
		return err
	}
	for {
		conn.SetDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(reader, size[:]); err != nil {
			return
		}
		message := make([]byte, binary.BigEndian.Uint16(size[:]))
		if _, err := io.ReadFull(reader, message); err != nil {
			return
		}
		s.pkts.add("tcp", true, client, local, message)
		reply, delay, _ := s.handle(message, client, "tcp", rules) // pairs are UDP only
		if reply == nil {
			continue
		}
		framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reply)), uint16(len(reply)))
		framed = append(framed, reply...)
		if delay > 0 {
			time.AfterFunc(delay, func() {
				s.pkts.add("tcp", false, client, local, reply)
				send(framed) // a connection closed by then is not an error
			})
			continue
		}
		s.pkts.add("tcp", false, client, local, reply)
		if err := send(framed); err != nil {
			return
		}
	}
}

func (s *server) shutdown() {
	s.mu.Lock()
	s.closing = true
	for conn := range s.conns {
		conn.Close()
	}
	closers := append([]io.Closer(nil), s.closers...) // a socket bound again after a gap is among them
	s.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
	s.wg.Wait()
}

type gappedSocket struct {
	conn  *net.UDPConn
	rules *ruleSet
	gaps  [][2]float64
}

// gaps closes a UDP socket for each window and binds a new one on the same address after it.
func (s *server) gaps(g gappedSocket, started time.Time, workers int) {
	addr := g.conn.LocalAddr().(*net.UDPAddr)
	conn := g.conn
	at := func(seconds float64) time.Duration {
		return time.Until(started.Add(time.Duration(seconds * float64(time.Second))))
	}
	for _, gap := range g.gaps {
		time.Sleep(at(gap[0]))
		conn.Close() // its readers return
		time.Sleep(at(gap[1]))
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return
		}
		next, err := net.ListenUDP("udp", addr)
		if err != nil {
			s.mu.Unlock()
			logf("cannot bind %s again after a gap: %v", addr, err)
			return
		}
		conn = next
		s.closers = append(s.closers, conn)
		for i := 0; i < workers; i++ {
			s.wg.Add(1)
			go s.serveUDP(conn, g.rules)
		}
		s.mu.Unlock()
	}
}
