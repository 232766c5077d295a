package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// lookalike has the shape of a token: 43 base64url characters.
const lookalike = "mF0Vq3nE4r7b1xX9kQ2pZcLw8TfYhG5sJdA6uRvN0eI"

// TestDuplicateFileKey: a key given twice in the config file is an error
// that names it, whichever value would have won.
func TestDuplicateFileKey(t *testing.T) {
	for _, file := range []string{
		`{"logLevel":"info","logLevel":"debug"}`,
		`{"logLevel":"info","maxMessageBytes":2048,"log\u004cevel":"info"}`,
	} {
		_, err := load(t, []string{"--config", "/c.json"}, nil, files{"/c.json": file})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `duplicate key "logLevel"`) || !strings.Contains(err.Error(), "/c.json") {
			t.Fatalf("%s: error = %v, want ErrInvalid naming the key and the file", file, err)
		}
	}
}

// TestErrorsNeverEchoATokenLookalike: a value that could be the token,
// given where it does not belong, is never copied into an error.
func TestErrorsNeverEchoATokenLookalike(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  env
		file string
	}{
		{"flag value", []string{"--log-level", lookalike}, nil, ""},
		{"flag value with =", []string{"--max-message-bytes=" + lookalike}, nil, ""},
		{"bearer in a flag", []string{"--listen-addr", "Bearer " + lookalike}, nil, ""},
		{"unknown flag", []string{"--" + lookalike}, nil, ""},
		{"unknown flag with value", []string{"--token=" + lookalike}, nil, ""},
		{"positional", []string{lookalike}, nil, ""},
		{"env value", nil, env{"ANYSYNC_SHUTDOWN_GRACE": lookalike}, ""},
		{"file value", nil, nil, `{"logLevel":"` + lookalike + `"}`},
		{"file value of the wrong type", nil, nil, `{"maxMessageBytes":"` + lookalike + `"}`},
		{"file key", nil, nil, `{"` + lookalike + `":"x"}`},
		{"file name", []string{"--config", "/tmp/" + lookalike + ".json"}, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := files{}
			args := tt.args
			if tt.file != "" {
				f["/c.json"] = tt.file
				args = append([]string{"--config", "/c.json"}, args...)
			}
			_, err := load(t, args, tt.env, f)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error = %v, want ErrInvalid", err)
			}
			if msg := err.Error(); strings.Contains(msg, lookalike[:16]) || strings.Contains(msg, lookalike[16:32]) {
				t.Fatalf("error %q copies the token-like value", msg)
			}
			var ce *Error
			if errors.As(err, &ce) && !strings.Contains(err.Error(), ce.Key) {
				t.Fatalf("error %q does not name its key", err)
			}
		})
	}
}

// TestUnknownEnvironmentVariables: ANYSYNC_* variables that are not
// settings are reported by name (for a warning), never refused.
func TestUnknownEnvironmentVariables(t *testing.T) {
	e := env{"ANYSYNC_LOG_LEVEL": "warn"}
	inv, err := Load(Sources{
		LookupEnv: e.lookup,
		Environ: func() []string {
			return []string{"PATH=/bin", "ANYSYNC_LOG_LEVEL=warn", "ANYSYNC_LOG_LEVLE=debug", "ANYSYNC_TOKEN=" + lookalike, "ANYSYNC_LOG_LEVLE=x", "anysync_lower=1"}
		},
	})
	if err != nil {
		t.Fatalf("Load = %v, want success despite unknown variables", err)
	}
	if want := []string{"ANYSYNC_LOG_LEVLE", "ANYSYNC_TOKEN"}; !slices.Equal(inv.UnknownEnv, want) {
		t.Fatalf("UnknownEnv = %q, want %q", inv.UnknownEnv, want)
	}
	if inv.Config.LogLevel.String() != "WARN" {
		t.Fatalf("level = %v", inv.Config.LogLevel)
	}
}
