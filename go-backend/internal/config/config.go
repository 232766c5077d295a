// Package config loads and validates the backend's configuration.
//
// Sources, later ones overriding earlier ones key by key:
//
//  1. embedded defaults (Default);
//  2. an optional JSON config file named by --config (camelCase keys,
//     unknown keys rejected);
//  3. ANYSYNC_* environment variables (an empty variable counts as unset);
//  4. command-line flags.
//
// Every invalid value is an *Error that names the key in all three
// spellings (file key, environment variable, flag), where the value came
// from, and what is allowed. All configuration errors wrap ErrInvalid.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/redact"
)

// ErrInvalid is wrapped by every error that Load and Validate return for a
// bad configuration (as opposed to a bad environment, such as a port in
// use). The backend exits with code 2 for it.
var ErrInvalid = errors.New("invalid configuration")

// Bounds of the numeric settings, inclusive.
const (
	MinMessageBytes     = 1024
	MaxMessageBytes     = 256 << 20 // 268435456
	MaxShutdownGrace    = 10 * time.Minute
	MinBootstrapTimeout = 10 * time.Millisecond
	MaxBootstrapTimeout = 10 * time.Minute
)

// Config is the backend's effective configuration. Use Default for the
// embedded defaults and Validate before relying on a hand-built value; Load
// returns only validated values.
type Config struct {
	// ListenAddr is the TCP host:port to listen on. Port 0 lets the kernel
	// choose a free port, which is reported in the handshake line.
	ListenAddr string
	// LogLevel is the minimum level of the JSON log records on stderr.
	LogLevel slog.Level
	// MaxMessageBytes bounds every received and sent gRPC message.
	MaxMessageBytes int
	// ShutdownGrace is how long a graceful stop may wait for in-flight
	// calls before they are cut off.
	ShutdownGrace time.Duration
	// BootstrapTimeout is how long the backend waits for the bootstrap line
	// on stdin before giving up.
	BootstrapTimeout time.Duration
	// AllowNonLoopback permits a ListenAddr outside 127.0.0.0/8 and ::1.
	AllowNonLoopback bool
	// DataDir is the directory the document store keeps its spaces in
	// (<DataDir>/spaces/<name>.sqlite); "" (the default) disables the store.
	DataDir string
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		ListenAddr:       "127.0.0.1:0",
		LogLevel:         slog.LevelInfo,
		MaxMessageBytes:  4 << 20, // 4194304
		ShutdownGrace:    5 * time.Second,
		BootstrapTimeout: 10 * time.Second,
		AllowNonLoopback: false,
	}
}

// LogValue renders the configuration for the startup log record. The
// configuration holds no secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("listenAddr", c.ListenAddr),
		slog.String("logLevel", levelName(c.LogLevel)),
		slog.Int("maxMessageBytes", c.MaxMessageBytes),
		slog.String("shutdownGrace", c.ShutdownGrace.String()),
		slog.String("bootstrapTimeout", c.BootstrapTimeout.String()),
		slog.Bool("allowNonLoopback", c.AllowNonLoopback),
		slog.String("dataDir", c.DataDir),
	)
}

// Validate reports the first invalid setting of c as an *Error (which wraps
// ErrInvalid), or nil. It checks every bound that Load checks, so a Config
// built by hand gets the same guarantees.
func (c Config) Validate() error {
	return c.validate(func(k *key) string { return "" })
}

// validate checks c; origin tells, for the error message, where a key's
// value came from.
func (c Config) validate(origin func(*key) string) error {
	for _, k := range keys {
		if err := k.check(c); err != nil {
			return k.errorf(origin(k), k.get(c), "%v", err)
		}
	}
	return nil
}

// key describes one setting in all its spellings, and how to parse and
// check it. Parsing turns text (from the environment, a flag, or a file
// value rendered as text) into the field; checking enforces bounds.
type key struct {
	file, env, flag string
	// allowed describes the valid values, for error messages and usage.
	allowed string
	// usage is the flag's help text.
	usage string
	// set parses s into c, or reports why it cannot.
	set func(c *Config, s string) error
	// get renders c's value as text, for error messages.
	get func(c Config) string
	// check reports why c's value is out of bounds, or nil.
	check func(c Config) error
}

