//go:build unix

package store

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/anysync/tauri-plugin-anysync/go-backend/api/proto/anysync/v1"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/testsupport"
)

// TestSidecarKill9DuringWrites is issue 14's crash test on the real
// sidecar: the shipped binary (cmd/server) serves the store over gRPC as the
// plugin runs it, two clients write to it (single puts, and batches that
// put two documents and bump a counter), and it is killed with SIGKILL at a
// random moment, several rounds on the same data directory. After every
// kill: PRAGMA integrity_check is ok, every acknowledged write is there,
// and no batch is half applied: both of its documents or neither, and the
// counter equals the number of batches applied, acknowledged or not.
func TestSidecarKill9DuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and spawns the sidecar")
	}
	started := time.Now()
	bin := filepath.Join(t.TempDir(), "anysync-backend")
	if err := testsupport.BuildSidecar(bin, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the sidecar in %v", time.Since(started))
	dataDir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 14))

	var acked []string          // documents whose put or batch was answered OK
	attempted := map[int]bool{} // batch numbers sent, answered or not
	ackedBatches, applied := 0, 0
	batch := 0
	rounds := 10
	if raceDetector {
		rounds = 4 // the checks' SQLite runs some twentyfold slower under -race
	}
	for round := range rounds {
		sc := startSidecar(t, bin, dataDir)
		if round == 0 {
			if _, err := sc.client.CreateSpace(sc.ctx, &pb.CreateSpaceRequest{Name: "s"}); err != nil {
				t.Fatal(err)
			}
			if _, err := sc.client.Put(sc.ctx, &pb.PutRequest{Space: "s", Collection: "meta", Json: `{"id":"counter","batches":0}`}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		firstAck := make(chan struct{})
		var once sync.Once
		ack := func(ids ...string) {
			mu.Lock()
			acked = append(acked, ids...)
			mu.Unlock()
			once.Do(func() { close(firstAck) })
		}
		// A call that failed after the kill has an unknown outcome; the
		// writers stop at their first failure.
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("p%d-%d", round, i)
				if _, err := sc.client.Put(sc.ctx, &pb.PutRequest{Space: "s", Collection: "c", Json: `{"id":"` + id + `","n":1}`}); err != nil {
					return
				}
				ack(id)
			}
		}()
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				batch++
				b := batch
				attempted[b] = true
				mu.Unlock()
				ops := []*pb.BatchOp{
					{Put: &pb.PutOp{Collection: "c", Json: fmt.Sprintf(`{"id":"b%d-0","batch":%d}`, b, b)}},
					{Put: &pb.PutOp{Collection: "c", Json: fmt.Sprintf(`{"id":"b%d-1","batch":%d}`, b, b)}},
					{Update: &pb.UpdateOp{Collection: "meta", Id: "counter", Update: `{"$inc":{"batches":1}}`}},
				}
				if _, err := sc.client.Batch(sc.ctx, &pb.BatchRequest{Space: "s", Ops: ops}); err != nil {
					return
				}
				mu.Lock()
				ackedBatches++
				mu.Unlock()
				ack(fmt.Sprintf("b%d-0", b), fmt.Sprintf("b%d-1", b))
			}
		}()
		select {
		case <-firstAck:
		case <-time.After(15 * time.Second):
			t.Fatalf("round %d: no write acknowledged; stderr:\n%s", round, sc.stderr.String())
		}
		time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond) // the random moment of the kill
		sc.kill()
		wg.Wait()
		applied = checkAfterCrash(t, dataDir, acked, attempted, ackedBatches)
	}
	t.Logf("%d rounds of SIGKILL of the real sidecar in %v: %d acknowledged documents (%d batches), all there; %d batches sent, %d applied (each whole), integrity_check ok after every kill",
		rounds, time.Since(started).Round(time.Millisecond), len(acked), ackedBatches, len(attempted), applied)
}

// checkAfterCrash opens the space the killed sidecar left (as its next
// incarnation would), checks it, and returns how many batches are applied.
func checkAfterCrash(t *testing.T, dataDir string, acked []string, attempted map[int]bool, ackedBatches int) int {
	t.Helper()
	ctx := context.Background()
	st, err := Open(dataDir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	docs, changes := integrityAndCounts(t, st)
	for _, id := range acked {
		if _, err := st.Get(ctx, "s", "c", id); err != nil {
			t.Fatalf("acknowledged %s is gone after a kill: %v", id, err)
		}
	}
	applied := 0
	for b := range attempted {
		n, err := st.Count(ctx, "s", Query{Collection: "c", Filter: fmt.Sprintf(`{"batch":%d}`, b)})
		if err != nil {
			t.Fatal(err)
		}
		switch n {
		case 2:
			applied++
		case 0:
		default:
			t.Fatalf("batch %d is half applied: %d of its 2 documents", b, n)
		}
	}
	counter, err := st.Get(ctx, "s", "meta", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`"batches":%d`, applied); !strings.Contains(counter.JSON, want) {
		t.Fatalf("the counter is %s, but %d batches are applied (%d acknowledged): a batch was half applied", counter.JSON, applied, ackedBatches)
	}
	if applied < ackedBatches {
		t.Fatalf("%d batches applied, fewer than the %d acknowledged", applied, ackedBatches)
	}
	// Every write appended its change in its own transaction: one per put,
	// three per batch, plus the counter's insert.
	if want := docs + applied; changes != want {
		t.Fatalf("%d changes for %d documents and %d applied batches (want %d): the log and the documents disagree", changes, docs, applied, want)
	}
	return applied
}

// sidecar is one run of the real binary, with a StoreService client.
type sidecar struct {
	t      *testing.T
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *strings.Builder
	client pb.StoreServiceClient
	ctx    context.Context
}

// startSidecar launches bin as the plugin does (bootstrap line with a token
// on stdin, handshake line on stdout) with the store under dataDir.
func startSidecar(t *testing.T, bin, dataDir string) *sidecar {
	t.Helper()
	cmd := exec.Command(bin, "--data-dir", dataDir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	var stderrMu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { stderrMu.Lock(); defer stderrMu.Unlock(); return stderr.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := &sidecar{t: t, cmd: cmd, exited: make(chan struct{}), stderr: stderr}
	go func() { _ = cmd.Wait(); close(sc.exited) }()
	t.Cleanup(func() { _ = stdin.Close(); sc.kill() })
	token := make([]byte, 32)
	_, _ = crand.Read(token)
	tok := base64.RawURLEncoding.EncodeToString(token)
	if _, err := fmt.Fprintf(stdin, `{"protocolVersion":1,"token":%q}`+"\n", tok); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var hs launch.Handshake
	select {
	case line := <-lines:
		if hs, err = launch.ParseHandshake([]byte(line)); err != nil {
			t.Fatalf("handshake %q: %v; stderr:\n%s", line, err, stderr.String())
		}
	case <-sc.exited:
		t.Fatalf("the sidecar exited before its handshake; stderr:\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("no handshake in 15 s; stderr:\n%s", stderr.String())
	}
	conn, err := grpc.NewClient(hs.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok), time.Minute)
	t.Cleanup(cancel)
	sc.client, sc.ctx = pb.NewStoreServiceClient(conn), ctx
	return sc
}

// kill sends SIGKILL and waits for the process to be gone. Safe to call
// more than once.
func (sc *sidecar) kill() {
	if err := sc.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		sc.t.Errorf("SIGKILL: %v", err)
	}
	select {
	case <-sc.exited:
	case <-time.After(15 * time.Second):
		sc.t.Fatal("the sidecar outlived SIGKILL by 15 s")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
