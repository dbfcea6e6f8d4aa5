package main

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
)

// dialProxied connects to addr and sends a PROXY v2 header naming src as
// the client; it returns the connection and its first line ("" at EOF).
func dialProxied(t *testing.T, addr string, src *net.TCPAddr) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
		SourceAddr: src, DestinationAddr: c.RemoteAddr()}
	if _, err := h.WriteTo(c); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	l, _ := r.ReadString('\n')
	return c, r, strings.TrimRight(l, "\r\n")
}

// TestProxyProtocol: behind a trusted load balancer the client address of
// the PROXY header is the one the gateway limits, logs and throttles by;
// from an untrusted address a connection is refused.
func TestProxyProtocol(t *testing.T) {
	metaAddr, blobAddr, imapAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	common := []string{"-target=all", "-data-dir=" + t.TempDir(),
		"-metadata.listen-address=" + metaAddr, "-metadata.address=" + metaAddr,
		"-blob.listen-address=" + blobAddr, "-blob.address=" + blobAddr,
		"-imap.listen-address=" + imapAddr, "-pop3.listen-address=" + freeAddr(t),
		"-imap.max-connections-per-ip=1", "-log.level=info",
		// The clients are not loopback ones any more: allow LOGIN without TLS.
		"-imap.allow-plaintext-auth=true",
		"-server.proxy-protocol.trusted-cidrs=10.0.0.0/8, 127.0.0.1/32"}
	p := startProc(t, "all", nil, common...)

	client := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 40000}
	c, r, greeting := dialProxied(t, imapAddr, client)
	if !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("greeting through a trusted proxy: %q", greeting)
	}
	// The limit counts the header's address: a second connection for
	// 203.0.113.7 is over it, one for another client is not.
	if _, _, got := dialProxied(t, imapAddr, client); !strings.HasPrefix(got, "* BYE [UNAVAILABLE] Too many connections") {
		t.Fatalf("second connection for the same client: %q", got)
	}
	if _, _, got := dialProxied(t, imapAddr, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 8), Port: 40000}); !strings.HasPrefix(got, "* OK") {
		t.Fatalf("connection for another client: %q", got)
	}
	// A failed login is logged and throttled by the header's address.
	if _, err := c.Write([]byte("a LOGIN nobody@example.com wrong\r\n")); err != nil {
		t.Fatal(err)
	}
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "a NO") {
		t.Fatalf("LOGIN: %q", l)
	}
	n, err := grpcmeta.New(dial(t, metaAddr)).Counter(context.Background(), "authfail/ip/203.0.113.7")
	if err != nil || n != 1 {
		t.Fatalf("auth failures counted for 203.0.113.7: %d, %v\n%s", n, err, p.out.String())
	}
	if out := p.out.String(); !strings.Contains(out, "remote=203.0.113.7:40000") {
		t.Fatalf("the log does not name the client of the PROXY header:\n%s", out)
	}

	// Without a PROXY header, even from a trusted address: refused.
	plain, err := net.Dial("tcp", imapAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_ = plain.SetReadDeadline(time.Now().Add(30 * time.Second))
	if l, _ := bufio.NewReader(plain).ReadString('\n'); l != "" {
		t.Fatalf("connection without a header got %q", l)
	}
}

// TestProxyProtocolUntrusted: a PROXY header from an address outside the
// trusted CIDRs is refused before any greeting.
func TestProxyProtocolUntrusted(t *testing.T) {
	metaAddr, blobAddr, imapAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startProc(t, "all", nil, "-target=all", "-data-dir="+t.TempDir(),
		"-metadata.listen-address="+metaAddr, "-metadata.address="+metaAddr,
		"-blob.listen-address="+blobAddr, "-blob.address="+blobAddr,
		"-imap.listen-address="+imapAddr, "-pop3.listen-address="+freeAddr(t),
		"-server.proxy-protocol.trusted-cidrs=10.0.0.0/8")
	if _, _, got := dialProxied(t, imapAddr, &net.TCPAddr{IP: net.IPv4(203, 0, 113, 7), Port: 40000}); got != "" {
		t.Fatalf("a header from an untrusted address got %q", got)
	}
}
