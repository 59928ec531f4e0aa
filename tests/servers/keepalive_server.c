/*
 * Test server in C: HTTP/1.1 keep-alive, one thread, epoll (level-triggered), cheap
 * enough to hold thousands of idle connections (a few KB each).
 *
 *   cc -O2 -Wall -Wextra -o keepalive_server keepalive_server.c
 *   ./keepalive_server PORT        (127.0.0.1:PORT)
 *   ./keepalive_server /PATH       (a Unix stream socket)
 *
 * Routes (GET only; the reply carries Content-Length):
 *   /          "pid=PID gen=$HUPTIME_GENERATION\n" at once
 *   /slow      the same after 0.3 s
 *   /sleep/MS  the same after MS milliseconds (the connection stays readable meanwhile)
 *   /big/N     an N-byte body: that line, then 'x's up to N bytes (written as the
 *              client reads it: what the socket does not take waits in the server)
 *   other      404
 * HTTP/1.1 keeps the connection open unless the request says "Connection: close";
 * HTTP/1.0 closes after the reply unless it says "Connection: keep-alive". An open
 * connection stays until the client closes it: on end of file (or an error) the
 * server closes its side. Requests on one connection are answered in order.
 * $HT_BEHAVIOUR_FILE: "crash" exits 3 before bind, "hang" waits forever before bind.
 */
#include "http_common.h"

#include <ctype.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#define BACKLOG 4096
#define IN_SIZE 4096
#define MAX_EVENTS 256
#define MAX_PENDING 4096
#define MAX_BIG (64L << 20)

struct conn {
    int fd;
    unsigned events;  /* what epoll watches now */
    size_t in_len;
    char *out;        /* the reply being written, or waiting for `due` */
    size_t out_len, out_off;
    long due;         /* ms (now_ms) when a delayed reply may go; 0: none */
    int close_after;  /* close once the reply is written */
    char in[IN_SIZE];
};

static int epfd, listener;
static struct conn **conns;   /* by descriptor */
static long conns_size;
static struct conn *pending[MAX_PENDING]; /* delayed replies */
static int npending;

static void watch(struct conn *c)
{
    unsigned want = 0;
    if (c->in_len < IN_SIZE)
        want |= EPOLLIN;
    if (c->out != NULL && c->due == 0)
        want |= EPOLLOUT;
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = want;
}

static void unpend(struct conn *c)
{
    for (int i = 0; i < npending; i++)
        if (pending[i] == c) {
            pending[i] = pending[--npending];
            return;
        }
}

static void drop(struct conn *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conns[c->fd] = NULL;
    if (c->due)
        unpend(c);
    free(c->out);
    free(c);
}

static int ieq_prefix(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
            return 0;
    return 1;
}

/* Does the head carry the header "Connection: <value>"? */
static int connection_says(const char *head, const char *value)
{
    for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (!ieq_prefix(h, "connection:"))
            continue;
        h += strlen("connection:");
        while (*h == ' ' || *h == '\t')
            h++;
        return ieq_prefix(h, value);
    }
    return 0;
}

/* Build the reply to the head in c->in[0..head_len) into c->out; returns the delay in ms. */
static long build_reply(struct conn *c, const char *head)
{
    char line[128], header[256];
    const char *status = "200 OK";
    long delay = 0, size = -1;
    int http10 = strstr(head, " HTTP/1.0\r\n") != NULL;
    int n = body_line(line, sizeof line - 1, (long)getpid());
    line[n++] = '\n';
    line[n] = '\0';

    if (strncmp(head, "GET / ", 6) == 0) {
    } else if (strncmp(head, "GET /slow ", 10) == 0) {
        delay = SLOW_USEC / 1000;
    } else if (strncmp(head, "GET /sleep/", 11) == 0) {
        delay = atol(head + 11);
    } else if (strncmp(head, "GET /big/", 9) == 0) {
        size = atol(head + 9);
        if (size < n || size > MAX_BIG)
            size = n;
    } else {
        status = "404 Not Found";
        strcpy(line, "not found\n");
        n = (int)strlen(line);
    }
    if (size < 0)
        size = n;
    c->close_after = http10 ? !connection_says(head, "keep-alive") : connection_says(head, "close");
    int hlen = snprintf(header, sizeof header,
                        "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %ld\r\n%s\r\n",
                        status, size, c->close_after ? "Connection: close\r\n"
                                      : http10 ? "Connection: keep-alive\r\n" : "");
    c->out_len = (size_t)hlen + (size_t)size;
    c->out_off = 0;
    c->out = malloc(c->out_len);
    if (c->out == NULL) {
        perror("malloc");
        exit(1);
    }
    memcpy(c->out, header, (size_t)hlen);
    memcpy(c->out + hlen, line, (size_t)n);
    memset(c->out + hlen + n, 'x', (size_t)(size - n));
    return delay;
}

