// Command creditd is a self-hosted, credit-native billing engine: credit
// blocks, burn order, usage metering and an append-only ledger behind an
// HTTP API compatible with QuotaStack's. Run "creditd help" for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "creditd:", err)
		os.Exit(1)
	}
}
