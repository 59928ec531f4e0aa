/*
 * Test server in C whose listening socket is made by raw system calls, as Go's net
 * package does even in dynamically linked programs: socket, bind, listen, accept4 and
 * close are syscall()s, so a preloaded library never sees the listener.
 *
 *   cc -O2 -pthread -o rawsock_server rawsock_server.c
 *   ./rawsock_server PORT [handler]
 *
 * With "handler" it installs a SIGHUP handler that prints "program got SIGHUP" (as a
 * server whose SIGHUP reloads its configuration would), else SIGHUP keeps its default
 * action. Answers GET / like cserver.c, one thread per connection.
 */
#include "http_common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>

static volatile sig_atomic_t hups;

static void on_hup(int sig)
{
    (void)sig;
    static const char line[] = "program got SIGHUP\n";
    ssize_t w = write(1, line, sizeof line - 1);
    (void)w;
    hups++;
}

static void *serve_connection(void *arg)
{
    serve_once((int)(long)arg, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [handler]\n", argv[0]);
        return 2;
    }
    if (argc > 2 && strcmp(argv[2], "handler") == 0)
        signal(SIGHUP, on_hup);
    obey_behaviour_file();
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    int listener = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        syscall(SYS_bind, listener, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        syscall(SYS_listen, listener, 128) < 0) {
        perror("listen");
        return 1;
    }
    printf("listening on %s\n", argv[1]);
    fflush(stdout);
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int conn = (int)syscall(SYS_accept4, listener, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                usleep(10000);
            continue;
        }
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0)
            syscall(SYS_close, conn);
    }
}
