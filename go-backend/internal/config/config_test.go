package config

import (
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// env is a fake environment.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// files is a fake file system for --config.
type files map[string]string

func (f files) read(name string) ([]byte, error) {
	if s, ok := f[name]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

func load(t *testing.T, args []string, e env, f files) (*Invocation, error) {
	t.Helper()
	return Load(Sources{Args: args, LookupEnv: e.lookup, ReadFile: f.read})
}

func TestDefaults(t *testing.T) {
	inv, err := load(t, nil, nil, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := Config{
		ListenAddr:       "127.0.0.1:0",
		LogLevel:         slog.LevelInfo,
		MaxMessageBytes:  4194304,
		ShutdownGrace:    5 * time.Second,
		BootstrapTimeout: 10 * time.Second,
	}
	if inv.Config != want {
		t.Fatalf("defaults = %+v, want %+v", inv.Config, want)
	}
	if inv.Config != Default() || Default().Validate() != nil {
		t.Fatal("Default() differs from Load's defaults or is invalid")
	}
	if inv.PrintVersion || inv.ConfigFile != "" {
		t.Fatalf("unexpected invocation %+v", inv)
	}
}

// TestPrecedence sets every key in each layer and checks that each layer
// overrides exactly the layers below it: defaults < file < env < flags.
func TestPrecedence(t *testing.T) {
	file := files{"/c.json": `{
		"listenAddr": "127.0.0.2:1001",
		"logLevel": "warn",
		"maxMessageBytes": 2048,
		"shutdownGrace": "1s",
		"bootstrapTimeout": "1s",
		"allowNonLoopback": true
	}`}
	environ := env{
		"ANYSYNC_LISTEN_ADDR":       "127.0.0.3:1002",
		"ANYSYNC_LOG_LEVEL":         "error",
		"ANYSYNC_MAX_MESSAGE_BYTES": "4096",
		"ANYSYNC_SHUTDOWN_GRACE":    "2s",
		"ANYSYNC_BOOTSTRAP_TIMEOUT": "2s",
	}
	flags := []string{
		"--config", "/c.json",
		"--listen-addr", "[::1]:1003",
		"--log-level=debug",
		"--max-message-bytes", "8192",
		"-shutdown-grace", "3s",
		"--allow-non-loopback=false",
	}

	tests := []struct {
		name  string
		args  []string
		env   env
		check func(Config) bool
	}{
		{"file over defaults", []string{"--config", "/c.json"}, nil, func(c Config) bool {
			return c == Config{"127.0.0.2:1001", slog.LevelWarn, 2048, time.Second, time.Second, true, ""}
		}},
		{"env over file", []string{"--config", "/c.json"}, environ, func(c Config) bool {
			return c == Config{"127.0.0.3:1002", slog.LevelError, 4096, 2 * time.Second, 2 * time.Second, true, ""}
		}},
		{"flags over env", flags, environ, func(c Config) bool {
			// bootstrapTimeout has no flag here: env still wins over file.
			return c == Config{"[::1]:1003", slog.LevelDebug, 8192, 3 * time.Second, 2 * time.Second, false, ""}
		}},
		{"env over defaults", nil, env{"ANYSYNC_ALLOW_NON_LOOPBACK": "1", "ANYSYNC_LISTEN_ADDR": "0.0.0.0:0"}, func(c Config) bool {
			return c.AllowNonLoopback && c.ListenAddr == "0.0.0.0:0" && c.LogLevel == slog.LevelInfo
		}},
		{"empty env is unset", nil, env{"ANYSYNC_LOG_LEVEL": "", "ANYSYNC_LISTEN_ADDR": ""}, func(c Config) bool {
			return c == Default()
		}},
		{"bare bool flag", []string{"--allow-non-loopback", "--listen-addr", "192.0.2.1:0"}, nil, func(c Config) bool {
			return c.AllowNonLoopback && c.ListenAddr == "192.0.2.1:0"
		}},
		{"level case-insensitive", []string{"--log-level", "WARN"}, nil, func(c Config) bool {
			return c.LogLevel == slog.LevelWarn
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := load(t, tt.args, tt.env, file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(inv.Config) {
				t.Fatalf("unexpected config %+v", inv.Config)
			}
		})
	}
}

// TestInvalidValues checks that every bad value, from every source, fails
// with an *Error wrapping ErrInvalid that names the file key and the env
// variable, says where the value came from, and lists what is allowed.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      env
		file     string
		key      string
		source   string
		contains string
	}{
		{"level flag", []string{"--log-level", "verbose"}, nil, "", "logLevel", "flag", "debug, info, warn, error"},
		{"level env", nil, env{"ANYSYNC_LOG_LEVEL": "trace"}, "", "logLevel", "environment", "debug, info, warn, error"},
		{"level file", nil, nil, `{"logLevel":"loud"}`, "logLevel", "config file /c.json", "debug, info, warn, error"},
		{"level file type", nil, nil, `{"logLevel":3}`, "logLevel", "config file /c.json", "expected a JSON string"},
		{"size low", []string{"--max-message-bytes", "1023"}, nil, "", "maxMessageBytes", "flag", "from 1024 to 268435456"},
		{"size high", nil, env{"ANYSYNC_MAX_MESSAGE_BYTES": "268435457"}, "", "maxMessageBytes", "environment", "out of range"},
		{"size text", nil, env{"ANYSYNC_MAX_MESSAGE_BYTES": "4MB"}, "", "maxMessageBytes", "environment", "not an integer"},
		{"size file string", nil, nil, `{"maxMessageBytes":"4096"}`, "maxMessageBytes", "config file /c.json", "expected a JSON integer"},
		{"size file huge", nil, nil, `{"maxMessageBytes":1e30}`, "maxMessageBytes", "config file /c.json", "expected a JSON integer"},
		{"grace unit", []string{"--shutdown-grace", "5"}, nil, "", "shutdownGrace", "flag", "not a Go duration"},
		{"grace negative", nil, env{"ANYSYNC_SHUTDOWN_GRACE": "-1s"}, "", "shutdownGrace", "environment", "out of range"},
		{"grace huge", nil, nil, `{"shutdownGrace":"11m"}`, "shutdownGrace", "config file /c.json", "from 0s to 10m0s"},
		{"bootstrap tiny", []string{"--bootstrap-timeout", "1ms"}, nil, "", "bootstrapTimeout", "flag", "from 10ms to 10m0s"},
		{"bool", nil, env{"ANYSYNC_ALLOW_NON_LOOPBACK": "yes"}, "", "allowNonLoopback", "environment", "true or false"},
		{"bool flag", []string{"--allow-non-loopback=maybe"}, nil, "", "allowNonLoopback", "flag", "true or false"},
		{"bool file", nil, nil, `{"allowNonLoopback":"true"}`, "allowNonLoopback", "config file /c.json", "expected a JSON boolean"},
		{"addr no port", []string{"--listen-addr", "127.0.0.1"}, nil, "", "listenAddr", "flag", "not host:port"},
		{"addr bad port", nil, env{"ANYSYNC_LISTEN_ADDR": "127.0.0.1:70000"}, "", "listenAddr", "environment", "0 to 65535"},
		{"addr localhost", []string{"--listen-addr", "localhost:0"}, nil, "", "listenAddr", "flag", "use the IP literal 127.0.0.1"},
		{"addr LOCALHOST", nil, env{"ANYSYNC_LISTEN_ADDR": "LocalHost:8080"}, "", "listenAddr", "environment", "127.0.0.1"},
		{"addr wildcard", nil, nil, `{"listenAddr":":0"}`, "listenAddr", "config file /c.json", "every interface"},
		{"addr any v4", []string{"--listen-addr", "0.0.0.0:0"}, nil, "", "listenAddr", "flag", "0.0.0.0 is not a loopback address"},
		{"addr any v6", []string{"--listen-addr", "[::]:0"}, nil, "", "listenAddr", "flag", "not a loopback"},
		{"addr lan", []string{"--listen-addr", "192.168.1.2:0"}, nil, "", "listenAddr", "flag", "allowNonLoopback"},
		{"addr host name", []string{"--listen-addr", "example.com:0"}, nil, "", "listenAddr", "flag", "not an IP literal"},
		// The loopback rule is checked after all layers: a file that
		// allows non-loopback can be overridden by a flag.
		{"addr allow revoked", []string{"--allow-non-loopback=false"}, nil, `{"listenAddr":"0.0.0.0:0","allowNonLoopback":true}`, "listenAddr", "config file /c.json", "not a loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := files{}
			args := tt.args
			if tt.file != "" {
				f["/c.json"] = tt.file
				args = append([]string{"--config", "/c.json"}, args...)
			}
			_, err := load(t, args, tt.env, f)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.contains) {
				t.Errorf("error %q does not contain %q", msg, tt.contains)
			}
			if tt.key == "" {
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *config.Error", err)
			}
			k := lookup(tt.key)
			if ce.Key != tt.key || ce.Env != k.env || ce.Flag != "--"+k.flag || ce.Source != tt.source {
				t.Errorf("error names %q/%q/%q from %q, want %q/%q/--%s from %q", ce.Key, ce.Env, ce.Flag, ce.Source, tt.key, k.env, k.flag, tt.source)
			}
			for _, s := range []string{tt.key, k.env, "allowed:"} {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not name %q", msg, s)
				}
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name, file, contains string
	}{
		{"unknown key", `{"listenAddress":"127.0.0.1:0"}`, `unknown key "listenAddress"`},
		{"wrong case", `{"LogLevel":"info"}`, `unknown key "LogLevel" (allowed keys, case-sensitive: allowNonLoopback, bootstrapTimeout, dataDir, listenAddr, logLevel, maxMessageBytes, shutdownGrace)`},
		{"not json", `listenAddr = "x"`, "not a JSON object"},
		{"array", `[]`, "not a JSON object"},
		{"null value", `{"logLevel":null}`, "must not be null"},
		{"too big", "{" + strings.Repeat(" ", MaxFileBytes) + "}", "the limit is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", "/c.json"}, nil, files{"/c.json": tt.file})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.contains) {
				t.Fatalf("error = %v, want ErrInvalid containing %q", err, tt.contains)
			}
			if !strings.Contains(err.Error(), "/c.json") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := load(t, []string{"--config", "/nope.json"}, nil, files{})
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "--config") {
			t.Fatalf("error = %v, want ErrInvalid and ErrNotExist naming --config", err)
		}
	})
}

