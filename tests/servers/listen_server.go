// Test server in Go, built static (CGO_ENABLED=0): the kind of program huptime's
// preload cannot enter. It takes its listener the systemd way (fd 3 when LISTEN_PID
// is its own PID and LISTEN_FDS is set), else listens on 127.0.0.1:PORT itself.
//
//	CGO_ENABLED=0 go build -o listen-server listen_server.go
//	./listen-server PORT
//
// Answers GET / with "pid=PID gen=$HUPTIME_GENERATION uid=UID" and GET /slow after
// 0.3 s. With NOTIFY_SOCKET set it sends READY=1 there once it serves (sd_notify),
// unless HT_NO_NOTIFY is set. SIGTERM: stops accepting, lets open requests finish,
// exits 0. The file named by HT_BEHAVIOUR_FILE, read at start: "crash" exits with
// status 3 before serving, "hang" never serves.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func behaviour() string {
	data, err := os.ReadFile(os.Getenv("HT_BEHAVIOUR_FILE"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func notify(state string) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" || os.Getenv("HT_NO_NOTIFY") != "" {
		return
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "notify:", err)
		return
	}
	defer conn.Close()
	conn.Write([]byte(state))
}

func main() {
	switch behaviour() {
	case "crash":
		fmt.Println("crashing")
		os.Exit(3)
	case "hang":
		for {
			time.Sleep(time.Hour)
		}
	}
	var ln net.Listener
	var err error
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") != "" {
		ln, err = net.FileListener(os.NewFile(3, "listener"))
	} else if len(os.Args) > 1 {
		ln, err = net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	} else {
		err = fmt.Errorf("no LISTEN_FDS for this process and no PORT argument")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gen := os.Getenv("HUPTIME_GENERATION")
	reply := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprintf(w, "pid=%d gen=%s uid=%d\n", os.Getpid(), gen, os.Getuid())
	}
	srv := &http.Server{Handler: http.HandlerFunc(reply)}
	done := make(chan struct{})
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	fmt.Printf("listening on %s\n", ln.Addr())
	notify("READY=1\nSTATUS=serving")
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-done
}
