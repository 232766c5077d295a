// Package errs gives domain errors a kind, so that the backend can answer
// each with the right gRPC status code without the domain package importing
// gRPC, and without the server importing every domain package.
//
// A handler (or anything it calls) returns an error that carries a Kind:
//
//	return errs.New(errs.NotFound, "space %q not found", name)
//	return errs.Wrap(errs.Unavailable, err, "opening the store")
//
// or a domain type of its own that has an ErrorKind() Kind method. The
// backend package finds the kind with KindOf (errors.As through any
// wrapping) and maps it to the status code of the same name; the client
// gets the error's text as the status message. An error with no kind is
// INTERNAL, and the client gets a generic message while the real error goes
// to the log: only kinded errors are written for the caller to read.
//
// This package imports nothing beyond the standard library, and never will.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it. Each kind has
// the meaning of the gRPC status code of the same name
// (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). The zero Kind
// is Unknown: no kind.
type Kind uint8

// The kinds. Their numbers are this package's own and may change; compare
// kinds, never their numbers.
const (
	// Unknown is no kind: KindOf's answer for an error that carries none.
	// The backend answers it INTERNAL with a generic message.
	Unknown Kind = iota
	// InvalidArgument: the request is wrong whatever the state (a bad name,
	// a value out of range). Do not retry the same request.
	InvalidArgument
	// NotFound: something the request names does not exist.
	NotFound
	// AlreadyExists: what the request would create exists already.
	AlreadyExists
	// FailedPrecondition: the state does not allow the request (a
	// non-empty directory to remove); fix the state first.
	FailedPrecondition
	// Aborted: a concurrency conflict (a revision changed underneath);
	// retry the whole read-modify-write.
	Aborted
	// ResourceExhausted: a quota or a size bound was hit.
	ResourceExhausted
	// PermissionDenied: the caller may not do this.
	PermissionDenied
	// Unavailable: transient; the same request may succeed later.
	Unavailable
	// Unimplemented: the operation is not supported.
	Unimplemented
	// OutOfRange: past the end of a valid range (a sequence number beyond
	// the last); unlike InvalidArgument, it may become valid later.
	OutOfRange
	// DataLoss: unrecoverable loss or corruption of data.
	DataLoss
	// Internal: a broken invariant; a bug. The message reaches the caller,
	// unlike an error with no kind.
	Internal
)

var names = [...]string{
	Unknown:            "Unknown",
	InvalidArgument:    "InvalidArgument",
	NotFound:           "NotFound",
	AlreadyExists:      "AlreadyExists",
	FailedPrecondition: "FailedPrecondition",
	Aborted:            "Aborted",
	ResourceExhausted:  "ResourceExhausted",
	PermissionDenied:   "PermissionDenied",
	Unavailable:        "Unavailable",
	Unimplemented:      "Unimplemented",
	OutOfRange:         "OutOfRange",
	DataLoss:           "DataLoss",
	Internal:           "Internal",
}

// String returns the kind's name, e.g. "NotFound".
func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Kinded is implemented by errors that carry a kind. Domain packages may
// implement it on their own error types instead of using New or Wrap.
// ErrorKind must not return Unknown for an error meant to carry a kind.
type Kinded interface {
	error
	ErrorKind() Kind
}

// KindOf returns the kind of the first error in err's tree (errors.As
// order) that implements Kinded and reports a kind other than Unknown, or
// Unknown when there is none (also for nil).
func KindOf(err error) Kind {
	for err != nil {
		var k Kinded
		if !errors.As(err, &k) {
			return Unknown
		}
		if kind := k.ErrorKind(); kind != Unknown {
			return kind
		}
		// A Kinded that reports Unknown: look below it.
		err = errors.Unwrap(k)
	}
	return Unknown
}

// Is reports whether err's kind is kind.
func Is(err error, kind Kind) bool { return KindOf(err) == kind }

// kindError is the error New and Wrap return.
type kindError struct {
	kind  Kind
	text  string
	cause error // what errors.Is and errors.As look into; may be nil
}

func (e *kindError) Error() string   { return e.text }
func (e *kindError) ErrorKind() Kind { return e.kind }
func (e *kindError) Unwrap() error   { return e.cause }

// New returns an error of kind whose text is fmt.Sprintf(format, args...).
// The text is what the caller reads: say what happened and what to do, and
// put nothing in it that the caller must not see. A %w verb wraps its
// operand as fmt.Errorf does.
func New(kind Kind, format string, args ...any) error {
	cause := fmt.Errorf(format, args...)
	return &kindError{kind: kind, text: cause.Error(), cause: cause}
}

// Wrap returns err with kind and the context msg (text "msg: err's text"),
// or nil when err is nil. The kind given here wins over any kind inside err;
// errors.Is and errors.As still see err. An empty msg keeps err's text.
func Wrap(kind Kind, err error, msg string) error {
	if err == nil {
		return nil
	}
	text := err.Error()
	if msg != "" {
		text = msg + ": " + text
	}
	return &kindError{kind: kind, text: text, cause: err}
}
