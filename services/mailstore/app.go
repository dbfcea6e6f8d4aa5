package mailstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/gwmetrics"
	"github.com/mailstore/mailstore/pkg/ingest"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/grpcmeta"
	"github.com/mailstore/mailstore/services/blobsvc"
	"github.com/mailstore/mailstore/services/imapgw"
	"github.com/mailstore/mailstore/services/lmtpgw"
	"github.com/mailstore/mailstore/services/metasvc"
	"github.com/mailstore/mailstore/services/pop3gw"
)

// shutdownTimeout bounds the graceful stop of gRPC servers; long-lived
// Watch streams are cut after it.
const shutdownTimeout = 10 * time.Second

// App is one process of mailstore running the chosen targets.
type App struct {
	cfg      Config
	logger   *slog.Logger
	registry *prometheus.Registry
	grpcMet  *grpcMetrics

	metaStore meta.Store
	blobStore blob.Store
	metaConn  *grpc.ClientConn
	blobConn  *grpc.ClientConn
	metaCli   *grpcmeta.Client
	blobCli   *grpcblob.Client

	// runs are the long-running parts, started by Run.
	runs    []namedRun
	closers []func() error
	ready   atomic.Bool
	// Addrs holds the bound listen addresses by module name.
	Addrs map[string]net.Addr
	// DemoLogin and DemoPassword are set when -demo-account is.
	DemoLogin, DemoPassword string
}

type namedRun struct {
	name string
	run  func(ctx context.Context) error
}

// New checks cfg and initializes every module the targets need, in
// dependency order: stores are opened and listeners bound, but nothing is
// served until Run.
func New(cfg Config, logger *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	targets, _ := ParseTargets(cfg.Target)
	a := &App{cfg: cfg, logger: logger, registry: prometheus.NewRegistry(), Addrs: map[string]net.Addr{}}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a.grpcMet = newGRPCMetrics(a.registry)
	stopTracing, err := setupTracing(cfg.Tracing, cfg.Target)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return stopTracing(ctx)
	})
	inits := map[string]func() error{
		httpServer: a.initHTTP,
		metaStore:  a.initMetaStore,
		blobStore:  a.initBlobStore,
		metaClient: a.initMetaClient,
		blobClient: a.initBlobClient,
		Metadata:   a.initMetadata,
		Blob:       a.initBlob,
		IMAP:       a.initIMAP,
		POP3:       a.initPOP3,
		LMTP:       a.initLMTP,
		TargetAll:  func() error { return nil },
	}
	for _, m := range order(expand(targets)) {
		if err := inits[m](); err != nil {
			a.Close()
			return nil, fmt.Errorf("init %s: %w", m, err)
		}
	}
	return a, nil
}

// Close releases what New opened, in reverse order.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// Run serves until ctx ends or a part fails, then stops everything.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range a.runs {
		g.Go(func() error {
			if err := r.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return nil
		})
	}
	a.ready.Store(true)
	a.logger.Info("mailstore started", "target", a.cfg.Target)
	<-gctx.Done()
	a.ready.Store(false)
	err := g.Wait()
	a.logger.Info("mailstore stopped")
	return err
}

// Ready reports whether the process serves and is not shutting down.
func (a *App) Ready() bool { return a.ready.Load() }

func (a *App) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	a.Addrs[name] = ln.Addr()
	a.logger.Info("listening", "component", name, "addr", ln.Addr().String())
	return ln, nil
}

// listenClients binds a mail client listener. With PROXY protocol
// trusted CIDRs configured, it is for a load balancer: a connection from a
// trusted address must start with a PROXY v1 or v2 header, whose client
// address the gateway then uses (logs, limits, auth throttling); any other
// connection is closed at once. (Optional headers cannot work for
// protocols where the server speaks first: the server would have to wait
// to see whether a header comes.)
func (a *App) listenClients(name, addr string) (net.Listener, error) {
	ln, err := a.listen(name, addr)
	if err != nil || len(a.cfg.Server.proxyTrusted) == 0 {
		return ln, err
	}
	trusted := a.cfg.Server.proxyTrusted
	logger := a.logger.With("component", name)
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: a.cfg.Server.ProxyHeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ap, err := netip.ParseAddrPort(o.Upstream.String()); err == nil {
				for _, p := range trusted {
					if p.Contains(ap.Addr().Unmap()) {
						return proxyproto.REQUIRE, nil
					}
				}
			}
			logger.Debug("connection refused: not from a trusted PROXY protocol source", "remote", o.Upstream.String())
			return proxyproto.REJECT, proxyproto.ErrInvalidUpstream
		},
	}, nil
}

