package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// echoCmd serves TCP echo on -listen until SIGTERM or SIGINT.
func echoCmd(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	addr := fs.String("listen", "", "IP:PORT")
	_ = fs.Parse(args)
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return l.Close()
}

// dialCmd times connection setup to each target in turn, connection by
// connection (A B A B …, so that a drift of the machine's speed hits both
// alike): the connect (the handshake, through the NAT for a Service IP),
// and the connect plus one byte echoed back.
func dialCmd(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ExitOnError)
	n := fs.Int("n", 1000, "connections to each target per round")
	rounds := fs.Int("rounds", 3, "rounds")
	_ = fs.Parse(args)
	targets := fs.Args()
	if len(targets) == 0 || *n < 1 || *rounds < 1 {
		return errors.New("usage: dial [-n N] [-rounds R] IP:PORT...")
	}
	// Wait for the servers, then warm up (ARP, conntrack, caches).
	for _, t := range targets {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, _, err := dialOnce(t)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no echo from %s after 10 s: %w", t, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for range 50 {
			if _, _, err := dialOnce(t); err != nil {
				return err
			}
		}
	}
	conn := make([][]float64, len(targets)) // every connect, µs
	echo := make([][]float64, len(targets)) // every connect + echo, µs
	rmed := make([][]float64, len(targets)) // each round's median connect, µs
	for range *rounds {
		round := make([][]float64, len(targets))
		for range *n {
			for k, t := range targets {
				c, e, err := dialOnce(t)
				if err != nil {
					return err
				}
				conn[k] = append(conn[k], us(c))
				echo[k] = append(echo[k], us(e))
				round[k] = append(round[k], us(c))
			}
		}
		for k := range targets {
			rmed[k] = append(rmed[k], summarize(round[k]).med)
		}
	}
	fmt.Printf("%-22s %7s %13s %13s %15s %15s   %s\n", "target", "conns", "connect p50", "connect p99", "+1 echo p50", "+1 echo p99", "round medians of connect: min / median / max")
	for k, t := range targets {
		c, e, r := summarize(conn[k]), summarize(echo[k]), summarize(rmed[k])
		fmt.Printf("%-22s %7d %10.1f µs %10.1f µs %12.1f µs %12.1f µs   %s µs\n", t, c.n, c.med, c.p99, e.med, e.p99, r.mmm("%.1f"))
	}
	if len(targets) == 2 {
		a, b := summarize(conn[0]).med, summarize(conn[1]).med
		fmt.Printf("connect p50 %s / %s: %.3f (goal: within 10%%, ≤ 1.10)\n", targets[0], targets[1], a/b)
	}
	return nil
}

// dialOnce connects to t, sends one byte and reads it back: how long the
// connect took, and the whole.
func dialOnce(t string) (time.Duration, time.Duration, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", t, 2*time.Second)
	if err != nil {
		return 0, 0, err
	}
	connected := time.Since(start)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := []byte{'x'}
	if _, err := c.Write(buf); err != nil {
		return 0, 0, err
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return 0, 0, err
	}
	return connected, time.Since(start), nil
}
