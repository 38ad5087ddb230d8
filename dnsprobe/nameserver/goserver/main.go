// Command goserver is the Go engine of dnsprobe's embedded nameserver: the records-only fast path.
//
// Python does everything but the per-packet work. It binds the sockets (and checks they are on
// loopback), passes them as inherited file descriptors, opens the query log, and encodes every answer
// the zone can give into one JSON file (dnsprobe/nameserver/goengine.py). This program parses each
// query, picks the pre-encoded answer, sends it and logs the packet, the way the Python engine's hot path
// does, without an interpreter between the packets. Fault rules stay in the Python engine.
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
	Zone     zone     `json:"zone"`
	Sockets  []socket `json:"sockets"`
	QueryLog string   `json:"querylog"` // "" for none
	Packets  string   `json:"packets"`  // the raw packet log for --pcap, "" for none
}

type socket struct {
	FD    int    `json:"fd"`
	Proto string `json:"proto"` // "udp" or "tcp" (already listening)
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
	for _, sock := range cfg.Sockets {
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
				go s.serveUDP(udp)
			}
		case "tcp":
			ln, err := net.FileListener(file)
			if err != nil {
				return fmt.Errorf("fd %d: %w", sock.FD, err)
			}
			s.closers = append(s.closers, ln)
			s.wg.Add(1)
			go s.serveTCP(ln)
		default:
			return fmt.Errorf("socket %d: proto %q, want udp or tcp", sock.FD, sock.Proto)
		}
		file.Close() // the net package holds its own duplicate
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	ticker := time.NewTicker(flushInterval)
	defer ticker.Stop()
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

// handle answers one packet as the Python engine's Nameserver._handle does without a fault rule.
func (s *server) handle(data []byte, client netip.AddrPort, proto string) []byte {
	q, bad := parseQuery(data, s.zone)
	if bad != nil {
		s.log.record(proto, client, bad.id, nil, bad.outcome)
		return bad.reply
	}
	limit := tcpLimit
	if proto == "udp" {
		limit = q.udpLimit()
	}
	reply, rcode := s.zone.respond(q, limit)
	s.log.record(proto, client, int(q.id), q, s.zone.rcodeText(rcode))
	return reply
}

func (s *server) serveUDP(conn *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	for {
		n, client, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // an ICMP error queued on the socket: nothing to answer
		}
		s.pkts.add("udp", true, client, local, buf[:n])
		if reply := s.handle(buf[:n], client, "udp"); reply != nil {
			s.pkts.add("udp", false, client, local, reply)
			conn.WriteToUDPAddrPort(reply, client) // a client that went away is not an error
		}
	}
}

func (s *server) serveTCP(ln net.Listener) {
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
		go s.serveConn(conn)
	}
}

// serveConn: RFC 7766 framing, each message after a 2-byte length, several queries per connection.
func (s *server) serveConn(conn net.Conn) {
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
		reply := s.handle(message, client, "tcp")
		if reply == nil {
			continue
		}
		s.pkts.add("tcp", false, client, local, reply)
		framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reply)), uint16(len(reply)))
		if _, err := conn.Write(append(framed, reply...)); err != nil {
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
	s.mu.Unlock()
	for _, c := range s.closers {
		c.Close()
	}
	s.wg.Wait()
}
