package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anysync/tauri-plugin-anysync/go-backend/internal/launch"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

// TestParentKilled kills the parent with SIGKILL, which gives it no chance
// to clean up, and checks that the orphaned sidecar notices the end of its
// stdin and stops gracefully with exit code 0. The test process becomes a
// child subreaper so that the orphan is reparented to it and its exit
// status can be collected.
func TestParentKilled(t *testing.T) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "GO_WANT_HELPER_PROCESS=parent", "ANYSYNC_TEST_BINARY="+binary)
	helper.Stdout, helper.Stderr = outW, errW
	helperStdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	_ = outW.Close()
	_ = errW.Close()
	defer helperStdin.Close()

	stderr := newCapture()
	stderrDone := make(chan struct{})
	go func() { _, _ = stderr.ReadFrom(errR); close(stderrDone) }()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(outR).ReadString('\n')
		lines <- line
	}()

	var hs launch.Handshake
	select {
	case line := <-lines:
		if hs, err = launch.ParseHandshake([]byte(line)); err != nil {
			t.Fatalf("handshake %q: %v; stderr: %s", line, err, stderr)
		}
	case <-time.After(deadline):
		t.Fatalf("no handshake within %v; stderr: %s", deadline, stderr)
	}

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := helper.Wait(); err == nil {
		t.Fatal("the killed helper reported success")
	}

	// The sidecar is now our child: collect its exit status.
	type exit struct {
		ws  syscall.WaitStatus
		err error
	}
	exited := make(chan exit, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(hs.PID, &ws, 0, nil)
			if !errors.Is(err, syscall.EINTR) {
				exited <- exit{ws, err}
				return
			}
		}
	}()
	select {
	case e := <-exited:
		if e.err != nil {
			t.Fatalf("wait4(%d): %v", hs.PID, e.err)
		}
		if !e.ws.Exited() || e.ws.ExitStatus() != 0 {
			t.Fatalf("orphaned sidecar ended with %v, want exit 0", fmt.Sprint(e.ws))
		}
	case <-time.After(deadline):
		_ = syscall.Kill(hs.PID, syscall.SIGKILL)
		t.Fatalf("orphaned sidecar %d still running %v after its parent was killed", hs.PID, deadline)
	}
	<-stderrDone
	if !strings.Contains(stderr.String(), `"reason":"stdin closed: the parent process is gone"`) {
		t.Fatalf("no graceful-stop record; stderr: %s", stderr)
	}
}
