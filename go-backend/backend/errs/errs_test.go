package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/anysync/tauri-plugin-anysync/go-backend/backend/errs"
)

// domainErr is a domain package's own error type carrying a kind.
type domainErr struct{ name string }

func (e *domainErr) Error() string        { return "no space " + e.name }
func (e *domainErr) ErrorKind() errs.Kind { return errs.NotFound }

// noKind implements Kinded but reports Unknown.
type noKind struct{ err error }

func (e noKind) Error() string        { return "no kind: " + e.err.Error() }
func (e noKind) ErrorKind() errs.Kind { return errs.Unknown }
func (e noKind) Unwrap() error        { return e.err }

func TestKindOf(t *testing.T) {
	base := errs.New(errs.Aborted, "revision %d changed", 7)
	tests := []struct {
		name string
		err  error
		kind errs.Kind
		text string
	}{
		{"nil", nil, errs.Unknown, ""},
		{"plain", errors.New("x"), errs.Unknown, "x"},
		{"context", context.Canceled, errs.Unknown, "context canceled"},
		{"New", base, errs.Aborted, "revision 7 changed"},
		{"wrapped with fmt", fmt.Errorf("saving: %w", base), errs.Aborted, "saving: revision 7 changed"},
		{"Wrap", errs.Wrap(errs.Unavailable, io.ErrUnexpectedEOF, "reading"), errs.Unavailable, "reading: unexpected EOF"},
		{"Wrap empty msg", errs.Wrap(errs.DataLoss, io.EOF, ""), errs.DataLoss, "EOF"},
		{"Wrap overrides inner kind", errs.Wrap(errs.Internal, base, "outer"), errs.Internal, "outer: revision 7 changed"},
		{"domain type", fmt.Errorf("open: %w", &domainErr{"a"}), errs.NotFound, "open: no space a"},
		{"Unknown Kinded looks below", noKind{base}, errs.Aborted, "no kind: revision 7 changed"},
		{"joined", errors.Join(errors.New("first"), base), errs.Aborted, "first\nrevision 7 changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errs.KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %v, want %v", got, tt.kind)
			}
			if !errs.Is(tt.err, tt.kind) {
				t.Errorf("Is(%v) = false", tt.kind)
			}
			if tt.err != nil && tt.err.Error() != tt.text {
				t.Errorf("text %q, want %q", tt.err.Error(), tt.text)
			}
		})
	}
}

func TestWrapKeepsTheChain(t *testing.T) {
	if errs.Wrap(errs.NotFound, nil, "x") != nil {
		t.Fatal("Wrap(nil) is not nil")
	}
	err := errs.Wrap(errs.Unavailable, fmt.Errorf("dial: %w", io.ErrClosedPipe), "connecting")
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatal("errors.Is lost the wrapped error")
	}
	err = errs.New(errs.InvalidArgument, "bad %q: %w", "n", io.ErrShortWrite)
	if !errors.Is(err, io.ErrShortWrite) || err.Error() != `bad "n": short write` {
		t.Fatalf("New with %%w: %v", err)
	}
	var d *domainErr
	if !errors.As(errs.Wrap(errs.Internal, &domainErr{"b"}, "m"), &d) || d.name != "b" {
		t.Fatal("errors.As lost the domain error")
	}
}

func TestKindNames(t *testing.T) {
	want := map[errs.Kind]string{
		errs.Unknown: "Unknown", errs.InvalidArgument: "InvalidArgument", errs.NotFound: "NotFound",
		errs.AlreadyExists: "AlreadyExists", errs.FailedPrecondition: "FailedPrecondition", errs.Aborted: "Aborted",
		errs.ResourceExhausted: "ResourceExhausted", errs.PermissionDenied: "PermissionDenied",
		errs.Unavailable: "Unavailable", errs.Unimplemented: "Unimplemented", errs.OutOfRange: "OutOfRange",
		errs.DataLoss: "DataLoss", errs.Internal: "Internal", errs.Kind(200): "Kind(200)",
	}
	for k, n := range want {
		if k.String() != n {
			t.Errorf("%d.String() = %q, want %q", uint8(k), k.String(), n)
		}
	}
}
