package redismeta

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// noRetryScripter runs scripts as commands that go-redis never re-sends.
// MaxRetries -1 stops the standalone and Sentinel clients from retrying,
// but the cluster client has its own loop, bounded by MaxRedirects, that
// follows MOVED and ASK (safe: the script did not run) and also re-sends
// on network errors, when the script may have run already; a COPY would
// then copy twice. go-redis honours a per-command NoRetry, so each EVAL
// and EVALSHA is wrapped in a command that says so. A broken call is then
// ErrUnavailable: an unknown outcome for the caller.
type noRetryScripter struct{ c redis.UniversalClient }

// noRetryCmd is a redis.Cmd that must not be re-sent.
type noRetryCmd struct{ *redis.Cmd }

func (noRetryCmd) NoRetry() bool { return true }

func (s noRetryScripter) eval(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	_ = s.c.Process(ctx, noRetryCmd{cmd})
	return cmd
}

func (s noRetryScripter) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "eval", script, keys, args)
}

func (s noRetryScripter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "evalsha", sha1, keys, args)
}

// The read-only forms change nothing: a retry is harmless.
func (s noRetryScripter) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.c.EvalRO(ctx, script, keys, args...)
}

func (s noRetryScripter) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.c.EvalShaRO(ctx, sha1, keys, args...)
}

func (s noRetryScripter) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return s.c.ScriptExists(ctx, hashes...)
}

func (s noRetryScripter) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return s.c.ScriptLoad(ctx, script)
}