func (a *App) initHTTP() error {
	ln, err := a.listen(httpServer, a.cfg.Server.HTTPListenAddress)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{Registry: a.registry}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	a.closers = append(a.closers, ln.Close)
	a.runs = append(a.runs, namedRun{httpServer, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
			return nil
		}
	}})
	return nil
}

func (a *App) initMetaStore() error {
	s, err := metasvc.OpenStore(a.cfg.Metadata, a.cfg.DataDir, a.logger.With("component", metaStore), a.registry)
	if err != nil {
		return err
	}
	a.metaStore = s
	a.closers = append(a.closers, s.Close)
	return nil
}

func (a *App) initBlobStore() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := blobsvc.OpenStore(ctx, a.cfg.Blob, a.cfg.DataDir, a.logger.With("component", blobStore), a.registry)
	if err != nil {
		return err
	}
	a.blobStore = s
	return nil
}

// dial opens a lazy client connection; it never blocks, and calls fail
// with Unavailable while the peer is down.
func (a *App) dial(target string) (*grpc.ClientConn, error) {
	auth, err := a.cfg.GRPC.DialOptions()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(target, append(auth,
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)...)
}

func (a *App) initMetaClient() error {
	cc, err := a.dial(a.cfg.Client.MetadataAddress)
	if err != nil {
		return fmt.Errorf("-metadata.address: %w", err)
	}
	a.metaConn, a.metaCli = cc, grpcmeta.New(cc)
	a.closers = append(a.closers, cc.Close)
	return nil
}

func (a *App) initBlobClient() error {
	cc, err := a.dial(a.cfg.Client.BlobAddress)
	if err != nil {
		return fmt.Errorf("-blob.address: %w", err)
	}
	a.blobConn, a.blobCli = cc, grpcblob.New(cc)
	a.closers = append(a.closers, cc.Close)
	return nil
}

func (a *App) newGRPCServer() (*grpc.Server, error) {
	auth, err := a.cfg.GRPC.ServerOptions()
	if err != nil {
		return nil, err
	}
	return grpc.NewServer(append(auth,
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.MaxRecvMsgSize(grpcmeta.MaxMessageSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(a.grpcMet.unary),
		grpc.ChainStreamInterceptor(a.grpcMet.stream),
	)...), nil
}

// serveGRPC adds a run that serves g on ln and stops it gracefully.
// drain, if not nil, runs before the graceful stop.
func (a *App) serveGRPC(name string, g *grpc.Server, ln net.Listener, drain func()) {
	a.closers = append(a.closers, func() error { g.Stop(); return nil })
	a.runs = append(a.runs, namedRun{name, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- g.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			if drain != nil {
				drain()
			}
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(shutdownTimeout):
				g.Stop()
			}
			return nil
		}
	}})
}

func (a *App) initMetadata() error {
	svc, err := metasvc.New(a.cfg.Metadata, metasvc.Deps{
		Store: a.metaStore, Blobs: a.blobCli, Logger: a.logger.With("component", Metadata),
	})
	if err != nil {
		return err
	}
	ln, err := a.listen(Metadata, a.cfg.Metadata.ListenAddress)
	if err != nil {
		return err
	}
	g, err := a.newGRPCServer()
	if err != nil {
		return err
	}
	svc.Register(g)
	a.serveGRPC(Metadata, g, ln, svc.Drain)
	if err := a.initDemo(); err != nil {
		return err
	}
	a.runs = append(a.runs, namedRun{"maintenance", svc.Run})
	return nil
}

