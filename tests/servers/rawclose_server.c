/*
 * Test server in C that closes its connections behind libc's back, as libuv (node)
 * does: syscall(SYS_close, fd) instead of close(fd).
 *
 *   cc -O2 -pthread -Wall -Wextra -o rawclose_server rawclose_server.c
 *   ./rawclose_server PORT        (127.0.0.1:PORT)
 *   ./rawclose_server /PATH       (a Unix stream socket)
 *
 * A blocking accept loop, one detached thread per connection; answers one HTTP/1.0
 * request (GET / at once, GET /slow after 0.3 s) with
 * "pid=PID gen=$HUPTIME_GENERATION\n", then closes with the raw system call.
 * $HT_BEHAVIOUR_FILE: "crash" exits 3 before bind, "hang" waits forever before bind.
 */
#include "http_common.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define BACKLOG 128

static void *serve_connection(void *arg)
{
    int fd = (int)(long)arg;
    char head[HEAD_LIMIT];
    struct timeval timeout = {.tv_sec = 10};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (read_head(fd, head, sizeof head) == 0)
        respond_once(fd, head, (long)getpid(), "");
    syscall(SYS_close, fd); /* not close(): no interposer sees it */
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_attr_t detached;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|/PATH\n", argv[0]);
        return 2;
    }
    obey_behaviour_file();
    int listener = listen_on(argv[1], BACKLOG);
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            usleep(10000); /* never spin, e.g. on EMFILE */
            continue;
        }
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0)
            syscall(SYS_close, conn);
    }
}