static void serve_next(struct conn *c);

/* Write what the socket takes; the rest waits for EPOLLOUT. */
static void flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(c);
            return;
        } else {
            drop(c); /* the client went away */
            return;
        }
    }
    free(c->out);
    c->out = NULL;
    if (c->close_after) {
        drop(c);
        return;
    }
    watch(c);
    serve_next(c);
}

/* Answer the next complete request in the input, if no reply is under way. */
static void serve_next(struct conn *c)
{
    if (c->out != NULL)
        return;
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (c->in_len == IN_SIZE)
            drop(c); /* a head that does not fit */
        return;
    }
    size_t head_len = (size_t)(end - c->in) + 4;
    char head[IN_SIZE + 1];
    memcpy(head, c->in, head_len);
    head[head_len] = '\0';
    memmove(c->in, c->in + head_len, c->in_len - head_len);
    c->in_len -= head_len;
    long delay = build_reply(c, head);
    if (delay > 0 && npending < MAX_PENDING) {
        c->due = now_ms() + delay + 1; /* now_ms() rounds down: never early */
        pending[npending++] = c;
        watch(c);
        return;
    }
    flush(c);
}

static void on_readable(struct conn *c)
{
    while (c->in_len < IN_SIZE) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            drop(c); /* end of file or an error: close our side */
            return;
        }
    }
    watch(c);
    serve_next(c);
}

static void accept_all(void)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("accept4");
            return;
        }
        struct conn *c = fd < conns_size ? calloc(1, sizeof *c) : NULL;
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->events = EPOLLIN;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_ctl");
            close(fd);
            free(c);
            continue;
        }
        conns[fd] = c;
    }
}

/* Start the delayed replies that are due; return ms until the next one (-1: none). */
static int run_due(void)
{
    long now = now_ms(), next = -1;
    for (int i = 0; i < npending;) {
        struct conn *c = pending[i];
        if (c->due <= now) {
            pending[i] = pending[--npending];
            c->due = 0;
            flush(c);
            continue;
        }
        if (next < 0 || c->due - now < next)
            next = c->due - now;
        i++;
    }
    return (int)next;
}

int main(int argc, char **argv)
{
    struct rlimit nofile;
    struct epoll_event events[MAX_EVENTS];

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT|/PATH\n", argv[0]);
        return 2;
    }
    obey_behaviour_file();
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    conns_size = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < (1 << 20)
                 ? (long)nofile.rlim_cur : (1 << 20);
    conns = calloc((size_t)conns_size, sizeof *conns);
    listener = listen_on(argv[1], BACKLOG);
    fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    if (conns == NULL || epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &ev) < 0) {
        perror("setup");
        return 1;
    }
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, run_due());
        if (n < 0) {
            if (errno != EINTR) {
                perror("epoll_wait");
                usleep(10000);
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                accept_all();
                continue;
            }
            struct conn *c = fd >= 0 && fd < conns_size ? conns[fd] : NULL;
            if (c == NULL)
                continue; /* dropped earlier in this round */
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
            else if (events[i].events & EPOLLOUT)
                flush(c);
        }
    }
}
