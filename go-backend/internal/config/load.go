package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/redact"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/strictjson"
)

// MaxFileBytes bounds the size of a config file.
const MaxFileBytes = 1 << 20

// Sources are the inputs Load reads. Tests pass fakes; the binary passes
// os.Args[1:], os.LookupEnv, os.ReadFile and os.Stderr.
type Sources struct {
	// Args are the command-line arguments without the program name.
	Args []string
	// LookupEnv reads an environment variable (os.LookupEnv). Nil means an
	// empty environment.
	LookupEnv func(key string) (string, bool)
	// ReadFile reads the file named by --config (os.ReadFile). Nil means no
	// file can be read.
	ReadFile func(name string) ([]byte, error)
	// Usage receives the help text for -h/--help. Nil discards it.
	Usage io.Writer
	// Environ lists the environment as "KEY=value" (os.Environ), to find
	// ANYSYNC_* variables that are not settings. Nil means none.
	Environ func() []string
}

// Invocation is what the command line asked for.
type Invocation struct {
	// Config is the validated, effective configuration.
	Config Config
	// ConfigFile is the path given with --config, or "".
	ConfigFile string
	// PrintVersion is true when --version was given: print the version and
	// exit without reading stdin or listening.
	PrintVersion bool
	// UnknownEnv names the ANYSYNC_* environment variables that are not
	// settings (sorted): ignored, and worth a warning (a typo?).
	UnknownEnv []string
}

// fileConfig mirrors the config file. Pointers tell "absent" from "zero".
type fileConfig struct {
	ListenAddr       *string `json:"listenAddr"`
	LogLevel         *string `json:"logLevel"`
	MaxMessageBytes  *int64  `json:"maxMessageBytes"`
	ShutdownGrace    *string `json:"shutdownGrace"`
	BootstrapTimeout *string `json:"bootstrapTimeout"`
	AllowNonLoopback *bool   `json:"allowNonLoopback"`
	DataDir          *string `json:"dataDir"`
}

// values renders the keys present in the file as text, keyed by file key.
func (f *fileConfig) values() map[string]string {
	v := map[string]string{}
	if f.ListenAddr != nil {
		v["listenAddr"] = *f.ListenAddr
	}
	if f.LogLevel != nil {
		v["logLevel"] = *f.LogLevel
	}
	if f.MaxMessageBytes != nil {
		v["maxMessageBytes"] = strconv.FormatInt(*f.MaxMessageBytes, 10)
	}
	if f.ShutdownGrace != nil {
		v["shutdownGrace"] = *f.ShutdownGrace
	}
	if f.BootstrapTimeout != nil {
		v["bootstrapTimeout"] = *f.BootstrapTimeout
	}
	if f.AllowNonLoopback != nil {
		v["allowNonLoopback"] = strconv.FormatBool(*f.AllowNonLoopback)
	}
	if f.DataDir != nil {
		v["dataDir"] = *f.DataDir
	}
	return v
}

// ParseFile decodes config-file bytes on top of base and returns the result
// without the cross-key checks of Validate. name is used in messages. Every
// error wraps ErrInvalid.
func ParseFile(base Config, name string, data []byte) (Config, error) {
	if len(data) > MaxFileBytes {
		return base, fmt.Errorf("%w: config file %s is %d bytes; the limit is %d", ErrInvalid, redact.Text(name), len(data), MaxFileBytes)
	}
	var f fileConfig
	if err := strictjson.Unmarshal(data, &f); err != nil {
		var ke *strictjson.KeyError
		if errors.As(err, &ke) && !errors.Is(err, strictjson.ErrUnknownKey) && !errors.Is(err, strictjson.ErrDuplicateKey) {
			if k := lookup(ke.Key); k != nil {
				return base, k.errorf("config file "+name, string(ke.Raw), "%v", ke.Err)
			}
		}
		return base, fmt.Errorf("%w: config file %s: %w", ErrInvalid, redact.Text(name), err)
	}
	c := base
	vals := f.values()
	for _, k := range keys {
		if s, ok := vals[k.file]; ok {
			if err := k.set(&c, s); err != nil {
				return base, k.errorf("config file "+name, s, "%v", err)
			}
		}
	}
	return c, nil
}

