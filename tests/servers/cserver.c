/*
 * Test server in C: a blocking accept loop, one detached thread per connection.
 *
 *   cc -O2 -pthread -o cserver cserver.c                  (accept)
 *   cc -O2 -pthread -DUSE_ACCEPT4 -o cserver cserver.c    (accept4 + SOCK_CLOEXEC)
 *   ./cserver PORT
 *
 * Answers GET / and GET /slow (after 0.3 s) with "pid=PID gen=$HUPTIME_GENERATION\n".
 * If the file named by $HT_BEHAVIOUR_FILE contains "crash" it exits with status 3
 * before bind; "hang" makes it wait forever before bind.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define HEAD_LIMIT 8192
#define BACKLOG 128
#define SLOW_USEC 300000

static void obey_behaviour_file(void)
{
    const char *path = getenv("HT_BEHAVIOUR_FILE");
    char behaviour[256] = "";
    FILE *f;

    if (path == NULL || (f = fopen(path, "r")) == NULL)
        return;
    size_t n = fread(behaviour, 1, sizeof behaviour - 1, f);
    behaviour[n] = '\0';
    fclose(f);
    if (strstr(behaviour, "crash") != NULL) {
        printf("crashing\n");
        fflush(stdout);
        exit(3);
    }
    if (strstr(behaviour, "hang") != NULL)
        for (;;)
            pause();
}

/* Read the request head into buf (NUL-terminated); 0 on success, -1 if incomplete. */
static int read_head(int fd, char *buf, size_t size)
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

static void write_all(int fd, const char *data, size_t len)
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

static void respond(int fd, const char *head)
{
    char body[128], response[512];
    const char *status = "200 OK";
    const char *generation = getenv("HUPTIME_GENERATION");

    if (strncmp(head, "GET /slow ", 10) == 0) {
        usleep(SLOW_USEC);
    } else if (strncmp(head, "GET / ", 6) != 0) {
        status = "404 Not Found";
    }
    if (status[0] == '2')
        snprintf(body, sizeof body, "pid=%ld gen=%s\n", (long)getpid(),
                 generation ? generation : "0");
    else
        snprintf(body, sizeof body, "not found\n");
    int len = snprintf(response, sizeof response,
                       "HTTP/1.0 %s\r\nContent-Type: text/plain\r\n"
                       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                       status, strlen(body), body);
    write_all(fd, response, (size_t)len);
}

static void *serve_connection(void *arg)
{
    int fd = (int)(long)arg;
    char head[HEAD_LIMIT];
    struct timeval timeout = {.tv_sec = 10};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (read_head(fd, head, sizeof head) == 0)
        respond(fd, head);
    close(fd);
    return NULL;
}

static int listen_on(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t addr_len = sizeof addr;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
        || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, BACKLOG) < 0
        || getsockname(fd, (struct sockaddr *)&addr, &addr_len) < 0) {
        perror("listen_on");
        exit(1);
    }
    printf("listening on %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    return fd;
}

int main(int argc, char **argv)
{
    pthread_attr_t detached;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    obey_behaviour_file();
    int listener = listen_on(atoi(argv[1]));
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (;;) {
#ifdef USE_ACCEPT4
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
        pthread_t thread;
        if (pthread_create(&thread, &detached, serve_connection, (void *)(long)conn) != 0)
            close(conn);
    }
}
