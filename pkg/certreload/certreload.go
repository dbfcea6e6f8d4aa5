// Package certreload serves a TLS certificate from files that may be
// replaced while the process runs (cert-manager, a Kubernetes Secret
// update): each new handshake checks, at most once per CheckInterval,
// whether the files changed and then loads them again. A failed reload
// (a half-written file, a key that does not match) keeps the last good
// certificate and is logged, so a bad rotation never takes TLS down.
package certreload

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval bounds how often the files are looked at.
const CheckInterval = time.Second

// Reloader holds the current certificate of a certificate and key file.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   stamp
	checked time.Time
}

// stamp identifies a version of the two files.
type stamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

// New loads the pair once; an error here is a configuration error.
func New(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger, now: time.Now}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = &cert, st, r.now()
	return r, nil
}

func (r *Reloader) stat() (stamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return stamp{}, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return stamp{}, err
	}
	return stamp{certMod: c.ModTime(), keyMod: k.ModTime(), certSize: c.Size(), keySize: k.Size()}, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= CheckInterval {
		r.checked = now
		r.reload()
	}
	if r.cert == nil {
		return nil, errors.New("certreload: no certificate")
	}
	return r.cert, nil
}

// reload loads the files again if they changed; r.mu is held.
func (r *Reloader) reload() {
	st, err := r.stat()
	if err != nil {
		r.logger.Warn("TLS certificate files unreadable; keeping the loaded one", "cert", r.certFile, "err", err)
		return
	}
	if st == r.stamp {
		return
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// Often a rotation caught between its two writes: the next check
		// sees the finished pair.
		r.logger.Warn("TLS certificate reload failed; keeping the loaded one", "cert", r.certFile, "err", err)
		return
	}
	r.cert, r.stamp = &cert, st
	r.logger.Info("TLS certificate reloaded", "cert", r.certFile)
}

// ServerConfig returns a TLS 1.2+ server configuration serving r's
// certificate.
func (r *Reloader) ServerConfig() *tls.Config {
	return &tls.Config{GetCertificate: r.GetCertificate, MinVersion: tls.VersionTLS12}
}

// Load is New for a gateway's flags: it names the flag at fault.
func Load(flagPrefix, certFile, keyFile string, logger *slog.Logger) (*tls.Config, error) {
	r, err := New(certFile, keyFile, logger)
	if err != nil {
		return nil, fmt.Errorf("-%s.tls.cert-file: %w", flagPrefix, err)
	}
	return r.ServerConfig(), nil
}
