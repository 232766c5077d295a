package server

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
)

// TestTokenIsCheckedBeforeTheMessageIsRead: a caller without the token is
// refused when its headers arrive, so the server never reads its message
// (an oversized one is UNAUTHENTICATED, not RESOURCE_EXHAUSTED, which is
// decided by reading it) and never tells it which methods exist.
func TestTokenIsCheckedBeforeTheMessageIsRead(t *testing.T) {
	f := newFixture(t, 1024)
	huge := &pb.PingRequest{Message: strings.Repeat("x", 4096)}
	tests := []struct {
		name   string
		method string
		token  string
		want   codes.Code
	}{
		{"oversized, no token", "/anysync.v1.HealthService/Ping", "", codes.Unauthenticated},
		{"oversized, wrong token", "/anysync.v1.HealthService/Ping", "Bearer " + strings.Repeat("B", 43), codes.Unauthenticated},
		{"oversized, right token", "/anysync.v1.HealthService/Ping", "Bearer " + testToken, codes.ResourceExhausted},
		{"unknown method, no token", "/anysync.v1.HealthService/Shutdown", "", codes.Unauthenticated},
		{"unknown service, no token", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "", codes.Unauthenticated},
		{"unknown method, right token", "/anysync.v1.HealthService/Shutdown", "Bearer " + testToken, codes.Unimplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxWithDeadline(t)
			if tt.token != "" {
				ctx = withToken(ctx, tt.token)
			}
			err := f.conn.Invoke(ctx, tt.method, huge, new(pb.PingResponse))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("%s = %v, want %v", tt.method, err, tt.want)
			}
		})
	}

	// A refused call leaves the same debug record as any other call, with
	// the method cut to a bounded length, and never a token.
	long := "/" + strings.Repeat("m", 1000)
	_ = f.conn.Invoke(withToken(ctxWithDeadline(t), "Bearer "+strings.Repeat("C", 43)), long, huge, new(pb.PingResponse))
	var refused map[string]any
	for _, r := range f.logs.Records(t) {
		if r["msg"] == "rpc" && strings.HasPrefix(r["method"].(string), "/mmm") {
			refused = r
		}
		for _, v := range r {
			if s, ok := v.(string); ok && (strings.Contains(s, testToken) || strings.Contains(s, strings.Repeat("C", 43))) {
				t.Fatalf("log record leaks a token: %v", r)
			}
		}
	}
	if refused == nil || refused["code"] != "Unauthenticated" || len(refused["method"].(string)) > maxLoggedMethod+len("…") {
		t.Fatalf("record of the refused call = %v", refused)
	}
}
