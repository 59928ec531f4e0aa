/*
 * What the C test servers share (cserver.c, fork_server.c, keepalive_server.c,
 * rawsock_server.c, reexec_server.c, dropping_server.c): the behaviour file, the
 * listener (TCP port on 127.0.0.1 or a Unix socket path), accepting, reading a
 * request head, writing a reply, the body.
 *
 * Every function is `static inline` so a server that does not use one gets no warning.
 */
#ifndef HUPTIME_TEST_HTTP_COMMON_H
#define HUPTIME_TEST_HTTP_COMMON_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_LIMIT 8192
#define SLOW_USEC 300000 /* GET /slow: SLOW_SECONDS of tests/servers/common.py */

/* Whether the file named by $HT_BEHAVIOUR_FILE holds `word` (read now). */
static inline int behaviour_is(const char *word)
{
    const char *path = getenv("HT_BEHAVIOUR_FILE");
    char behaviour[256] = "";
    FILE *f;

    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return 0;
    size_t n = fread(behaviour, 1, sizeof behaviour - 1, f);
    behaviour[n] = '\0';
    fclose(f);
    return strstr(behaviour, word) != NULL;
}

/* $HT_BEHAVIOUR_FILE says "crash": exit 3 before bind; "hang": wait forever. */
static inline void obey_behaviour_file(void)
{
    if (behaviour_is("crash")) {
        printf("crashing\n");
        fflush(stdout);
        exit(3);
    }
    if (behaviour_is("hang"))
        for (;;)
            pause();
}

/* Listen on `where`: a TCP port on 127.0.0.1, or, if it starts with '/', a Unix
 * stream socket at that path (an old file there is removed first). Prints
 * "listening on PORT" (or "listening on PATH") once it listens. */
static inline int listen_on(const char *where, int backlog)
{
    int one = 1, fd;

    if (where[0] == '/') {
        struct sockaddr_un addr = {.sun_family = AF_UNIX};
        if (strlen(where) >= sizeof addr.sun_path) {
            fprintf(stderr, "listen_on: path too long: %s\n", where);
            exit(1);
        }
        strcpy(addr.sun_path, where);
        unlink(where);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0
            || listen(fd, backlog) < 0) {
            perror("listen_on");
            exit(1);
        }
        printf("listening on %s\n", where);
    } else {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(where))};
        socklen_t addr_len = sizeof addr;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
            || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, backlog) < 0
            || getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0) {
            perror("listen_on");
            exit(1);
        }
        printf("listening on %d\n", ntohs(addr.sin_port));
    }
    fflush(stdout);
    return fd;
}

/* accept() until it gives a client: a signal, or a client gone meanwhile, is tried
 * again at once; any other error is printed and tried again 10 ms later (never
 * spin, e.g. on EMFILE). */
static inline int accept_client(int listener)
{
    for (;;) {
        int conn = accept(listener, NULL, NULL);
        if (conn >= 0)
            return conn;
        if (errno != EINTR && errno != ECONNABORTED) {
            perror("accept");
            usleep(10000);
        }
    }
}

/* Read a request head into buf (NUL-terminated); 0 on success, -1 if incomplete. */
static inline int read_head(int fd, char *buf, size_t size)
{
    size_t len = 0;

    while (len < size - 1) {
        ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL)
            return 0;
    }
    return -1;
}

static inline void write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away */
        data += n;
        len -= (size_t)n;
    }
}

/* The reply body's first line: "pid=PID gen=N" (no newline). */
static inline int body_line(char *buf, size_t size, long pid)
{
    const char *generation = getenv("HUPTIME_GENERATION");
    return snprintf(buf, size, "pid=%ld gen=%s", pid, generation ? generation : "0");
}

/* A one-shot HTTP/1.0 reply (Connection: close) to the head read: GET / at once,
 * GET /slow after 0.3 s, anything else 404. extra: more words for the body line. */
static inline void respond_once(int fd, const char *head, long pid, const char *extra)
{
    char body[256], response[512];
    const char *status = "200 OK";

    if (strncmp(head, "GET /slow ", 10) == 0)
        usleep(SLOW_USEC);
    else if (strncmp(head, "GET / ", 6) != 0)
        status = "404 Not Found";
    if (status[0] == '2') {
        int n = body_line(body, sizeof body, pid);
        snprintf(body + n, sizeof body - (size_t)n, "%s%s\n", extra[0] ? " " : "", extra);
    } else {
        snprintf(body, sizeof body, "not found\n");
    }
    int len = snprintf(response, sizeof response,
                       "HTTP/1.0 %s\r\nContent-Type: text/plain\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       status, strlen(body), body);
    write_all(fd, response, (size_t)len);
}

static inline long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* A thread's whole connection: read the head (10 s at most), answer once, close,
 * with a raw close system call when raw_close (no interposer sees it). */
static inline void serve_once(int fd, int raw_close)
{
    char head[HEAD_LIMIT];
    struct timeval timeout = {.tv_sec = 10};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (read_head(fd, head, sizeof head) == 0)
        respond_once(fd, head, (long)getpid(), "");
    if (raw_close)
        syscall(SYS_close, fd);
    else
        close(fd);
}

#endif
