package redismeta

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mailstore/mailstore/pkg/mail"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/meta/metatest"
)

// loseAnswer lets a script run on the node and then reports a connection
// reset instead of its answer, as when a link breaks after Redis executed
// the script.
type loseAnswer struct {
	armed *atomic.Bool
	runs  *atomic.Int32
}

func (h loseAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h loseAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h loseAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && h.armed.Load() {
			h.runs.Add(1)
			return &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
		return err
	}
}

// TestClusterScriptNotResent: on Redis Cluster, a COPY whose answer is
// lost is reported unavailable (an unknown outcome) and runs once; the
// cluster client's own retry loop would have copied the message twice.
func TestClusterScriptNotResent(t *testing.T) {
	s := newTestStore(t, true)
	ctx := t.Context()
	acct := metatest.NewAccount(t, s).ID
	src, err := s.CreateMailbox(ctx, acct, "Src", "")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := s.CreateMailbox(ctx, acct, "Dst", "")
	if err != nil {
		t.Fatal(err)
	}
	a := metatest.Append(t, s, acct, src.ID)

	var armed atomic.Bool
	var runs atomic.Int32
	cc := s.c.(*redis.ClusterClient)
	if err := cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
		n.AddHook(loseAnswer{&armed, &runs})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	_, err = s.Copy(ctx, acct, src.ID, mail.NewUIDSet(a.UID), dst.ID)
	armed.Store(false)
	if !errors.Is(err, meta.ErrUnavailable) {
		t.Errorf("copy with its answer lost: %v, want ErrUnavailable", err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the COPY script was sent %d times, want once", n)
	}
	es, err := s.ListEntries(ctx, acct, dst.ID, mail.AllUIDs(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 {
		t.Errorf("%d copies in the destination, want 1", len(es))
	}
}
