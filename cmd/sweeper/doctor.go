package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/sweeperhq/sweeper/internal/config"
	"github.com/sweeperhq/sweeper/internal/doctor"
)

// errChecksFailed: the report already printed why; run exits 1.
var errChecksFailed = errors.New("a check failed (FAIL lines above)")

func runDoctor(ctx context.Context, env config.Getenv, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("doctor", "First contact with an Interlace account (contract §10). With the service's own configuration it\n"+
		"checks the database, the token endpoints (which style answers, strict mode), the Infinity balance\n"+
		"discovery, the transfer list and the signatures of deliveries the service refused with 401, and\n"+
		"prints one line per check: ok, FAIL or WARN, what it saw and what to set. It moves no money (token\n"+
		"calls and GETs only). Exit status 1 when any line is FAIL.", stdout, config.Vars)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(env, config.Need{Database: true, Interlace: true})
	if err != nil {
		return err
	}
	rep := doctor.Run(ctx, cfg, doctor.Options{})
	if err := rep.Write(stdout); err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	if rep.Failed() {
		return errChecksFailed
	}
	return nil
}
