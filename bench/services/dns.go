package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/kelpie-dev/kelpie/netplan"
	"github.com/kelpie-dev/kelpie/runtime/dnsserver"
)

// clusterDomain is the bench's cluster domain.
const clusterDomain = "cluster.local"

// externalZone is where the names a DNS server forwards live (the
// baseline resolver has them).
const externalZone = "bench.test"

// svcName and extName are the i-th name of each kind.
func svcName(i int) string { return fmt.Sprintf("svc-%05d.default.svc.%s", i, clusterDomain) }
func extName(i int) string { return fmt.Sprintf("ext-%05d.%s", i, externalZone) }

// dnsCmd runs kelpie's DNS server with the names of the bench's Services
// until SIGTERM or SIGINT; -hosts writes, instead, a hosts file of the
// same names (and of the external ones) for the baseline resolver.
func dnsCmd(args []string) error {
	fs := flag.NewFlagSet("dns", flag.ExitOnError)
	listen := fs.String("listen", "", "IP:PORT")
	nSvc := fs.Int("services", 1000, "Services")
	upstream := fs.String("upstream", "", "IP:PORT to forward other names to")
	hosts := fs.String("hosts", "", "write a hosts file of the names to this path and exit")
	_ = fs.Parse(args)
	svcs := services(*nSvc, 1, netplan.Service{})
	if *hosts != "" {
		var b strings.Builder
		for i := range svcs {
			fmt.Fprintf(&b, "%s %s\n", svcs[i].ClusterIP, svcName(i))
			fmt.Fprintf(&b, "%s %s\n", svcs[i].ClusterIP, extName(i))
		}
		return os.WriteFile(*hosts, []byte(b.String()), 0o644)
	}
	cfg := dnsserver.Config{Addr: *listen, Clients: []netip.Prefix{clusterCIDR}, ResolvConf: os.DevNull}
	if *upstream != "" {
		cfg.Upstreams = []string{*upstream}
	}
	s, err := dnsserver.New(cfg)
	if err != nil {
		return err
	}
	s.SetNames(netplan.NewNames(svcs, clusterDomain))
	if err := s.Start(); err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return s.Close()
}

// dnsqCmd measures queries per second against each target (LABEL=IP:PORT
// or LABEL=IP:PORT=ext for the external names), round after round, the
// targets in turn: -workers clients each sending one A query, waiting for
// its answer, sending the next, over the names of -services Services.
func dnsqCmd(args []string) error {
	fs := flag.NewFlagSet("dnsq", flag.ExitOnError)
	dur := fs.Duration("duration", 3*time.Second, "length of one measurement")
	rounds := fs.Int("rounds", 3, "rounds")
	workers := fs.Int("workers", 4, "concurrent clients")
	nSvc := fs.Int("services", 1000, "names to cycle through")
	_ = fs.Parse(args)
	type target struct{ label, addr, kind string }
	var targets []target
	for _, a := range fs.Args() {
		parts := strings.Split(a, "=")
		if len(parts) < 2 {
			return fmt.Errorf("target %q: want LABEL=IP:PORT[=ext]", a)
		}
		t := target{label: parts[0], addr: parts[1], kind: "svc"}
		if len(parts) > 2 {
			t.kind = parts[2]
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return errors.New("no targets")
	}
	qps := make([][]float64, len(targets))
	lat := make([][]float64, len(targets))
	for _, t := range targets { // each answers before the rounds start
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, _, err := queries(t.addr, t.kind, 1, *nSvc, 300*time.Millisecond)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: no answers after 10 s: %w", t.label, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for range *rounds {
		for k, t := range targets {
			n, l, err := queries(t.addr, t.kind, *workers, *nSvc, *dur)
			if err != nil {
				return fmt.Errorf("%s: %w", t.label, err)
			}
			qps[k] = append(qps[k], float64(n)/dur.Seconds())
			lat[k] = append(lat[k], l)
		}
	}
	fmt.Printf("%-52s %6s  %-36s %s\n", "resolver (queries)", "rounds", "queries/s min / median / max", "latency p50 (µs, median of rounds)")
	for k, t := range targets {
		fmt.Printf("%-52s %6d  %-36s %.0f\n", t.label+" ("+t.kind+")", *rounds, summarize(qps[k]).mmm("%.0f"), summarize(lat[k]).med)
	}
	return nil
}

// queries runs workers clients against addr for d: the answers received
// and their median latency (µs). A query unanswered, or answered other
// than NOERROR with an answer, fails the run.
func queries(addr, kind string, workers, names int, d time.Duration) (int, float64, error) {
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
		lats  []float64
	)
	end := time.Now().Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			co, err := dns.Dial("udp", addr)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer co.Close()
			var mine []float64
			for i := w; time.Now().Before(end); i += workers {
				name := svcName(i % names)
				if kind == "ext" {
					name = extName(i % names)
				}
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(name), dns.TypeA)
				_ = co.SetDeadline(time.Now().Add(time.Second))
				t := time.Now()
				if err := co.WriteMsg(m); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				r, err := co.ReadMsg()
				if err == nil && (r.Id != m.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0) {
					err = fmt.Errorf("%s: answer %s with %d records", name, dns.RcodeToString[r.Rcode], len(r.Answer))
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if len(mine) < 100000 {
					mine = append(mine, us(time.Since(t)))
				}
				total.Add(1)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, 0, err
	}
	return int(total.Load()), summarize(lats).med, nil
}
