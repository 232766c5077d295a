package config

import (
	"bytes"
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"
)

// FuzzLoadEnvAndFlags feeds arbitrary command lines (arguments separated
// by NUL) and ANYSYNC_* values to Load; FuzzLoadConfig covers the file.
// Load must never panic; it either fails with ErrInvalid (or flag.ErrHelp
// after writing the usage), or returns a configuration that passes
// Validate, listens on a loopback address unless allowNonLoopback is on,
// and takes each key from the highest-precedence source that set it.
func FuzzLoadEnvAndFlags(f *testing.F) {
	for _, seed := range []struct{ args, addr, level, bytes, grace, boot, allow string }{
		{"", "", "", "", "", "", ""},
		{"--listen-addr=127.0.0.1:0\x00--log-level\x00debug", "", "", "", "", "", ""},
		{"-listen-addr\x00[::1]:9\x00--allow-non-loopback", "0.0.0.0:1", "warn", "1024", "0s", "10ms", "false"},
		{"--allow-non-loopback=false", "0.0.0.0:1", "", "", "", "", "1"},
		{"--max-message-bytes=268435457", "", "", "", "", "", ""},
		{"--shutdown-grace=-1s\x00--bootstrap-timeout=1ns", "", "", "", "", "", ""},
		{"--config", "", "", "", "", "", ""},
		{"--config=x.json\x00--version", "", "", "", "", "", ""},
		{"-h", "", "", "", "", "", ""},
		{"--help\x00extra", "", "", "", "", "", ""},
		{"positional", "", "", "", "", "", ""},
		{"--listen-addr=[::ffff:127.0.0.1]:0", "localhost:0", " INFO ", " 4096 ", "1h", "10m0s", "TRUE"},
		{"--listen-addr=[::1%lo]:0", "[fe80::1%eth0]:0", "", "", "", "", ""},
		{"--listen-addr=127.0.0.1:65536", ":0", "", "9e9", "5", "1e3s", "yes"},
	} {
		f.Add(seed.args, seed.addr, seed.level, seed.bytes, seed.grace, seed.boot, seed.allow)
	}
	f.Fuzz(func(t *testing.T, args, addr, level, maxBytes, grace, boot, allow string) {
		e := env{
			"ANYSYNC_LISTEN_ADDR":        addr,
			"ANYSYNC_LOG_LEVEL":          level,
			"ANYSYNC_MAX_MESSAGE_BYTES":  maxBytes,
			"ANYSYNC_SHUTDOWN_GRACE":     grace,
			"ANYSYNC_BOOTSTRAP_TIMEOUT":  boot,
			"ANYSYNC_ALLOW_NON_LOOPBACK": allow,
		}
		var argv []string
		if args != "" {
			argv = strings.Split(args, "\x00")
		}
		var usage bytes.Buffer
		inv, err := Load(Sources{
			Args:      argv,
			LookupEnv: e.lookup,
			ReadFile:  files{"x.json": `{"logLevel":"error"}`}.read,
			Usage:     &usage,
		})
		if errors.Is(err, flag.ErrHelp) {
			if usage.Len() == 0 {
				t.Fatal("help requested but no usage written")
			}
			return
		}
		if usage.Len() != 0 {
			t.Fatalf("usage written without a help request: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v wraps neither ErrInvalid nor flag.ErrHelp", err)
			}
			return
		}
		c := inv.Config
		if err := c.Validate(); err != nil {
			t.Fatalf("Load returned %+v, which Validate rejects: %v", c, err)
		}
		if !c.AllowNonLoopback {
			host, _, err := splitHostPort(c.ListenAddr)
			ip, perr := netip.ParseAddr(host)
			if err != nil || perr != nil || !ip.Unmap().IsLoopback() {
				t.Fatalf("non-loopback listen address %q accepted without allowNonLoopback", c.ListenAddr)
			}
		}
		// An environment value that Load accepted is in force unless a flag
		// (or --version) set the same key.
		if !inv.PrintVersion && strings.TrimSpace(level) != "" && !strings.Contains(args, "log-level") {
			if want, _ := parseLevel(level); c.LogLevel != want {
				t.Fatalf("ANYSYNC_LOG_LEVEL=%q gave level %v", level, c.LogLevel)
			}
		}
	})
}
