package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The chaos stack's network: every link between processes goes through a
// toxiproxy proxy run in the test process (the library, not its HTTP API),
// so that the fault loop can slow, stall, reset and cut it:
//
//	gw-meta-<i>   gateways (and nothing else) -> metadata-<i>
//	gw-blob-<i>   gateways and metadata processes -> blob-<i>
//	meta-redis    metadata processes -> Redis
//	blob-s3       blob processes -> the S3 server
//
// The test's own clients (workers, mailctl, the checker) dial the real
// addresses: only the system under test crosses the faults.

// chaosNet holds the proxies by link name.
type chaosNet struct {
	t       *testing.T
	server  *toxiproxy.ApiServer
	proxies map[string]*toxiproxy.Proxy
	names   []string // in creation order, for seeded choices
}

func newChaosNet(t *testing.T) *chaosNet {
	t.Helper()
	// Some toxics log through zerolog's global logger at trace level,
	// which would fill the test's output.
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	return &chaosNet{t: t, server: srv, proxies: map[string]*toxiproxy.Proxy{}}
}

// link starts a proxy to upstream and returns the address to dial instead.
func (n *chaosNet) link(name, upstream string) string {
	n.t.Helper()
	p := toxiproxy.NewProxy(n.server, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		n.t.Fatalf("chaos: proxy %s -> %s: %v", name, upstream, err)
	}
	n.t.Cleanup(p.Stop)
	n.proxies[name] = p
	n.names = append(n.names, name)
	return p.Listen
}

// netFaultKinds are the network faults, each healed when it ends.
var netFaultKinds = []string{"net-latency", "net-timeout", "net-reset", "net-slow", "net-cut"}

// inject applies one seeded network fault to one link for about down and
// heals it. It returns the fault's kind, its target and what it did.
func (n *chaosNet) inject(rng *rand.Rand) (kind, target, what string, down time.Duration) {
	n.t.Helper()
	target = n.names[rng.IntN(len(n.names))]
	p := n.proxies[target]
	kind = netFaultKinds[rng.IntN(len(netFaultKinds))]
	down = time.Duration(1000+rng.IntN(2500)) * time.Millisecond
	var toxic string
	switch kind {
	case "net-latency": // every byte late, both ways
		lat := 100 + rng.IntN(900)
		what = fmt.Sprintf("latency %dms ±%dms", lat, lat/4)
		toxic = fmt.Sprintf(`"type":"latency","attributes":{"latency":%d,"jitter":%d}`, lat, lat/4)
	case "net-timeout": // connections stall, then are closed
		what = "stall, then close"
		toxic = fmt.Sprintf(`"type":"timeout","attributes":{"timeout":%d}`, down.Milliseconds())
	case "net-reset": // connections reset by peer
		what = "reset by peer"
		toxic = `"type":"reset_peer","attributes":{"timeout":0}`
	case "net-slow": // a thin pipe
		kbs := 16 + rng.IntN(112)
		what = fmt.Sprintf("bandwidth %d KB/s", kbs)
		toxic = fmt.Sprintf(`"type":"bandwidth","attributes":{"rate":%d}`, kbs)
	case "net-cut": // the link is gone: connections closed, new ones refused
		what = "cut"
		p.Stop()
		time.Sleep(down)
		n.restart(p)
		return kind, target, what, down
	}
	streams := []string{"downstream", "upstream"}
	if kind == "net-reset" || kind == "net-timeout" {
		streams = streams[:1] // one direction is enough to break the connection
	}
	for _, stream := range streams {
		js := fmt.Sprintf(`{"name":"chaos-%s","stream":%q,"toxicity":1,%s}`, stream, stream, toxic)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			n.t.Fatalf("chaos: toxic %s on %s: %v", js, target, err)
		}
	}
	time.Sleep(down)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, stream := range streams {
		if err := p.Toxics.RemoveToxic(ctx, "chaos-"+stream); err != nil {
			n.t.Fatalf("chaos: remove toxic from %s: %v", target, err)
		}
	}
	return kind, target, what, down
}

// restart starts a stopped proxy on its old address again, retrying while
// the port is still held by closing connections.
func (n *chaosNet) restart(p *toxiproxy.Proxy) {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.Start()
		if err == nil || err == toxiproxy.ErrProxyAlreadyStarted {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("chaos: restart proxy %s on %s: %v", p.Name, p.Listen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// heal removes every toxic and starts every stopped proxy; the final
// check runs on a clean network.
func (n *chaosNet) heal() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range n.names {
		p := n.proxies[name]
		p.Toxics.ResetToxics(ctx)
		if !p.Enabled {
			n.restart(p)
		}
	}
}