func (k *key) errorf(source, value, format string, args ...any) *Error {
	return &Error{
		Key:     k.file,
		Env:     k.env,
		Flag:    "--" + k.flag,
		Source:  source,
		Value:   value,
		Reason:  fmt.Sprintf(format, args...),
		Allowed: k.allowed,
	}
}

// keys is the table of every setting, in the order the documentation and
// the usage text list them.
var keys = []*key{
	{
		file: "listenAddr", env: "ANYSYNC_LISTEN_ADDR", flag: "listen-addr",
		allowed: `host:port with a loopback IP (127.0.0.0/8 or ::1), e.g. "127.0.0.1:0" (port 0 lets the kernel choose); other hosts need allowNonLoopback`,
		usage:   "TCP `host:port` to listen on; port 0 lets the kernel choose",
		set: func(c *Config, s string) error {
			if _, _, err := splitHostPort(s); err != nil {
				return err
			}
			c.ListenAddr = s
			return nil
		},
		get:   func(c Config) string { return c.ListenAddr },
		check: func(c Config) error { return checkListenAddr(c.ListenAddr, c.AllowNonLoopback) },
	},
	{
		file: "logLevel", env: "ANYSYNC_LOG_LEVEL", flag: "log-level",
		allowed: "one of debug, info, warn, error",
		usage:   "minimum `level` of log records on stderr: debug, info, warn or error",
		set: func(c *Config, s string) error {
			l, err := parseLevel(s)
			if err != nil {
				return err
			}
			c.LogLevel = l
			return nil
		},
		get: func(c Config) string { return levelName(c.LogLevel) },
		check: func(c Config) error {
			if _, err := parseLevel(levelName(c.LogLevel)); err != nil {
				return err
			}
			return nil
		},
	},
	{
		file: "maxMessageBytes", env: "ANYSYNC_MAX_MESSAGE_BYTES", flag: "max-message-bytes",
		allowed: fmt.Sprintf("an integer from %d to %d", MinMessageBytes, MaxMessageBytes),
		usage:   "maximum size in `bytes` of a received or sent gRPC message",
		set: func(c *Config, s string) error {
			n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err != nil {
				return errors.New("not an integer")
			}
			if n < MinMessageBytes || n > MaxMessageBytes {
				return errors.New("out of range")
			}
			c.MaxMessageBytes = int(n)
			return nil
		},
		get: func(c Config) string { return strconv.Itoa(c.MaxMessageBytes) },
		check: func(c Config) error {
			if c.MaxMessageBytes < MinMessageBytes || c.MaxMessageBytes > MaxMessageBytes {
				return errors.New("out of range")
			}
			return nil
		},
	},
	{
		file: "shutdownGrace", env: "ANYSYNC_SHUTDOWN_GRACE", flag: "shutdown-grace",
		allowed: fmt.Sprintf(`a Go duration from 0s to %v, e.g. "5s" or "500ms"`, MaxShutdownGrace),
		usage:   "how long a graceful stop waits for in-flight calls (Go `duration`)",
		set: func(c *Config, s string) error {
			d, err := parseDuration(s, 0, MaxShutdownGrace)
			if err != nil {
				return err
			}
			c.ShutdownGrace = d
			return nil
		},
		get: func(c Config) string { return c.ShutdownGrace.String() },
		check: func(c Config) error {
			return checkDuration(c.ShutdownGrace, 0, MaxShutdownGrace)
		},
	},
	{
		file: "bootstrapTimeout", env: "ANYSYNC_BOOTSTRAP_TIMEOUT", flag: "bootstrap-timeout",
		allowed: fmt.Sprintf(`a Go duration from %v to %v, e.g. "10s"`, MinBootstrapTimeout, MaxBootstrapTimeout),
		usage:   "how long to wait for the bootstrap line on stdin (Go `duration`)",
		set: func(c *Config, s string) error {
			d, err := parseDuration(s, MinBootstrapTimeout, MaxBootstrapTimeout)
			if err != nil {
				return err
			}
			c.BootstrapTimeout = d
			return nil
		},
		get: func(c Config) string { return c.BootstrapTimeout.String() },
		check: func(c Config) error {
			return checkDuration(c.BootstrapTimeout, MinBootstrapTimeout, MaxBootstrapTimeout)
		},
	},
	{
		file: "allowNonLoopback", env: "ANYSYNC_ALLOW_NON_LOOPBACK", flag: "allow-non-loopback",
		allowed: "true or false",
		usage:   "allow a listen address outside 127.0.0.0/8 and ::1 (exposes the backend to the network)",
		set: func(c *Config, s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return errors.New("not a boolean")
			}
			c.AllowNonLoopback = b
			return nil
		},
		get:   func(c Config) string { return strconv.FormatBool(c.AllowNonLoopback) },
		check: func(Config) error { return nil },
	},
	{
		file: "dataDir", env: "ANYSYNC_DATA_DIR", flag: "data-dir",
		allowed: `an absolute directory path (created when missing), or "" to disable the document store`,
		usage:   "`directory` of the document store's spaces (<dir>/spaces/<name>.sqlite); empty disables the store",
		set: func(c *Config, s string) error {
			c.DataDir = s
			return checkDataDir(s)
		},
		get:   func(c Config) string { return c.DataDir },
		check: func(c Config) error { return checkDataDir(c.DataDir) },
	},
}

