/*
 * Test server in C: a blocking accept loop, one detached thread per connection.
 *
 *   cc -O2 -pthread -o cserver cserver.c                  (accept)
 *   cc -O2 -pthread -DUSE_ACCEPT4 -o cserver cserver.c    (accept4 + SOCK_CLOEXEC)
 *   cc -O2 -pthread -DRAW_CLOSE -o cserver cserver.c      (closes with syscall(SYS_close),
 *                                                          behind libc's back, as libuv does)
 *   cc -O2 -pthread -DUSE_ACCEPT4 -DINLINE ...            (answers each connection in the
 *                                                          accepting thread: the same system
 *                                                          calls for every connection)
 *   cc -O2 -pthread -DRAW_ACCEPT -o cserver cserver.c     (accepts with syscall(SYS_accept4):
 *                                                          no interposer sees it wait or take
 *                                                          a client, as with io_uring)
 *   ./cserver PORT        (127.0.0.1:PORT)
 *   ./cserver /PATH       (a Unix stream socket)
 *
 * Answers GET / and GET /slow (after 0.3 s) with "pid=PID gen=$HUPTIME_GENERATION\n".
 * If the file named by $HT_BEHAVIOUR_FILE contains "crash" it exits with status 3
 * before bind; "hang" makes it wait forever before bind; "slow" (read at start) makes
 * it hold every connection 0.5 s before it reads the request.
 */
#include "http_common.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define BACKLOG 128

#ifdef RAW_CLOSE
#define RAW 1 /* closes with syscall(SYS_close): no interposer sees it */
#define CLOSE(fd) syscall(SYS_close, (fd))
#else
#define RAW 0
#define CLOSE(fd) close(fd)
#endif

#define HOLD_USEC 500000 /* "slow": how long each connection is held first */
static int slow;

static void *serve_connection(void *arg)
{
    if (slow)
        usleep(HOLD_USEC);
    serve_once((int)(long)arg, RAW);
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
    slow = behaviour_is("slow");
    int listener = listen_on(argv[1], BACKLOG);
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
#if defined(RAW_ACCEPT)
        int conn = (int)syscall(SYS_accept4, listener, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0 && errno == EAGAIN) { /* non-blocking underneath (the shim's) */
            usleep(1000);
            continue;
        }
#elif defined(USE_ACCEPT4)
        int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
#else
        int conn = accept(listener, NULL, NULL);
#endif
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            perror("accept");
            usleep(10000); /* never spin, e.g. on EMFILE or an O_NONBLOCK listener */
            continue;
        }
#ifdef INLINE
        serve_once(conn, RAW);
        continue;
#endif
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0)
            CLOSE(conn);
    }
}
