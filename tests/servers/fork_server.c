/*
 * Test server in C, fork per connection (inetd style).
 *
 *   cc -O2 -Wall -Wextra -o fork_server fork_server.c
 *   ./fork_server PORT        (127.0.0.1:PORT)
 *   ./fork_server /PATH       (a Unix stream socket)
 *
 * The parent accepts, forks, closes its copy of the connection with close() and
 * accepts again; children are reaped by the kernel (SIGCHLD ignored). The child
 * closes the listener, answers one HTTP/1.0 request (GET / at once, GET /slow after
 * 0.3 s) with "pid=PARENT gen=$HUPTIME_GENERATION child=CHILD\n" and leaves with
 * _exit(0) WITHOUT closing the connection: the kernel closes it when the process
 * ends, behind libc's back. pid= is the accepting parent's, so it names the process
 * that listens (like the other test servers); child= is the one that answered.
 * $HT_BEHAVIOUR_FILE: "crash" exits 3 before bind, "hang" waits forever before bind.
 */
#include "http_common.h"

#include <signal.h>
#include <sys/time.h>

#define BACKLOG 128

static void serve_in_child(int listener, int conn, long parent)
{
    char head[HEAD_LIMIT], extra[64];
    struct timeval timeout = {.tv_sec = 10};

    close(listener);
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    snprintf(extra, sizeof extra, "child=%ld", (long)getpid());
    if (read_head(conn, head, sizeof head) == 0)
        respond_once(conn, head, parent, extra);
    _exit(0); /* no close(conn): the kernel closes it */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|/PATH\n", argv[0]);
        return 2;
    }
    obey_behaviour_file();
    signal(SIGCHLD, SIG_IGN);
    int listener = listen_on(argv[1], BACKLOG);
    long self = (long)getpid();
    for (;;) {
        int conn = accept_client(listener);
        pid_t child = fork();
        if (child == 0)
            serve_in_child(listener, conn, self);
        if (child < 0)
            perror("fork");
        close(conn);
    }
}
