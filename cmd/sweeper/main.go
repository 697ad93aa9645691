// Command sweeper records Interlace CryptoConnect deposits and sweeps them into the
// merchant's Infinity Account. One binary, several subcommands; see `sweeper --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sweeperhq/sweeper/internal/config"
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	// run gets the subcommand's own arguments.
	run func(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"migrate", "apply all database migrations (`migrate status` lists them)", runMigrate},
		{"serve", "run the webhook/operator HTTP server and the sweep worker", runServe},
		{"sandbox", "run the embedded fake Interlace (for the quick start, tests and benchmarks)", runSandbox},
		{"doctor", "check the configuration against a real Interlace account and say what to set (moves no money)", runDoctor},
		{"wallet", "provision users' CryptoConnect wallets and deposit addresses (operator API client)", runWallet},
		{"withdraw", "pay out: convert USD and send it on-chain as a durable workflow (operator API client)", runWithdraw},
		{"chaos", "prove on loopback that nothing is lost or moved twice under kills, faults and a database crash", runChaos},
		{"bench", "measure ingest, sweep, end-to-end latency and memory against the targets (docs/PERFORMANCE.md)", runBench},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; unregistering then lets a second
	// one kill the process the default way, for an operator who cannot wait.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, os.Getenv, os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks errors already explained by printed usage.
var errUsage = errors.New("usage")

func run(ctx context.Context, env config.Getenv, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, env, args[1:], stdout, stderr)
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errUsage):
				return 2
			default:
				fmt.Fprintf(stderr, "sweeper %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "sweeper: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sweeper: records Interlace CryptoConnect deposits and sweeps them into the Infinity Account.")
	fmt.Fprintln(w, "\nUsage: sweeper <command> [flags]   (sweeper <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEnvironment (any VAR may be given as VAR_FILE, a path whose content is the value):")
	printVars(w, config.Vars)
}

func printVars(w io.Writer, vars []config.Var) {
	for _, v := range vars {
		def := v.Default
		if def == "" {
			def = "-"
		}
		secret := ""
		if v.Secret {
			secret = " [secret]"
		}
		fmt.Fprintf(w, "  %-36s %s%s (default: %s)\n", v.Name, v.Usage, secret, def)
	}
}

// newFlagSet builds a subcommand's flags with a help text listing the variables it reads.
func newFlagSet(name, summary string, out io.Writer, vars []config.Var) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: sweeper %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
		if len(vars) > 0 {
			fmt.Fprintln(out, "\nEnvironment:")
			printVars(out, vars)
		}
	}
	return fs
}

func varsNamed(names ...string) []config.Var {
	var out []config.Var
	for _, v := range config.Vars {
		for _, n := range names {
			if v.Name == n || (strings.HasSuffix(n, "*") && strings.HasPrefix(v.Name, strings.TrimSuffix(n, "*"))) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

func newLogger(format, level string, out io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("SWEEPER_LOG_LEVEL: %w", err)
	}
	var enc zapcore.Encoder
	if format == "console" {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		ec := zap.NewProductionEncoderConfig()
		ec.TimeKey = "ts"
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.AddSync(out), lvl)
	return zap.New(core, zap.AddCaller()), nil
}
