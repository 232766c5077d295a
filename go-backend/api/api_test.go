package api_test

import (
	"regexp"
	"testing"

	"github.com/anysync/tauri-plugin-anysync/go-backend/api"
)

func TestInfo(t *testing.T) {
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(api.Version()) {
		t.Fatalf("Version() = %q, want semver", api.Version())
	}
	if api.ProtocolVersion() != 1 {
		t.Fatalf("ProtocolVersion() = %d", api.ProtocolVersion())
	}
	if got := api.GetInfo(); got == nil || got.Version != api.Version() || got.ProtocolVersion != 1 {
		t.Fatalf("GetInfo() = %+v", got)
	}
}