func TestCommandLine(t *testing.T) {
	t.Run("version", func(t *testing.T) {
		// --version wins even over settings that would be invalid.
		inv, err := load(t, []string{"--version"}, env{"ANYSYNC_LOG_LEVEL": "bad"}, nil)
		if err != nil || !inv.PrintVersion {
			t.Fatalf("Load(--version) = %+v, %v", inv, err)
		}
	})
	t.Run("help", func(t *testing.T) {
		var usage bytes.Buffer
		_, err := Load(Sources{Args: []string{"-h"}, Usage: &usage})
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("error = %v, want flag.ErrHelp", err)
		}
		for _, s := range []string{"--listen-addr", "-max-message-bytes", "ANYSYNC_SHUTDOWN_GRACE", "Usage:"} {
			if !strings.Contains(usage.String(), s) {
				t.Errorf("usage lacks %q:\n%s", s, usage.String())
			}
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		_, err := load(t, []string{"--listen", "x"}, nil, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "-listen") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("positional", func(t *testing.T) {
		_, err := load(t, []string{"serve"}, nil, nil)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"serve"`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("nil sources", func(t *testing.T) {
		if _, err := Load(Sources{}); err != nil {
			t.Fatalf("Load(Sources{}) = %v", err)
		}
		if _, err := Load(Sources{Args: []string{"--config", "x"}}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("--config without ReadFile: %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	c := Default()
	c.MaxMessageBytes = 10
	var ce *Error
	if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "maxMessageBytes" {
		t.Fatalf("Validate() = %v, want maxMessageBytes error", err)
	}
	c = Default()
	c.LogLevel = slog.Level(3)
	if err := c.Validate(); !errors.As(err, &ce) || ce.Key != "logLevel" {
		t.Fatalf("Validate() = %v, want logLevel error", err)
	}
	c = Default()
	c.ListenAddr = "[::ffff:127.0.0.1]:0" // v4-mapped loopback is loopback
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate(%s) = %v", c.ListenAddr, err)
	}
}

func TestLogValueHasEveryKey(t *testing.T) {
	v := Default().LogValue()
	var got []string
	for _, a := range v.Group() {
		got = append(got, a.Key)
	}
	for _, k := range keys {
		if !strings.Contains(strings.Join(got, ","), k.file) {
			t.Errorf("LogValue lacks %q", k.file)
		}
	}
}

// FuzzLoadConfig feeds arbitrary bytes as the --config file. Load must
// never panic, and must either fail with ErrInvalid or return a
// configuration that passes Validate.
func FuzzLoadConfig(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"listenAddr":"127.0.0.1:0","logLevel":"debug","maxMessageBytes":1024,"shutdownGrace":"0s","bootstrapTimeout":"10ms","allowNonLoopback":false}`,
		`{"listenAddr":"0.0.0.0:1","allowNonLoopback":true}`,
		`{"listenAddr":"localhost:0"}`,
		`{"maxMessageBytes":268435457}`,
		`{"maxMessageBytes":-1}`,
		`{"shutdownGrace":"1h"}`,
		`{"logLevel":null}`,
		`{"LogLevel":"info"}`,
		`{"logLevel":"info","logLevel":"bad"}`,
		`[]`, `null`, `"x"`, ``, `{`, "\x00", `{"a":1}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Load(Sources{
			Args:     []string{"--config", "fuzz.json"},
			ReadFile: func(string) ([]byte, error) { return data, nil },
		})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := inv.Config.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate rejects: %+v: %v", inv.Config, err)
		}
	})
}
