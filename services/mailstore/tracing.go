package mailstore

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TracingConfig exports OpenTelemetry traces over OTLP/gRPC. Every gRPC
// call between the components carries the trace context (otelgrpc on
// both ends), so a gateway command, the metadata and blob calls it makes
// and their Redis and S3 calls are one trace.
type TracingConfig struct {
	// Endpoint is the OTLP/gRPC collector (host:port); empty disables
	// exporting.
	Endpoint    string
	Insecure    bool
	SampleRatio float64
}

// RegisterFlags registers the tracing flags.
func (c *TracingConfig) RegisterFlags(f *flag.FlagSet) {
	f.StringVar(&c.Endpoint, "tracing.otlp-endpoint", "", "OTLP/gRPC collector (host:port) to export traces to; empty disables tracing.")
	f.BoolVar(&c.Insecure, "tracing.otlp-insecure", false, "Talk to the collector without TLS.")
	f.Float64Var(&c.SampleRatio, "tracing.sample-ratio", 0.05, "Share of new traces recorded (0 to 1); a trace started upstream keeps its decision.")
}

// Validate checks the configuration.
func (c *TracingConfig) Validate() error {
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return errors.New("-tracing.sample-ratio: must be between 0 and 1")
	}
	return nil
}

// setupTracing installs the global tracer provider and propagator when an
// endpoint is set; it returns the function that flushes and stops it.
// Without an endpoint the global provider stays as it is (a no-op, or the
// one a test installed).
func setupTracing(cfg TracingConfig, target string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if cfg.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("-tracing.otlp-endpoint: %w", err)
	}
	host, _ := os.Hostname()
	res := resource.NewSchemaless(
		attribute.String("service.name", "mailstore"),
		attribute.String("service.instance.id", host),
		attribute.String("mailstore.target", target),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}