// checkDataDir accepts "" (no store) or an absolute, clean-enough path: a
// relative one would depend on the working directory the plugin happens to
// start the sidecar in.
func checkDataDir(s string) error {
	if s == "" {
		return nil
	}
	if !filepath.IsAbs(s) {
		return errors.New("not an absolute path")
	}
	if strings.ContainsRune(s, 0) {
		return errors.New("contains a NUL byte")
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("unknown level")
}

func levelName(l slog.Level) string {
	switch l {
	case slog.LevelDebug:
		return "debug"
	case slog.LevelInfo:
		return "info"
	case slog.LevelWarn:
		return "warn"
	case slog.LevelError:
		return "error"
	}
	return l.String()
}

func parseDuration(s string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("not a Go duration (a number with a unit: ms, s, m, h)")
	}
	if err := checkDuration(d, lo, hi); err != nil {
		return 0, err
	}
	return d, nil
}

func checkDuration(d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return errors.New("out of range")
	}
	return nil
}

// splitHostPort splits s and checks that the port is a number in 0..65535.
func splitHostPort(s string) (host string, port uint16, err error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, errors.New("not host:port")
	}
	p, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return "", 0, errors.New("the port is not a number from 0 to 65535")
	}
	return host, uint16(p), nil
}

// checkListenAddr enforces the loopback rule: unless allowNonLoopback, the
// host must be an IP literal in 127.0.0.0/8 or ::1. The name "localhost" is
// refused because it may resolve to ::1 on one machine and 127.0.0.1 (or
// something else entirely) on another; the handshake must report the
// address that was really bound.
func checkListenAddr(addr string, allowNonLoopback bool) error {
	host, _, err := splitHostPort(addr)
	if err != nil {
		return err
	}
	if allowNonLoopback {
		return nil
	}
	if host == "" {
		return errors.New("an empty host listens on every interface; use 127.0.0.1, or set allowNonLoopback")
	}
	if strings.EqualFold(host, "localhost") {
		return errors.New(`host names are not accepted, "localhost" included: use the IP literal 127.0.0.1`)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return errors.New("the host is not an IP literal; use 127.0.0.1, or set allowNonLoopback")
	}
	if !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%s is not a loopback address; use 127.0.0.1, or set allowNonLoopback to expose the backend", ip)
	}
	return nil
}

// Error is an invalid configuration value. It wraps ErrInvalid.
type Error struct {
	// Key is the config-file key, e.g. "logLevel".
	Key string
	// Env is the environment variable, e.g. "ANYSYNC_LOG_LEVEL".
	Env string
	// Flag is the command-line flag, e.g. "--log-level".
	Flag string
	// Source says where the bad value came from, e.g. "environment" or
	// "config file /etc/anysync.json"; empty when unknown.
	Source string
	// Value is the rejected value as text. It may be anything the user
	// gave, even the token by mistake: Error shows it only redacted (see
	// package redact), and so must any other use.
	Value string
	// Reason says what is wrong with Value.
	Reason string
	// Allowed describes the valid values.
	Allowed string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s (%s, %s)", e.Key, e.Env, e.Flag)
	// Source (a file name) and Value come from the user: they are shown
	// redacted, so that no error copies what could be the token.
	if e.Source != "" {
		fmt.Fprintf(&b, " from %s", redact.Text(e.Source))
	}
	fmt.Fprintf(&b, ": %s: %s; allowed: %s", redact.Quote(e.Value), e.Reason, e.Allowed)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }
