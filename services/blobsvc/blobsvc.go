// Package blobsvc is the blob service: the mailstore.blob.v1 gRPC API over
// a chosen blob backend (a local directory or S3). It is stateless: every
// replica serves every account.
package blobsvc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/mailstore/mailstore/pkg/blob"
	"github.com/mailstore/mailstore/pkg/blob/fsblob"
	"github.com/mailstore/mailstore/pkg/blob/grpcblob"
	"github.com/mailstore/mailstore/pkg/blob/s3blob"
	"github.com/mailstore/mailstore/pkg/storemetrics"
)

// Backends.
const (
	BackendFS = "fs"
	BackendS3 = "s3"
)

// Config is the blob service's configuration.
type Config struct {
	ListenAddress string
	Backend       string
	FS            fsblob.Config
	S3            s3blob.Config
}

// RegisterFlags registers the flags of the service and its backends.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.ListenAddress, "blob.listen-address", "127.0.0.1:9202", "gRPC listen address of the blob service.")
	f.StringVar(&c.Backend, "blob.backend", BackendFS, "Blob backend: fs (a directory under the data dir) or s3.")
	c.FS.RegisterFlags(f)
	c.S3.RegisterFlags(f)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.ListenAddress == "" {
		return errors.New("-blob.listen-address: must not be empty")
	}
	switch c.Backend {
	case BackendFS:
		return nil
	case BackendS3:
		return c.S3.Validate()
	default:
		return fmt.Errorf("-blob.backend: unknown backend %q (want fs or s3)", c.Backend)
	}
}

// OpenStore opens the configured backend. dataDir holds the blobs when
// -blob.fs.dir is not set. S3 credentials not given by files come from
// the standard AWS environment variables.
func OpenStore(ctx context.Context, cfg Config, dataDir string, logger *slog.Logger, reg prometheus.Registerer) (blob.Store, error) {
	switch cfg.Backend {
	case BackendS3:
		sc := cfg.S3
		if sc.AccessKey == "" {
			sc.AccessKey = strings.TrimSpace(os.Getenv("AWS_ACCESS_KEY_ID"))
		}
		if sc.SecretKey == "" {
			sc.SecretKey = strings.TrimSpace(os.Getenv("AWS_SECRET_ACCESS_KEY"))
		}
		// Every S3 request is timed (mailstore_s3_*).
		sc.WrapTransport = storemetrics.NewS3Metrics(reg)
		s, err := s3blob.New(sc, logger)
		if err != nil {
			return nil, err
		}
		if err := s.EnsureBucket(ctx); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
		return s, nil
	default:
		fc := cfg.FS
		if fc.Dir == "" {
			fc.Dir = filepath.Join(dataDir, "blobs")
		}
		return fsblob.New(fc, logger)
	}
}

// Service is the blob service.
type Service struct {
	store  blob.Store
	logger *slog.Logger
}

// New builds the service over a store.
func New(store blob.Store, logger *slog.Logger) *Service {
	return &Service{store: store, logger: logger}
}

// Register adds the blob API to a gRPC server.
func (s *Service) Register(g *grpc.Server) {
	grpcblob.NewServer(s.store, s.logger).Register(g)
}
