// Command mailctl administers mailstore through the admin API of the
// metadata service: accounts, aliases, passwords, quotas, POP3 policies,
// Sieve scripts, mailboxes and recovery.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	adminv1 "github.com/mailstore/mailstore/proto/mailstore/admin/v1"

	"github.com/mailstore/mailstore/pkg/grpcauth"
	"github.com/mailstore/mailstore/pkg/meta"
	"github.com/mailstore/mailstore/pkg/password"
)

const usage = `Usage: mailctl [-addr host:port] [-timeout d] COMMAND ...

Commands:
  account add USER [--password-stdin] [--bytes N] [--messages N]
  account list
  account show USER
  account del USER
  account alias add USER ALIAS                  (ALIAS: local@domain)
  account alias del USER ALIAS
  account passwd USER [--password-stdin]
  account disable USER | account enable USER
  account quota USER --bytes N --messages N     (0 = unlimited)
  account pop3 USER --keep=none|forever|Nd [--login-delay SECONDS]
  account recover USER
  mailbox list USER
  sieve set USER FILE                           (FILE "-" reads stdin)
  sieve get USER
  password hash [--password-stdin]              (prints the argon2id PHC string the
                                                 server stores; no server needed)

Without --password-stdin, the password is prompted for on the terminal.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli carries what every command needs.
type cli struct {
	client adminv1.AdminServiceClient
	stdin  io.Reader
	stdout io.Writer
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("mailctl", flag.ContinueOnError)
	f.SetOutput(stderr)
	addr := f.String("addr", envOr("MAILCTL_ADDR", "127.0.0.1:9201"), "address of the metadata service's gRPC API (env MAILCTL_ADDR)")
	timeout := f.Duration("timeout", 10*time.Minute, "deadline of one command")
	var auth grpcauth.Config
	auth.RegisterFlags(f, "")
	f.Usage = func() { fmt.Fprint(stderr, usage, "\nFlags:\n"); f.PrintDefaults() }
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if f.NArg() < 1 {
		f.Usage()
		return 2
	}
	if err := auth.Load(""); err != nil {
		fmt.Fprintln(stderr, "mailctl:", err)
		return 2
	}
	opts, err := auth.DialOptions()
	if err != nil {
		fmt.Fprintln(stderr, "mailctl:", err)
		return 1
	}
	cc, err := grpc.NewClient(*addr, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "mailctl:", err)
		return 1
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c := &cli{client: adminv1.NewAdminServiceClient(cc), stdin: stdin, stdout: stdout}
	if err := c.dispatch(ctx, f.Args()); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "mailctl: %s\n\n%s", ue, usage)
			return 2
		}
		fmt.Fprintln(stderr, "mailctl:", describe(err))
		return 1
	}
	return 0
}

type usageError string

func (e usageError) Error() string { return string(e) }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// describe turns a gRPC status into a sentence for the operator.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		return "metadata service unavailable: " + st.Message()
	case codes.NotFound:
		return "not found: " + st.Message()
	case codes.AlreadyExists:
		return "already exists: " + st.Message()
	case codes.InvalidArgument:
		return "invalid: " + st.Message()
	default:
		return st.Message()
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return usageError("missing subcommand")
	}
	switch args[0] + " " + args[1] {
	case "account add":
		return c.accountAdd(ctx, args[2:])
	case "account list":
		return c.accountList(ctx)
	case "account show":
		return c.withUser(args[2:], func(u string) error { return c.accountShow(ctx, u) })
	case "account del", "account delete":
		return c.withUser(args[2:], func(u string) error {
			_, err := c.client.DeleteAccount(ctx, &adminv1.AccountRef{Login: u})
			return err
		})
	case "account alias":
		return c.accountAlias(ctx, args[2:])
	case "account passwd":
		return c.accountPasswd(ctx, args[2:])
	case "account disable", "account enable":
		return c.withUser(args[2:], func(u string) error {
			_, err := c.client.SetDisabled(ctx, &adminv1.SetDisabledRequest{Login: u, Disabled: args[1] == "disable"})
			return err
		})
	case "account quota":
		return c.accountQuota(ctx, args[2:])
	case "account pop3":
		return c.accountPOP3(ctx, args[2:])
	case "account recover":
		return c.withUser(args[2:], func(u string) error { return c.accountRecover(ctx, u) })
	case "password hash":
		return c.passwordHash(args[2:])
	case "mailbox list":
		return c.withUser(args[2:], func(u string) error { return c.mailboxList(ctx, u) })
	case "sieve set":
		return c.sieveSet(ctx, args[2:])
	case "sieve get":
		return c.withUser(args[2:], func(u string) error {
			s, err := c.client.GetSieveScript(ctx, &adminv1.AccountRef{Login: u})
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.stdout, s.Script)
			return err
		})
	}
	return usageError(fmt.Sprintf("unknown command %q", strings.Join(args[:2], " ")))
}

func (c *cli) withUser(args []string, fn func(string) error) error {
	if len(args) != 1 || args[0] == "" {
		return usageError("expected exactly one USER")
	}
	return fn(args[0])
}

// parseUserFlags splits "USER --flags..." in any order.
func parseUserFlags(f *flag.FlagSet, args []string) (string, error) {
	f.SetOutput(io.Discard)
	var user string
	var rest []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i:]...)
			break
		}
		if user != "" {
			return "", usageError("expected exactly one USER")
		}
		user = args[i]
	}
	if err := f.Parse(rest); err != nil {
		return "", usageError(err.Error())
	}
	if f.NArg() > 0 {
		if user != "" || f.NArg() > 1 {
			return "", usageError("expected exactly one USER")
		}
		user = f.Arg(0)
	}
	if user == "" {
		return "", usageError("missing USER")
	}
	return user, nil
}

func (c *cli) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(c.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("empty password on standard input")
		}
		return pw, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", usageError("no terminal to prompt for a password: use --password-stdin")
	}
	fmt.Fprint(os.Stderr, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(os.Stderr, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords differ")
	}
	return string(a), nil
}

func (c *cli) accountAdd(ctx context.Context, args []string) error {
	f := flag.NewFlagSet("account add", flag.ContinueOnError)
	stdin := f.Bool("password-stdin", false, "")
	bytes := f.Int64("bytes", 0, "")
	msgs := f.Int64("messages", 0, "")
	user, err := parseUserFlags(f, args)
	if err != nil {
		return err
	}
	pw, err := c.readPassword(*stdin)
	if err != nil {
		return err
	}
	a, err := c.client.AddAccount(ctx, &adminv1.AddAccountRequest{Login: user, Password: pw, LimitBytes: *bytes, LimitMessages: *msgs})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "account %s added (id %s)\n", a.Login, a.Id)
	return nil
}

// accountAlias runs "account alias add|del USER ALIAS".
func (c *cli) accountAlias(ctx context.Context, args []string) error {
	if len(args) != 3 || args[1] == "" || args[2] == "" {
		return usageError("expected add|del USER ALIAS")
	}
	req := &adminv1.AliasRequest{Login: args[1], Alias: args[2]}
	var (
		a   *adminv1.Account
		err error
	)
	switch args[0] {
	case "add":
		a, err = c.client.AddAlias(ctx, req)
	case "del", "delete", "rm", "remove":
		a, err = c.client.RemoveAlias(ctx, req)
	default:
		return usageError(fmt.Sprintf("unknown alias command %q: expected add or del", args[0]))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "aliases of %s: %s\n", a.Login, aliasText(a.Aliases))
	return nil
}

// aliasText lists aliases for a person to read.
func aliasText(aliases []string) string {
	if len(aliases) == 0 {
		return "none"
	}
	return strings.Join(aliases, ", ")
}

func (c *cli) accountPasswd(ctx context.Context, args []string) error {
	f := flag.NewFlagSet("account passwd", flag.ContinueOnError)
	stdin := f.Bool("password-stdin", false, "")
	user, err := parseUserFlags(f, args)
	if err != nil {
		return err
	}
	pw, err := c.readPassword(*stdin)
	if err != nil {
		return err
	}
	_, err = c.client.SetPassword(ctx, &adminv1.SetPasswordRequest{Login: user, Password: pw})
	return err
}

// passwordHash prints the PHC string of a password with the parameters
// the metadata service uses by default, for provisioning tools and for
// other servers' password files (Dovecot's {ARGON2ID} scheme reads it).
func (c *cli) passwordHash(args []string) error {
	f := flag.NewFlagSet("password hash", flag.ContinueOnError)
	f.SetOutput(io.Discard)
	stdin := f.Bool("password-stdin", false, "")
	if err := f.Parse(args); err != nil || f.NArg() > 0 {
		return usageError("password hash takes only --password-stdin")
	}
	pw, err := c.readPassword(*stdin)
	if err != nil {
		return err
	}
	h, err := password.Hash(pw, password.Default)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, h)
	return err
}

func (c *cli) accountList(ctx context.Context) error {
	resp, err := c.client.ListAccounts(ctx, &adminv1.ListAccountsRequest{})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LOGIN\tID\tMESSAGES\tBYTES\tSTATE")
	for _, a := range resp.Accounts {
		state := "active"
		if a.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\n", a.Login, a.Id, a.Quota.GetUsedMessages(), a.Quota.GetUsedBytes(), state)
	}
	return w.Flush()
}

func limit(n int64) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.FormatInt(n, 10)
}

func (c *cli) accountShow(ctx context.Context, user string) error {
	a, err := c.client.GetAccount(ctx, &adminv1.AccountRef{Login: user})
	if err != nil {
		return err
	}
	pop3 := a.Pop3.GetMode()
	switch pop3 {
	case "":
		pop3 = "server default"
	case "days":
		pop3 = fmt.Sprintf("keep %d days", a.Pop3.GetKeepDays())
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "login:\t%s\n", a.Login)
	fmt.Fprintf(w, "id:\t%s\n", a.Id)
	fmt.Fprintf(w, "aliases:\t%s\n", aliasText(a.Aliases))
	fmt.Fprintf(w, "created:\t%s\n", time.Unix(a.CreatedUnix, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "disabled:\t%t\n", a.Disabled)
	fmt.Fprintf(w, "messages:\t%d of %s\n", a.Quota.GetUsedMessages(), limit(a.Quota.GetLimitMessages()))
	fmt.Fprintf(w, "bytes:\t%d of %s\n", a.Quota.GetUsedBytes(), limit(a.Quota.GetLimitBytes()))
	fmt.Fprintf(w, "pop3:\t%s\n", pop3)
	fmt.Fprintf(w, "sieve:\t%t\n", a.HasSieveScript)
	return w.Flush()
}

func (c *cli) accountQuota(ctx context.Context, args []string) error {
	f := flag.NewFlagSet("account quota", flag.ContinueOnError)
	bytes := f.Int64("bytes", -1, "")
	msgs := f.Int64("messages", -1, "")
	user, err := parseUserFlags(f, args)
	if err != nil {
		return err
	}
	if *bytes < 0 && *msgs < 0 {
		return usageError("give --bytes and/or --messages")
	}
	if *bytes < 0 || *msgs < 0 {
		cur, err := c.client.GetAccount(ctx, &adminv1.AccountRef{Login: user})
		if err != nil {
			return err
		}
		if *bytes < 0 {
			*bytes = cur.Quota.GetLimitBytes()
		}
		if *msgs < 0 {
			*msgs = cur.Quota.GetLimitMessages()
		}
	}
	_, err = c.client.SetQuota(ctx, &adminv1.SetQuotaRequest{Login: user, LimitBytes: *bytes, LimitMessages: *msgs})
	return err
}

func (c *cli) accountPOP3(ctx context.Context, args []string) error {
	f := flag.NewFlagSet("account pop3", flag.ContinueOnError)
	keep := f.String("keep", "", "")
	delay := f.Int("login-delay", 0, "")
	user, err := parseUserFlags(f, args)
	if err != nil {
		return err
	}
	if *keep == "" {
		return usageError("--keep must be none, forever, default or Nd (e.g. 30d)")
	}
	pol, err := meta.ParsePOP3Keep(*keep)
	if err != nil {
		return usageError(fmt.Sprintf("--keep: %v", err))
	}
	p := &adminv1.POP3Policy{Mode: pol.Mode, KeepDays: int32(pol.KeepDays), LoginDelaySeconds: int32(*delay)}
	_, err = c.client.SetPOP3Policy(ctx, &adminv1.SetPOP3PolicyRequest{Login: user, Policy: p})
	return err
}

func (c *cli) accountRecover(ctx context.Context, user string) error {
	r, err := c.client.Recover(ctx, &adminv1.AccountRef{Login: user})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "recovered %d messages (%d bytes) in %d mailboxes\n", r.Messages, r.Bytes, r.Mailboxes)
	for _, id := range r.FailedBlobs {
		fmt.Fprintf(c.stdout, "unreadable blob: %s\n", id)
	}
	if len(r.FailedBlobs) > 0 {
		return fmt.Errorf("%d blobs could not be read; run recover again once the blob store is healthy", len(r.FailedBlobs))
	}
	return nil
}

func (c *cli) mailboxList(ctx context.Context, user string) error {
	resp, err := c.client.ListMailboxes(ctx, &adminv1.AccountRef{Login: user})
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tMESSAGES\tUNSEEN\tBYTES\tUIDVALIDITY\tUIDNEXT\tSPECIAL")
	for _, m := range resp.Mailboxes {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", m.Name, m.Messages, m.Unseen, m.Size, m.UidValidity, m.UidNext, m.SpecialUse)
	}
	return w.Flush()
}

func (c *cli) sieveSet(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return usageError("expected USER FILE")
	}
	var data []byte
	var err error
	if args[1] == "-" {
		data, err = io.ReadAll(io.LimitReader(c.stdin, 1<<20))
	} else {
		data, err = os.ReadFile(args[1])
	}
	if err != nil {
		return err
	}
	_, err = c.client.SetSieveScript(ctx, &adminv1.SetSieveScriptRequest{Login: args[0], Script: string(data)})
	return err
}
