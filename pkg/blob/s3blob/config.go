package s3blob

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Part sizes: S3 refuses parts under 5 MiB (but the last) and over 5 GiB.
const (
	DefaultPartSize = 8 << 20
	minPartSize     = 5 << 20
	maxPartSize     = 5 << 30
)

// Config configures the store.
type Config struct {
	// Endpoint is host:port of the S3 API; an http:// or https:// scheme is
	// accepted too and overrides Insecure.
	Endpoint string
	Bucket   string
	Region   string
	// PathStyle addresses buckets as endpoint/bucket rather than
	// bucket.endpoint (MinIO, versitygw and most on-premises servers).
	PathStyle bool
	// Insecure talks plain HTTP instead of HTTPS.
	Insecure bool
	// Prefix is prepended verbatim to every object key; end it with "/"
	// to get a folder.
	Prefix string

	// AccessKeyFile and SecretKeyFile name files holding the credentials
	// (Kubernetes secrets). When empty, AccessKey and SecretKey are used if
	// set, else minio-go's chain: AWS_* and MINIO_* environment variables,
	// then IAM (instance or pod identity).
	AccessKeyFile string
	SecretKeyFile string
	AccessKey     string
	SecretKey     string

	// PartSize is the size of multipart upload parts, and so the most
	// memory one Put holds.
	PartSize int64
	// MaxRetries bounds minio-go's retries of one request; 0 means its
	// default (10).
	MaxRetries int
	// WrapTransport, when set, wraps the HTTP transport of every request
	// (metrics); it is not a flag.
	WrapTransport func(http.RoundTripper) http.RoundTripper
}

// RegisterFlags registers the flags of the store under -blob.s3.
func (c *Config) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Endpoint, "blob.s3.endpoint", "", "S3 endpoint, host:port (or an http:// or https:// URL).")
	f.StringVar(&c.Bucket, "blob.s3.bucket", "", "S3 bucket of message bodies.")
	f.StringVar(&c.Region, "blob.s3.region", "us-east-1", "S3 region.")
	f.BoolVar(&c.PathStyle, "blob.s3.path-style", false, "Use path-style bucket addressing (MinIO, versitygw, Ceph).")
	f.BoolVar(&c.Insecure, "blob.s3.insecure", false, "Talk plain HTTP to the S3 endpoint (no TLS).")
	f.StringVar(&c.Prefix, "blob.s3.prefix", "", "Prefix of every object key, e.g. \"mail/\".")
	f.StringVar(&c.AccessKeyFile, "blob.s3.access-key-file", "", "File holding the S3 access key (default: AWS_ACCESS_KEY_ID or the IAM chain).")
	f.StringVar(&c.SecretKeyFile, "blob.s3.secret-key-file", "", "File holding the S3 secret key (default: AWS_SECRET_ACCESS_KEY or the IAM chain).")
	f.Int64Var(&c.PartSize, "blob.s3.part-size", DefaultPartSize, "Size of multipart upload parts in bytes (5 MiB to 5 GiB); also the most memory one upload holds.")
	f.IntVar(&c.MaxRetries, "blob.s3.max-retries", 0, "Retries of one S3 request (0: minio-go's default of 10).")
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Endpoint == "" {
		errs = append(errs, errors.New("-blob.s3.endpoint is required"))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("-blob.s3.bucket is required"))
	} else if err := s3utils.CheckValidBucketName(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("-blob.s3.bucket: %w", err))
	}
	if c.PartSize != 0 && (c.PartSize < minPartSize || c.PartSize > maxPartSize) {
		errs = append(errs, fmt.Errorf("-blob.s3.part-size %d is outside [5 MiB, 5 GiB]", c.PartSize))
	}
	if (c.AccessKeyFile == "") != (c.SecretKeyFile == "") {
		errs = append(errs, errors.New("-blob.s3.access-key-file and -blob.s3.secret-key-file go together"))
	}
	if c.MaxRetries < 0 {
		errs = append(errs, errors.New("-blob.s3.max-retries must not be negative"))
	}
	return errors.Join(errs...)
}

// loadKeys fills AccessKey and SecretKey from the key files, if given.
func (c *Config) loadKeys() error {
	if c.AccessKeyFile == "" && c.SecretKeyFile == "" {
		return nil
	}
	read := func(name string) (string, error) {
		b, err := os.ReadFile(name)
		if err != nil {
			return "", fmt.Errorf("read S3 key file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var err error
	if c.AccessKey, err = read(c.AccessKeyFile); err != nil {
		return err
	}
	c.SecretKey, err = read(c.SecretKeyFile)
	return err
}
