// Command mailstore runs one or more components of mailstore, chosen with
// -target: all (the default: every component in one process, on the
// embedded backends unless told otherwise), metadata or blob.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/mailstore/mailstore/services/mailstore"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg mailstore.Config
	f := flag.NewFlagSet("mailstore", flag.ContinueOnError)
	cfg.RegisterFlags(f)
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage: mailstore [-config file.yaml] [flags]\n\nFlags (defaults in parentheses):\n")
		f.PrintDefaults()
	}
	if err := mailstore.Parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "mailstore:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "mailstore: invalid configuration:", err)
		return 2
	}
	logger := mailstore.NewLogger(cfg.Log, os.Stderr)

	app, err := mailstore.New(cfg, logger)
	if err != nil {
		logger.Error("start failed", "err", err)
		return 1
	}
	printBanner(app)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx); err != nil {
		logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}

// printBanner tells a person at a terminal where things are.
func printBanner(app *mailstore.App) {
	names := make([]string, 0, len(app.Addrs))
	for n := range app.Addrs {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("mailstore is running:")
	for _, n := range names {
		fmt.Printf("  %-12s %s\n", n, app.Addrs[n])
	}
	if app.DemoLogin != "" {
		fmt.Printf("demo account: %s  password: %s\n", app.DemoLogin, app.DemoPassword)
	}
}