func (a *App) initBlob() error {
	ln, err := a.listen(Blob, a.cfg.Blob.ListenAddress)
	if err != nil {
		return err
	}
	g, err := a.newGRPCServer()
	if err != nil {
		return err
	}
	blobsvc.New(a.blobStore, a.logger.With("component", Blob)).Register(g)
	a.serveGRPC(Blob, g, ln, nil)
	return nil
}

func (a *App) initIMAP() error {
	logger := a.logger.With("component", IMAP)
	ing, err := ingest.New(a.cfg.Ingest, ingest.Deps{Meta: a.metaCli, Blobs: a.blobCli, Logger: logger})
	if err != nil {
		return err
	}
	gw, err := imapgw.New(a.cfg.IMAP, imapgw.Deps{Meta: a.metaCli, Auth: a.metaCli, Blobs: a.blobCli, Ingest: ing, Logger: logger,
		Metrics: gwmetrics.New(a.registry, IMAP)})
	if err != nil {
		return err
	}
	ln, err := a.listenClients(IMAP, a.cfg.IMAP.ListenAddress)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, ln.Close)
	a.runs = append(a.runs, namedRun{IMAP, func(ctx context.Context) error { return gw.Serve(ctx, ln, false) }})
	if gw.TLSEnabled() && a.cfg.IMAP.TLSListenAddress != "" {
		tln, err := a.listenClients(IMAP+"-tls", a.cfg.IMAP.TLSListenAddress)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, tln.Close)
		a.runs = append(a.runs, namedRun{IMAP + "-tls", func(ctx context.Context) error { return gw.Serve(ctx, tln, true) }})
	}
	return nil
}

func (a *App) initPOP3() error {
	logger := a.logger.With("component", POP3)
	gw, err := pop3gw.New(a.cfg.POP3, pop3gw.Deps{Meta: a.metaCli, Auth: a.metaCli, Blobs: a.blobCli, Logger: logger,
		Metrics: gwmetrics.New(a.registry, POP3)})
	if err != nil {
		return err
	}
	ln, err := a.listenClients(POP3, a.cfg.POP3.ListenAddress)
	if err != nil {
		return err
	}
	a.closers = append(a.closers, ln.Close)
	a.runs = append(a.runs, namedRun{POP3, func(ctx context.Context) error { return gw.Serve(ctx, ln, false) }})
	if gw.TLSEnabled() && a.cfg.POP3.TLSListenAddress != "" {
		tln, err := a.listenClients(POP3+"-tls", a.cfg.POP3.TLSListenAddress)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, tln.Close)
		a.runs = append(a.runs, namedRun{POP3 + "-tls", func(ctx context.Context) error { return gw.Serve(ctx, tln, true) }})
	}
	return nil
}

func (a *App) initLMTP() error {
	logger := a.logger.With("component", LMTP)
	ing, err := ingest.New(a.cfg.Ingest, ingest.Deps{Meta: a.metaCli, Blobs: a.blobCli, Logger: logger})
	if err != nil {
		return err
	}
	gw, err := lmtpgw.New(a.cfg.LMTP, lmtpgw.Deps{Meta: a.metaCli, Ingest: ing, Logger: logger,
		Metrics: gwmetrics.New(a.registry, LMTP)})
	if err != nil {
		return err
	}
	if a.cfg.LMTP.ListenAddress != "" {
		ln, err := a.listenClients(LMTP, a.cfg.LMTP.ListenAddress)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, ln.Close)
		a.runs = append(a.runs, namedRun{LMTP, func(ctx context.Context) error { return gw.Serve(ctx, ln) }})
	}
	if path := a.cfg.LMTP.UnixSocket; path != "" {
		ln, err := lmtpgw.ListenUnix(path)
		if err != nil {
			return err
		}
		a.logger.Info("listening", "component", LMTP+"-unix", "addr", path)
		a.closers = append(a.closers, ln.Close)
		a.runs = append(a.runs, namedRun{LMTP + "-unix", func(ctx context.Context) error { return gw.Serve(ctx, ln) }})
	}
	return nil
}
