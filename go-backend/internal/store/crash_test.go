package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHelperWriter is not a test: run by TestKill9DuringWrites as a child
// process, it writes documents in a loop (single puts and small batches)
// and prints each acknowledged id on stdout, until it is killed.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv("ANYSYNC_STORE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process only")
	}
	ctx := context.Background()
	st, err := Open(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = st.CreateSpace(ctx, "s") // exists after the first round
	round := os.Getenv("ANYSYNC_STORE_HELPER_ROUND")
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		id := fmt.Sprintf("r%s-%d", round, i)
		if i%5 == 0 {
			writes := []Write{
				{Kind: WritePut, Collection: "c", JSON: fmt.Sprintf(`{"id":"%s","n":%d}`, id, i)},
				{Kind: WritePut, Collection: "c", JSON: fmt.Sprintf(`{"id":"%s-b","n":%d}`, id, i)},
			}
			if _, err := st.Batch(ctx, "s", writes); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Fprintln(out, id+"-b")
		} else if _, err := st.Put(ctx, "s", "c", fmt.Sprintf(`{"id":"%s","n":%d}`, id, i), nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Fprintln(out, id)
		_ = out.Flush() // acknowledged: the caller may now rely on it
	}
}

// TestKill9DuringWrites kills a writing process with SIGKILL at random
// moments: every write it acknowledged is there afterwards, the change log
// holds each of them, and PRAGMA integrity_check is ok.
func TestKill9DuringWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(9, 9))
	var acked []string
	rounds := 4
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "ANYSYNC_STORE_HELPER_DIR="+dir, fmt.Sprintf("ANYSYNC_STORE_HELPER_ROUND=%d", round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Wait for the first acknowledgement, then kill at a random moment.
		first, ok := <-lines
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("round %d: the helper wrote nothing; stderr:\n%s", round, stderr.String())
		}
		acked = append(acked, first)
		time.Sleep(time.Duration(20+r.IntN(200)) * time.Millisecond)
		_ = cmd.Process.Kill()
		for l := range lines {
			if strings.HasPrefix(l, "r") {
				acked = append(acked, l)
			}
		}
		_ = cmd.Wait()
	}
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	ctx := context.Background()
	for _, id := range acked {
		if _, err := st.Get(ctx, "s", "c", id); err != nil {
			t.Fatalf("acknowledged %s: %v", id, err)
		}
	}
	docs, changes := integrityAndCounts(t, st)
	if docs < len(acked) || changes != docs {
		t.Fatalf("%d documents and %d changes for %d acknowledged writes", docs, changes, len(acked))
	}
	t.Logf("%d rounds of kill -9: %d acknowledged writes, all there (%d documents)", rounds, len(acked), docs)
}

// integrityAndCounts fails the test unless PRAGMA integrity_check of space
// "s" is ok, and returns how many documents and changes the space holds.
func integrityAndCounts(t *testing.T, st *Store) (docs, changes int) {
	t.Helper()
	sp, err := st.space(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer sp.done()
	if check := queryText(t, sp, "PRAGMA integrity_check"); check != "ok" {
		t.Fatalf("integrity_check after a kill: %q", check)
	}
	return int(queryInt(t, sp, "SELECT count(*) FROM docs")), int(queryInt(t, sp, "SELECT count(*) FROM changes"))
}