func lookup(fileKey string) *key {
	for _, k := range keys {
		if k.file == fileKey {
			return k
		}
	}
	return nil
}

// Load builds the configuration from defaults, the --config file, the
// environment and the flags, in that order of precedence (flags win), and
// validates it. It returns an error wrapping ErrInvalid for any bad flag,
// file or value, or one wrapping flag.ErrHelp after writing the usage text
// to src.Usage when -h or --help was given. It never reads stdin and
// never writes to stdout.
func Load(src Sources) (*Invocation, error) {
	inv := &Invocation{}
	usage := src.Usage
	if usage == nil {
		usage = io.Discard
	}

	fs := flag.NewFlagSet("anysync-backend", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned and logged as JSON, never printed raw
	fs.Usage = func() {}
	fs.StringVar(&inv.ConfigFile, "config", "", "read settings from this JSON `file` (camelCase keys)")
	fs.BoolVar(&inv.PrintVersion, "version", false, "print the version to stdout and exit")
	flagVals := map[*key]string{}
	for _, k := range keys {
		record := func(s string) error { flagVals[k] = s; return nil }
		if k.file == "allowNonLoopback" {
			fs.BoolFunc(k.flag, k.usage, record)
		} else {
			fs.Func(k.flag, k.usage, record)
		}
	}
	if err := fs.Parse(src.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(usage, fs)
			return nil, err
		}
		// The flag package quotes the argument: shown redacted.
		return nil, fmt.Errorf("%w: %w (run with --help for the list of flags)", ErrInvalid, redact.Error(err))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %s: the backend takes flags only (run with --help)", ErrInvalid, redact.Quote(fs.Arg(0)))
	}
	if inv.PrintVersion {
		inv.Config = Default()
		return inv, nil
	}

	c := Default()
	origin := map[*key]string{}
	for _, k := range keys {
		origin[k] = "defaults"
	}

	if inv.ConfigFile != "" {
		if src.ReadFile == nil {
			return nil, fmt.Errorf("%w: cannot read config file %s", ErrInvalid, redact.Text(inv.ConfigFile))
		}
		data, err := src.ReadFile(inv.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading config file (--config): %w", ErrInvalid, redact.Error(err))
		}
		fc, err := ParseFile(c, inv.ConfigFile, data)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if k.get(fc) != k.get(c) {
				origin[k] = "config file " + inv.ConfigFile
			}
		}
		c = fc
	}

	if src.LookupEnv != nil {
		for _, k := range keys {
			s, ok := src.LookupEnv(k.env)
			if !ok || s == "" {
				continue
			}
			if err := k.set(&c, s); err != nil {
				return nil, k.errorf("environment", s, "%v", err)
			}
			origin[k] = "environment"
		}
	}

	inv.UnknownEnv = unknownEnv(src.Environ)

	for _, k := range keys {
		s, ok := flagVals[k]
		if !ok {
			continue
		}
		if err := k.set(&c, s); err != nil {
			return nil, k.errorf("flag", s, "%v", err)
		}
		origin[k] = "flag"
	}

	if err := c.validate(func(k *key) string { return origin[k] }); err != nil {
		return nil, err
	}
	inv.Config = c
	return inv, nil
}

// EnvPrefix starts the name of every environment variable of a setting.
const EnvPrefix = "ANYSYNC_"

// unknownEnv returns the sorted names of the ANYSYNC_* variables in
// environ() that are not settings.
func unknownEnv(environ func() []string) []string {
	if environ == nil {
		return nil
	}
	var unknown []string
	for _, kv := range environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || slices.Contains(unknown, name) {
			continue
		}
		known := false
		for _, k := range keys {
			known = known || k.env == name
		}
		if !known {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

func writeUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: anysync-backend [flags]\n\n")
	fmt.Fprintf(w, "Reads one bootstrap line from stdin, listens, and prints one handshake line on stdout.\n")
	fmt.Fprintf(w, "Settings: defaults < --config file < ANYSYNC_* environment < flags.\n\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nEnvironment:\n")
	for _, k := range keys {
		fmt.Fprintf(w, "  %-28s config key %q, flag --%s\n", k.env, k.file, k.flag)
	}
}
